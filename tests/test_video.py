"""The ffmpeg writer: real files checked with ffprobe; failures leave nothing behind."""
import numpy as np
import pytest
import soundfile as sf

from renderer.video import VideoError, VideoWriter
from tests.media import frame_at, probe


def gradient_frame(i, h=240, w=320):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : (i * 7) % w] = (200, 40, 40)
    return img


def test_stream_frames_with_audio(tmp_path):
    song = tmp_path / "song.wav"
    sf.write(song, np.sin(np.arange(44100 * 5) * 0.05).astype(np.float32) * 0.3, 44100)  # 5 s of audio
    out = tmp_path / "v.mp4"
    with VideoWriter(out, 320, 240, n_frames=45, audio=song) as w:
        for i in range(45):
            w.write(gradient_frame(i))
    info = probe(out)
    assert (info["width"], info["height"], info["fps"], info["frames"]) == (320, 240, 30, 45)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["audio"] and abs(info["audio_duration"] - 1.5) < 0.1  # cut to the video's 1.5 s
    assert abs(info["video_duration"] - 1.5) < 0.05
    frame = frame_at(out, 30)
    assert frame[:, :100].mean(axis=(0, 1))[0] > 150  # the red bar is there
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_short_audio_does_not_cut_the_video(tmp_path):
    song = tmp_path / "s.wav"
    sf.write(song, np.zeros(22050 // 2, np.float32), 22050)  # 0.5 s
    out = tmp_path / "v.mp4"
    with VideoWriter(out, 64, 64, n_frames=60, audio=song) as w:
        for i in range(60):
            w.write(np.zeros((64, 64, 3), np.uint8))
    assert probe(out)["frames"] == 60


def test_existing_output_is_not_clobbered(tmp_path):
    out = tmp_path / "v.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite"):
        VideoWriter(out, 64, 64, n_frames=1)
    assert out.read_bytes() == b"precious"


def test_error_mid_stream_leaves_nothing(tmp_path):
    out = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, 64, 64, n_frames=10) as w:
            w.write(np.zeros((64, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_count_and_size_fail_cleanly(tmp_path):
    out = tmp_path / "v.mp4"
    with pytest.raises(VideoError, match="3 frames written, 5 announced"):
        with VideoWriter(out, 64, 64, n_frames=5) as w:
            for _ in range(3):
                w.write(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="does not match"):
        with VideoWriter(out, 64, 64, n_frames=1) as w:
            w.write(np.zeros((32, 64, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_bad_audio_file_fails_with_its_name(tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio")
    with pytest.raises(VideoError, match="notes.mp3|ffmpeg"):
        with VideoWriter(tmp_path / "v.mp4", 64, 64, n_frames=30, audio=bad) as w:
            for _ in range(30):
                w.write(np.zeros((64, 64, 3), np.uint8))
    assert not (tmp_path / "v.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp3"]


def test_a_video_gets_the_permissions_of_any_new_file(tmp_path):
    """Videos are written through a temporary file; they still follow the umask (0644 under 022)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        with VideoWriter(tmp_path / "v.mp4", 64, 64, 3) as w:
            for _ in range(3):
                w.write(np.zeros((64, 64, 3), np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "v.mp4").stat().st_mode) == 0o644
