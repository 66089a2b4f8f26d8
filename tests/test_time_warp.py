"""Time warps: beat alignment, steady time maps, motion resampling and beat sync of generated dances."""
import numpy as np
import pytest
import torch

from body import rotations
from body.body_model import BodyModel
from body.skeleton import MOTION_DIM, N_CONTACTS, N_MOTION_JOINTS
from sync import beats as kb
from sync import time_warp as tw

IDENTITY_6D = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), N_MOTION_JOINTS)


@pytest.fixture(scope="module")
def rest_joints():
    return BodyModel().rest_joints


def swaying_dance(n: int, period: float, phase: float) -> np.ndarray:
    """A (n, 319) dance that sways sideways: its speed drops to zero every period / 2 frames, at
    phase + k · period / 2 (its kinematic beats)."""
    t = np.arange(n, dtype=np.float64)
    vector = np.tile(np.concatenate([np.zeros(N_CONTACTS + 3), IDENTITY_6D]).astype(np.float32), (n, 1))
    vector[:, N_CONTACTS] = 0.3 * np.cos(2 * np.pi * (t - phase) / period)   # x: turns at phase + k·P/2
    vector[:, 1] = (t % 20 < 10)                                             # a contact channel
    return vector


def test_align_beats_recovers_a_uniform_stretch():
    src = np.array([10, 35, 70, 90, 130, 160], float)
    al = tw.align_beats(src, 1.1 * src + 7)
    np.testing.assert_array_equal(al.src, src)
    np.testing.assert_allclose(al.slopes, 1.1)
    assert al.score == pytest.approx(6 - tw.DISTORTION_COST * 5 * np.log(1.1))


def test_align_beats_respects_slope_limits():
    al = tw.align_beats([10, 40, 70], [0, 100, 200])   # every pairing needs a slope ≥ 1.67
    assert len(al.src) == 1 and al.score == 1
    al = tw.align_beats([10, 40, 70, 100], [0, 40, 60, 80])
    assert (al.slopes >= tw.SLOPE_LIMITS[0]).all() and (al.slopes <= tw.SLOPE_LIMITS[1]).all()
    assert tw.align_beats([], [1, 2]) is None


def test_time_warp_is_invertible_and_extends_end_slopes():
    w = tw.TimeWarp(np.array([10.0, 30.0, 50.0]), np.array([100.0, 120.0, 146.0]), 80)
    x = np.linspace(0, 79, 50)
    np.testing.assert_allclose(w.inverse(w.forward(x)), x, atol=1e-9)
    assert w.forward([0])[0] == pytest.approx(90.0)           # first slope 1 continued backwards
    assert w.forward([79])[0] == pytest.approx(146 + 1.3 * 29)
    assert w.span == pytest.approx((90.0, 146 + 1.3 * 29))


def test_steady_time_warp_passes_anchors_within_limits_and_holds_slope_at_beats():
    src = np.array([12.0, 40, 75, 98, 140, 175])
    dst = np.array([30.0, 62, 92, 122, 167, 200])                    # secants 1.14 0.86 1.30 1.07 0.94
    w = tw.steady_time_warp(src, dst, 200, blend=0)
    np.testing.assert_allclose(w.forward(src), dst, atol=1e-9)
    assert tw.SLOPE_LIMITS[0] - 1e-9 <= w.slopes.min() and w.slopes.max() <= tw.SLOPE_LIMITS[1] + 1e-9
    for b in src:                                                     # one slope across each beat
        left = w.forward(b) - w.forward(b - 4)
        right = w.forward(b + 4) - w.forward(b)
        assert left == pytest.approx(right, rel=1e-9)
    polyline = tw.steady_time_warp(src, dst, 200, radius=0)           # radius 0: plain polyline
    np.testing.assert_allclose(polyline.forward(np.arange(12, 176)), np.interp(np.arange(12, 176), src, dst))


def test_rounded_time_warp_keeps_anchors_and_ramps_the_speed():
    src = np.array([12.0, 40, 75, 98, 140, 175])
    dst = np.array([30.0, 62, 92, 122, 167, 200])
    w = tw.steady_time_warp(src, dst, 200)                            # default: corners rounded
    assert w.blend > 0 and w.round.any()
    np.testing.assert_allclose(w.forward(src), dst, atol=1e-9)
    x = np.arange(0, 199, 0.05)
    slope = np.diff(w.forward(x)) / 0.05
    assert slope.min() >= tw.SLOPE_LIMITS[0] - 1e-6 and slope.max() <= tw.SLOPE_LIMITS[1] + 1e-6
    assert np.abs(np.diff(slope)).max() < 0.01                        # no jump anywhere: ramps only
    sharp = np.abs(np.diff(np.diff(tw.steady_time_warp(src, dst, 200, blend=0).forward(x)) / 0.05)).max()
    assert sharp > 0.05
    np.testing.assert_allclose(w.inverse(w.forward(x[::20])), x[::20], atol=1e-3)


