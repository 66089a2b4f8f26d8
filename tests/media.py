"""Helpers for tests that inspect media files with ffprobe."""
import json
import subprocess


def probe(path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-count_frames",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    v = video[0] if video else {}
    num, den = (int(x) for x in v.get("r_frame_rate", "0/1").split("/"))
    return {
        "width": v.get("width"), "height": v.get("height"), "fps": num / den if den else 0,
        "frames": int(v.get("nb_read_frames", 0)), "codec": v.get("codec_name"), "pix_fmt": v.get("pix_fmt"),
        "video_duration": float(v.get("duration", 0)),
        "audio": bool(audio), "audio_duration": float(audio[0].get("duration", 0)) if audio else 0.0,
    }


def frame_at(path, index: int, fps: float = 30):
    """Decode one frame (RGB uint8 array) of a video."""
    import numpy as np

    out = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{index / fps:.4f}", "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True)
    info = probe(path)
    return np.frombuffer(out.stdout, np.uint8).reshape(info["height"], info["width"], 3)
