"""Streaming frames into ffmpeg: H.264 yuv420p video with the song as AAC audio.

Frames are piped to ffmpeg as they are rendered, so a video never sits in memory. The file is
written under a temporary name beside the target and renamed when ffmpeg succeeded; on any error
the temporary file is removed and nothing is left at the target path.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from atomic import temp_beside


class VideoError(RuntimeError):
    """ffmpeg is missing or failed. The message names the output file."""


def require_ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise VideoError("ffmpeg not found on PATH: install it (apt-get install ffmpeg)")
    return exe


class VideoWriter:
    """``with VideoWriter(path, 1200, 1200, n_frames, audio=song) as w: w.write(frame)``.

    frame: (H, W, 3) uint8 RGB. ``audio``: any file ffmpeg reads, cut to the video's length
    (starting ``audio_start`` seconds into the file). ``overwrite=False`` refuses an existing target.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, n_frames: int, fps: float = 30,
                 audio: str | os.PathLike | None = None, audio_start: float = 0.0,
                 overwrite: bool = False, crf: int = 20, preset: str = "veryfast"):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: exists; pass --overwrite to replace it")
        if audio is not None and not Path(audio).is_file():
            raise VideoError(f"{audio}: audio file not found")
        self.size, self.n_frames, self.fps = (height, width), n_frames, fps
        self.audio, self.audio_start = audio, audio_start
        self.crf, self.preset = crf, preset
        self.frames = 0
        self._proc: subprocess.Popen | None = None
        self._tmp: Path | None = None
        self._log = None

    def __enter__(self):
        exe = require_ffmpeg()
        fd, tmp = temp_beside(self.path, suffix=".mp4")
        os.close(fd)
        self._tmp = Path(tmp)
        h, w = self.size
        # Files go through ffmpeg's file protocol, so no name is read as an option or another protocol.
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(self.fps), "-i", "pipe:0"]
        if self.audio is not None:
            cmd += ["-ss", f"{self.audio_start:.3f}", "-i", f"file:{self.audio}", "-map", "0:v:0", "-map", "1:a:0",
                    "-c:a", "aac", "-b:a", "192k"]
        # -t (not -shortest) so that a short song never cuts the video.
        cmd += ["-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p",
                "-t", f"{self.n_frames / self.fps:.6f}", "-movflags", "+faststart", "-f", "mp4", f"file:{self._tmp}"]
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._log)
        return self

    def write(self, frame: np.ndarray):
        if frame.shape[:2] != self.size or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} does not match video size {self.size} uint8")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame[..., :3]).tobytes())
        except BrokenPipeError:
            self._fail("ffmpeg stopped accepting frames")
        self.frames += 1

    def _fail(self, what: str):
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        self._abort()
        raise VideoError(f"{self.path}: {what}: {lines[-1] if lines else 'no message'}")

    def _abort(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                self._abort()
                return False
            self._proc.stdin.close()
            if self._proc.wait() != 0:
                self._fail(f"ffmpeg exited with code {self._proc.returncode}")
            if self.frames != self.n_frames:
                self._abort()
                raise VideoError(f"{self.path}: {self.frames} frames written, {self.n_frames} announced")
            os.replace(self._tmp, self.path)
            return False
        finally:
            self._log.close()