def test_sample_motion_slerps_rotations_and_lerps_translation():
    n = 4
    aa = np.zeros((n, N_MOTION_JOINTS, 3), np.float32)
    aa[:, 5, 2] = np.array([0.0, 0.8, 1.6, 2.4])                 # joint 5 turns 0.8 rad per frame about z
    motion = np.concatenate([np.arange(n * 3, dtype=np.float32).reshape(n, 3),
                             rotations.axis_angle_to_rotation_6d(torch.from_numpy(aa)).reshape(n, -1).numpy()], axis=1)
    np.testing.assert_allclose(tw.sample_motion(motion, np.arange(n)), motion, atol=1e-6)
    mid = tw.sample_motion(motion, np.array([0.5, 2.25]))
    np.testing.assert_allclose(mid[:, :3], [motion[0, :3] * 0.5 + motion[1, :3] * 0.5,
                                            motion[2, :3] * 0.75 + motion[3, :3] * 0.25], atol=1e-6)
    angle = rotations.rotation_6d_to_axis_angle(torch.from_numpy(mid[:, 3:]).reshape(2, N_MOTION_JOINTS, 6))[:, 5]
    np.testing.assert_allclose(angle.numpy(), [[0, 0, 0.4], [0, 0, 1.8]], atol=1e-5)
    with pytest.raises(ValueError):
        tw.sample_motion(np.zeros((3, 319), np.float32), [0])




def test_align_beats_near_keeps_anchors_near_the_diagonal_and_bridges_gaps():
    src = np.array([10.0, 60, 110, 160])
    dst = src + 20                                     # a perfect match, but 20 frames away
    assert len(tw.align_beats(src, dst).src) == 4
    assert tw.align_beats_near(src, dst, max_offset=15) is None
    al = tw.align_beats_near(src, np.sort(np.concatenate([dst, src + 5])), max_offset=15)
    np.testing.assert_allclose(al.dst - al.src, 5)
    # 40 motion beats, every other one without a partner nearby: one chain still spans them all.
    src = 10.0 + 15 * np.arange(40)
    dst = src[::2] + 3
    al = tw.align_beats_near(src, dst, max_offset=8, limits=(0.8, 1.25))
    np.testing.assert_allclose(al.src, src[::2])
    assert tw.align_beats_near([], [1.0], 5) is None


def test_sync_to_beats_moves_kinematic_beats_onto_music_beats(rest_joints):
    n = 300
    dance = swaying_dance(n, period=40, phase=0)                  # beats at 10, 30, 50, …
    music = 17 + 21 * np.arange(14)                               # other tempo and phase: 17, 38, …
    before = kb.beat_alignment(music[music < n], kb.motion_beats(kb.body_joints(dance, rest_joints)), n)
    sync = tw.sync_to_beats(dance, music, rest_joints)
    assert sync.changed and sync.vector.shape == (n, MOTION_DIM)
    assert sync.max_shift <= tw.SYNC_MAX_OFFSET + 5
    after = kb.beat_alignment(music[music < n], kb.motion_beats(kb.body_joints(sync.vector, rest_joints)), n)
    assert after.bas > 0.9 and after.bas > before.bas + 0.3
    x = sync.vector[:, N_CONTACTS]                                 # only re-timed: same sway amplitude
    assert np.abs(x).max() == pytest.approx(0.3, abs=1e-3)
    speed_ratio = np.abs(np.diff(x)).max() / np.abs(np.diff(dance[:, N_CONTACTS])).max()
    assert 1 / tw.SYNC_LIMITS[1] - 0.02 <= speed_ratio <= 1 / tw.SYNC_LIMITS[0] + 0.02
    assert ((sync.vector[:, :N_CONTACTS] >= 0) & (sync.vector[:, :N_CONTACTS] <= 1)).all()


def test_sync_to_beats_leaves_unreachable_or_beatless_input_alone(rest_joints):
    dance = swaying_dance(200, period=40, phase=0)
    for music in (np.zeros(0), np.array([500.0, 520.0])):        # no beats; beats past the dance
        sync = tw.sync_to_beats(dance, music, rest_joints)
        assert not sync.changed and sync.max_shift == 0
        np.testing.assert_array_equal(sync.vector, dance)
    still = np.tile(dance[:1], (200, 1))                          # no kinematic beats
    assert not tw.sync_to_beats(still, 10 + 20 * np.arange(9), rest_joints).changed
    with pytest.raises(ValueError):
        tw.sync_to_beats(dance[:, :315], [10, 30], rest_joints)
