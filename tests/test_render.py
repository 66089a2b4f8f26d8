"""render.py end to end on the bundled clip and the default body, checked with ffprobe."""
import shutil
from pathlib import Path

import numpy as np
import pytest

import render
from motion.formats import load_motion, save_motion
from tests.media import frame_at, probe

ROOT = Path(__file__).resolve().parent.parent
DEMO_MOTION = ROOT / "assets" / "motion" / "demo_dance.npy"
DEMO_SONG = ROOT / "assets" / "music" / "soldiers_joy_house.mp3"
N = 24  # frames: enough to exercise streaming and the camera, quick on a CPU


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("motions")
    save_motion(load_motion(DEMO_MOTION).slice(0, N), d / "dance.npy")
    return d


def test_render_smplx_with_music(clip_dir, tmp_path):
    out = tmp_path / "videos"
    assert render.main(["--modir", str(clip_dir), "--music", str(DEMO_SONG), "--out_dir", str(out)]) == 0
    video = out / "dance.mp4"
    info = probe(video)
    assert (info["width"], info["height"], info["fps"], info["frames"]) == (1200, 1200, 30, N)
    assert info["audio"] and abs(info["audio_duration"] - N / 30) < 0.06
    frame = frame_at(video, N // 2)
    # The body stands in the middle of the picture: bright, warm pixels there; the sky is black.
    middle = frame[300:900, 450:750].astype(int)
    body = (middle[..., 0] > 120) & (middle[..., 0] > middle[..., 2] + 15)
    assert body.mean() > 0.05
    assert frame[:150].max() < 20


def test_default_output_dir_and_audio_beside_motion(clip_dir, capsys):
    shutil.copy(DEMO_SONG, clip_dir / "dance.mp3")
    try:
        assert render.main(["--modir", str(clip_dir / "dance.npy"), "--mode", "skeleton"]) == 0
        video = clip_dir.parent / "videos" / "dance.mp4"
        info = probe(video)
        assert info["frames"] == N and info["audio"]
        # an existing video is an error without --overwrite, and is kept
        stamp = video.stat().st_mtime_ns
        assert render.main(["--modir", str(clip_dir / "dance.npy"), "--mode", "skeleton"]) == 1
        assert video.stat().st_mtime_ns == stamp
        assert "dance.mp4: exists; pass --overwrite" in capsys.readouterr().err
    finally:
        (clip_dir / "dance.mp3").unlink()
        shutil.rmtree(clip_dir.parent / "videos", ignore_errors=True)


def test_bad_file_does_not_stop_the_batch(tmp_path, capsys):
    d = tmp_path / "m"
    d.mkdir()
    save_motion(load_motion(DEMO_MOTION).slice(0, 6), d / "a_good.npz")
    np.save(d / "b_bad.npy", np.zeros((5, 7), np.float32))
    assert render.main(["--modir", str(d), "--mode", "skeleton", "--out_dir", str(tmp_path / "v")]) == 1
    assert probe(tmp_path / "v" / "a_good.mp4")["frames"] == 6
    assert not (tmp_path / "v" / "b_bad.mp4").exists()
    assert "b_bad.npy" in capsys.readouterr().err


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert render.main(["--modir", str(tmp_path / "nope")]) == 1
    assert "nope: no such file or folder" in capsys.readouterr().err
