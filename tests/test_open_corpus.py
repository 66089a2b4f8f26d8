"""The open corpus: beat alignment, time warping and a real one-clip build."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from body import rotations
from body.skeleton import MOTION_DIM_315, N_JOINTS, N_MOTION_JOINTS, PARENTS
from dataset import beats as kb
from dataset import open_corpus as oc
from dataset.music import HOP, SAMPLE_RATE

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "cmu_dance").is_dir() or not (SHARED / "music").is_dir(),
                                  reason=f"shared CMU/music data not found under {SHARED}")
IDENTITY_6D = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), N_MOTION_JOINTS)


def chain_rest() -> torch.Tensor:
    rest = np.zeros((N_JOINTS, 3))
    for j in range(1, N_JOINTS):
        rest[j] = rest[PARENTS[j]] + (0.05 * ((j % 3) - 1), -0.1, 0.02)
    return torch.tensor(rest, dtype=torch.float32)


REST = chain_rest()


def beat_clip(beats, n_frames):
    """(T, 315) motion whose body glides along x with speed dips (to ~0) at the given frames."""
    t = np.arange(n_frames, dtype=np.float64)
    speed = np.full(n_frames, 0.03)
    for b in beats:
        speed *= 1 - 0.97 * np.exp(-0.5 * ((t - b) / 3.0) ** 2)
    motion = np.tile(np.concatenate([[0, 0, 0], IDENTITY_6D]).astype(np.float32), (n_frames, 1))
    motion[:, 0] = np.cumsum(speed) - speed / 2
    return motion


def make_clip(beats, n_frames, name="99_01_test"):
    motion = beat_clip(beats, n_frames)
    found = kb.motion_beats(kb.body_joints(motion, REST))
    return oc.Clip(name, f"{name}.bvh", "test", False, motion, found)


def make_track(period, first, n_beats, name="d99_test_track"):
    beats = first + period * np.arange(n_beats)
    return oc.Track(name, Path(f"{name}.wav"), beats, (beats[-1] + period) / 30, "test", 1800 / period)


SOURCE_BEATS = [20, 48, 80, 105, 140, 171, 205, 232, 270, 301]


def test_synthetic_clip_beats_are_detected():
    clip = make_clip(SOURCE_BEATS, 330)
    np.testing.assert_array_less(np.abs(clip.beats - SOURCE_BEATS), 1.01)


@pytest.mark.parametrize("period, first", [(14.0625, 5.3), (16.36, 2.0), (12.0, 0.0)])
def test_warped_beats_land_within_one_frame_of_music_beats(period, first):
    clip = make_clip(SOURCE_BEATS, 330)
    track = make_track(period, first, 60)
    pair = oc.plan_pair(clip, track)
    assert pair is not None and len(pair.alignment.src) >= 8
    slopes = pair.warp.slopes
    assert slopes.min() >= oc.SLOPE_LIMITS[0] - 1e-9 and slopes.max() <= oc.SLOPE_LIMITS[1] + 1e-9
    # Every anchor's target is a music beat, in output frames.
    targets = pair.alignment.dst - pair.start
    assert np.isin(np.round(pair.alignment.dst, 6), np.round(track.beats, 6)).all()
    motion = oc.sample_motion(clip.motion, pair.warp.inverse(pair.start + np.arange(pair.n_frames)))
    found = kb.motion_beats(kb.body_joints(motion, REST))
    inside = targets[(targets >= 3) & (targets <= pair.n_frames - 4)]
    errors = np.abs(found[None, :] - inside[:, None]).min(axis=1)
    assert (errors <= 1.0 + 1e-6).all(), errors
    music = pair.segment_beats()
    before = kb.beat_alignment_score(music, clip.beats - pair.warp.inverse(pair.start))
    after = kb.beat_alignment(music, found, pair.n_frames)
    assert after.bas > before + 0.05 and after.gain > 0.1


def test_align_beats_recovers_a_uniform_stretch():
    src = np.array([10, 35, 70, 90, 130, 160], float)
    al = oc.align_beats(src, 1.1 * src + 7)
    np.testing.assert_array_equal(al.src, src)
    np.testing.assert_allclose(al.slopes, 1.1)
    assert al.score == pytest.approx(6 - oc.DISTORTION_COST * 5 * np.log(1.1))


def test_align_beats_respects_slope_limits():
    al = oc.align_beats([10, 40, 70], [0, 100, 200])   # every pairing needs a slope ≥ 1.67
    assert len(al.src) == 1 and al.score == 1
    al = oc.align_beats([10, 40, 70, 100], [0, 40, 60, 80])
    assert (al.slopes >= oc.SLOPE_LIMITS[0]).all() and (al.slopes <= oc.SLOPE_LIMITS[1]).all()
    assert oc.align_beats([], [1, 2]) is None


def test_tempo_compatibility():
    assert oc.tempo_compatible(30, 15)            # ×2
    assert oc.tempo_compatible(15, 30)            # ×½
    assert oc.tempo_compatible(42, 14.5)          # ×3
    assert not oc.tempo_compatible(30, 22)        # 0.73, 1.47, 2.2 and 0.37 are all out of range


def test_time_warp_is_invertible_and_extends_end_slopes():
    w = oc.TimeWarp(np.array([10.0, 30.0, 50.0]), np.array([100.0, 120.0, 146.0]), 80)
    x = np.linspace(0, 79, 50)
    np.testing.assert_allclose(w.inverse(w.forward(x)), x, atol=1e-9)
    assert w.forward([0])[0] == pytest.approx(90.0)           # first slope 1 continued backwards
    assert w.forward([79])[0] == pytest.approx(146 + 1.3 * 29)
    assert w.span == pytest.approx((90.0, 146 + 1.3 * 29))


def test_steady_time_warp_passes_anchors_within_limits_and_holds_slope_at_beats():
    src = np.array([12.0, 40, 75, 98, 140, 175])
    dst = np.array([30.0, 62, 92, 122, 167, 200])                    # secants 1.14 0.86 1.30 1.07 0.94
    w = oc.steady_time_warp(src, dst, 200, blend=0)
    np.testing.assert_allclose(w.forward(src), dst, atol=1e-9)
    assert oc.SLOPE_LIMITS[0] - 1e-9 <= w.slopes.min() and w.slopes.max() <= oc.SLOPE_LIMITS[1] + 1e-9
    for b in src:                                                     # one slope across each beat
        left = w.forward(b) - w.forward(b - 4)
        right = w.forward(b + 4) - w.forward(b)
        assert left == pytest.approx(right, rel=1e-9)
    polyline = oc.steady_time_warp(src, dst, 200, radius=0)           # radius 0: plain polyline
    np.testing.assert_allclose(polyline.forward(np.arange(12, 176)), np.interp(np.arange(12, 176), src, dst))


def test_rounded_time_warp_keeps_anchors_and_ramps_the_speed():
    src = np.array([12.0, 40, 75, 98, 140, 175])
    dst = np.array([30.0, 62, 92, 122, 167, 200])
    w = oc.steady_time_warp(src, dst, 200)                            # default: corners rounded
    assert w.blend > 0 and w.round.any()
    np.testing.assert_allclose(w.forward(src), dst, atol=1e-9)
    x = np.arange(0, 199, 0.05)
    slope = np.diff(w.forward(x)) / 0.05
    assert slope.min() >= oc.SLOPE_LIMITS[0] - 1e-6 and slope.max() <= oc.SLOPE_LIMITS[1] + 1e-6
    assert np.abs(np.diff(slope)).max() < 0.01                        # no jump anywhere: ramps only
    sharp = np.abs(np.diff(np.diff(oc.steady_time_warp(src, dst, 200, blend=0).forward(x)) / 0.05)).max()
    assert sharp > 0.05
    np.testing.assert_allclose(w.inverse(w.forward(x[::20])), x[::20], atol=1e-3)


def test_sample_motion_slerps_rotations_and_lerps_translation():
    n = 4
    aa = np.zeros((n, N_MOTION_JOINTS, 3), np.float32)
    aa[:, 5, 2] = np.array([0.0, 0.8, 1.6, 2.4])                 # joint 5 turns 0.8 rad per frame about z
    motion = np.concatenate([np.arange(n * 3, dtype=np.float32).reshape(n, 3),
                             rotations.axis_angle_to_rotation_6d(torch.from_numpy(aa)).reshape(n, -1).numpy()], axis=1)
    np.testing.assert_allclose(oc.sample_motion(motion, np.arange(n)), motion, atol=1e-6)
    mid = oc.sample_motion(motion, np.array([0.5, 2.25]))
    np.testing.assert_allclose(mid[:, :3], [motion[0, :3] * 0.5 + motion[1, :3] * 0.5,
                                            motion[2, :3] * 0.75 + motion[3, :3] * 0.25], atol=1e-6)
    angle = rotations.rotation_6d_to_axis_angle(torch.from_numpy(mid[:, 3:]).reshape(2, N_MOTION_JOINTS, 6))[:, 5]
    np.testing.assert_allclose(angle.numpy(), [[0, 0, 0.4], [0, 0, 1.8]], atol=1e-5)
    with pytest.raises(ValueError):
        oc.sample_motion(np.zeros((3, 319), np.float32), [0])


@needs_shared
def test_tiny_real_build(tmp_path):
    from dataset.finedance import FineDanceDataset

    out = tmp_path / "corpus"
    summary = oc.build(out, only_clips=("05_02", "05_20"), only_tracks=("d02", "d01"), progress=False)
    splits = json.loads((out / "splits.json").read_text())
    assert splits["train"] == ["05_02_modern__d02"]                 # its mirror has no second track to take
    assert splits["test"] == ["05_20_modern__d01"]                  # held-out clip × held-out track
    for name in splits["train"] + splits["test"]:
        motion = np.load(out / "motion" / f"{name}.npy")
        music = np.load(out / "music_npy" / f"{name}.npy")
        assert motion.dtype == np.float32 and motion.shape[1] == MOTION_DIM_315
        assert music.shape == (len(motion), 35) and len(motion) >= 120
        y, sr = sf.read(out / "music_wav" / f"{name}.wav")
        assert sr == SAMPLE_RATE and len(y) == len(motion) * HOP
        label = json.loads((out / "label_json" / f"{name}.json").read_text())
        assert label["source_clip"] in ("05_02", "05_20") and label["mirrored"] is False
        tw = label["time_warp"]
        assert oc.SLOPE_LIMITS[0] <= tw["slope_min"] <= tw["slope_max"] <= oc.SLOPE_LIMITS[1]
        assert np.isfinite([label["bas_after"], label["chance_after"], label["bas_before"]]).all()
    with open(out / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == splits["train"] + splits["test"]
    assert summary["train"]["pairs"] == 1 and summary["test"]["pairs"] == 1
    ds = FineDanceDataset(out, "train", rest_joints=REST, min_std=0)
    frames = len(np.load(out / "motion" / "05_02_modern__d02.npy"))
    assert len(ds) == (frames - 120) // 12 + 1
