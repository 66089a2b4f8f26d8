"""The open corpus: beat alignment, time warping and a real one-clip build."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from body.skeleton import MOTION_DIM_315, N_JOINTS, N_MOTION_JOINTS, PARENTS
from sync import beats as kb
from dataset import open_corpus as oc
from audio.music import HOP, SAMPLE_RATE
from tests.conftest import needs_shared_data

needs_shared = needs_shared_data("cmu_dance", "music")
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


def test_tempo_compatibility():
    assert oc.tempo_compatible(30, 15)            # ×2
    assert oc.tempo_compatible(15, 30)            # ×½
    assert oc.tempo_compatible(42, 14.5)          # ×3
    assert not oc.tempo_compatible(30, 22)        # 0.73, 1.47, 2.2 and 0.37 are all out of range


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


def test_reference_features_are_the_official_ones_of_the_written_wav(tmp_path):
    """--reference (issue 23): a pair's music_npy is what the official pre_music.py computes from its
    music_wav file (audio.music.reference_song_features), written by render_pair; the motion, the
    segment and the length are the same as ours."""
    from audio.music import reference_song_features

    clip = make_clip(SOURCE_BEATS, 330)
    track = make_track(14.0625, 5.3, 60)
    pair = oc.plan_pair(clip, track)
    click = 0.5 * np.random.default_rng(0).normal(size=400) * np.exp(-np.arange(400) / 60)
    audio = np.zeros(int(track.duration_s * SAMPLE_RATE) + 400, np.float32)
    for b in track.beats:                                                   # a click on every beat
        i = int(round(b / 30 * SAMPLE_RATE))
        audio[i:i + 400] += click
    wav = tmp_path / "music_wav" / "pair.wav"
    motion, feats, seg, _ = oc.render_pair(pair, audio, REST, reference_wav=wav)
    ours_motion, ours, ours_seg, _ = oc.render_pair(pair, audio, REST)
    np.testing.assert_array_equal(motion, ours_motion)
    np.testing.assert_array_equal(seg, ours_seg)
    assert feats.shape == ours.shape == (pair.n_frames, 35)
    y, sr = sf.read(wav)
    assert sr == SAMPLE_RATE and len(y) == pair.n_frames * HOP
    np.testing.assert_array_equal(feats, reference_song_features(wav)[0][:pair.n_frames])
    assert not np.array_equal(feats, ours)           # 16-bit samples, another start tempo


def test_build_open_corpus_reference_option():
    from data.code.build_open_corpus import parse_args

    assert parse_args(["--out", "x", "--reference"]).reference is True
    assert parse_args(["--out", "x"]).reference is False
