"""Kinematic beats and the Beat Alignment Score (SPEC §8) on motions with known answers."""
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from body.skeleton import MOTION_DIM_315, N_JOINTS
from sync import beats as kb


def pulsing_joints(beat_frames, n_frames, n_joints=22, seed=0):
    """(T, J, 3) joints whose common speed is 1 − cos-shaped dips reaching ~0 at each beat frame:
    every joint moves along its own fixed random direction with that speed."""
    t = np.arange(n_frames, dtype=np.float64)
    speed = np.full(n_frames, 0.03)
    for b in beat_frames:
        speed *= 1 - 0.97 * np.exp(-0.5 * ((t - b) / 3.0) ** 2)
    pos = np.cumsum(speed) - speed / 2          # so that the central difference at t is centred on t
    dirs = np.random.default_rng(seed).normal(size=(n_joints, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return pos[:, None, None] * dirs[None]


def test_joint_speed_of_uniform_motion():
    j = np.zeros((10, 4, 3))
    j[:, :, 0] = np.arange(10)[:, None] * 0.02
    np.testing.assert_allclose(kb.joint_speed(j), 0.02)


def test_motion_beats_found_at_speed_minima():
    beats = np.array([25, 60, 81, 130, 170, 200, 260])      # irregular, ≥ 20 frames apart
    found = kb.motion_beats(pulsing_joints(beats, 300))
    assert len(found) == len(beats)
    np.testing.assert_array_less(np.abs(found - beats), 1.01)


def test_bas_is_one_when_motion_beats_sit_on_music_beats():
    period = 15.0                                            # 120 BPM at 30 fps
    music = np.arange(15, 600, period)
    found = kb.motion_beats(pulsing_joints(music, 615))
    result = kb.beat_alignment(music, found, 615)
    assert result.bas > 0.97
    assert result.chance < 0.6 and result.gain > 0.4


def test_shifting_the_music_lowers_bas():
    music = np.arange(20, 580, 20.0)                         # 90 BPM
    found = kb.motion_beats(pulsing_joints(music, 600))
    scores = [kb.beat_alignment_score(music + shift, found) for shift in (0, 1, 3, 6, 10)]
    assert scores[0] > 0.97
    assert all(a > b for a, b in zip(scores, scores[1:]))
    assert scores[2] == pytest.approx(np.exp(-9 / 18), abs=0.05)   # d = 3 frames
    assert scores[-1] < 0.01


def test_bas_formula_and_edge_cases():
    assert kb.beat_alignment_score([10, 20], [10, 23]) == pytest.approx((1 + np.exp(-9 / 18)) / 2)
    assert kb.beat_alignment_score([5.5], [0, 5, 100]) == pytest.approx(np.exp(-0.25 / 18))
    assert kb.beat_alignment_score([10, 20], []) == 0.0
    assert np.isnan(kb.beat_alignment_score([], [3, 4]))
    assert np.isnan(kb.chance_bas([10], [10]))


def test_shifted_grid_follows_local_period():
    np.testing.assert_allclose(kb.shifted_grid([0, 10, 30], 0.5), [5, 20, 40])


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_random_smooth_motion_scores_chance(bpm):
    """No music in the motion: BAS in the range SPEC §8 reports for chance, gain ≈ 0."""
    bas, gains = [], []
    for seed in range(6):
        joints = gaussian_filter1d(np.random.default_rng(seed).normal(size=(900, 22, 3)), 3, axis=0)
        grid = np.arange(10, 900, 30 * 60 / bpm)
        result = kb.beat_alignment(grid, kb.motion_beats(joints), 900)
        bas.append(result.bas)
        gains.append(result.gain)
    assert 0.18 < np.mean(bas) < 0.38
    assert abs(np.mean(gains)) < 0.05


def test_body_joints_of_the_motion_vector():
    rest = torch.zeros(N_JOINTS, 3)
    rest[1:, 1] = -0.1 * torch.arange(1, N_JOINTS)           # any chain will do
    vec = np.zeros((5, MOTION_DIM_315), np.float32)
    vec[:, 3:] = np.tile([1, 0, 0, 0, 1, 0], 52)              # identity rotations
    vec[:, 0] = np.arange(5)                                   # x translation
    j = kb.body_joints(vec, rest)
    assert j.shape == (5, 22, 3)
    np.testing.assert_allclose(j[:, 0, 0], np.arange(5), atol=1e-6)
    np.testing.assert_allclose(j[3] - j[0], np.tile([3.0, 0, 0], (22, 1)), atol=1e-5)
    with_contacts = np.concatenate([np.ones((5, 4), np.float32), vec], axis=1)
    np.testing.assert_allclose(kb.body_joints(with_contacts, rest), j)


def test_music_beats_from_features():
    f = np.zeros((50, 35), np.float32)
    f[[3, 20, 41], 34] = 1
    np.testing.assert_array_equal(kb.music_beats_from_features(f), [3, 20, 41])
