"""Foot locking (sync/foot_lock.py) and its switches in the pipeline, the command line and the page."""
import time

import numpy as np
import pytest
import torch

import pipeline
from args import app_parser, generate_all_parser, generate_parser
from body import rotations
from body.skeleton import MOTION_DIM, N_CONTACTS, ROT6D, TRANS_DIM
from sync.beats import body_joints
from eval.metrics import floor_from_toes, foot_skating
from sync.foot_lock import LEGS, clean_contacts, lock_feet

ROOT = pipeline.ROOT
LEG_JOINTS = (1, 2, 4, 5, 7, 8)
ROT0 = N_CONTACTS + TRANS_DIM
ROOT_Y = N_CONTACTS + 1


@pytest.fixture(scope="module")
def rest():
    from body.body_model import BodyModel

    return BodyModel().rest_joints.numpy()


def with_contacts(v315: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((len(v315), N_CONTACTS), np.float32), v315], axis=1)


@pytest.fixture(scope="module")
def demo():
    """The repository's demo dance (10 s, a sway whose feet slide) as a (T, 319) vector."""
    return with_contacts(np.load(ROOT / "assets" / "motion" / "demo_dance.npy"))


def pose_vector(n: int, axis_angle: dict[int, tuple[float, float, float]], trans: np.ndarray) -> np.ndarray:
    """A (n, 319) vector holding one pose (joint → axis-angle, others zero) with a root path."""
    aa = torch.zeros(52, 3, dtype=torch.float64)
    for j, v in axis_angle.items():
        aa[j] = torch.tensor(v, dtype=torch.float64)
    rot6d = rotations.axis_angle_to_rotation_6d(aa).reshape(-1).float().numpy()
    v = np.zeros((n, MOTION_DIM), np.float32)
    v[:, N_CONTACTS:ROT0] = trans
    v[:, ROT0:] = rot6d
    return v


def leg_channels() -> np.ndarray:
    mask = np.zeros(MOTION_DIM, bool)
    for j in LEG_JOINTS:
        mask[ROT0 + j * ROT6D:ROT0 + (j + 1) * ROT6D] = True
    mask[ROOT_Y] = True
    return mask


def knee_bend(joints: np.ndarray) -> np.ndarray:
    """(T, 2) angle (radians) between thigh and shin of each leg; 0 = straight."""
    out = []
    for hip, knee, ankle, _ in LEGS:
        a, b = joints[:, knee] - joints[:, hip], joints[:, ankle] - joints[:, knee]
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        out.append(np.arccos(np.clip(cos, -1, 1)))
    return np.stack(out, axis=1)


def check_lock(before: np.ndarray, result, rest, planted_tolerance: float = 0.004):
    """What every lock must satisfy: planted ankles still, only leg channels changed, no seams,
    no knee straighter than the input's or 8°."""
    after = result.vector
    assert after.shape == before.shape and after.dtype == np.float32
    other = ~leg_channels()
    np.testing.assert_array_equal(after[:, other], before[:, other])        # bit-identical elsewhere
    assert (after[:, ROOT_Y] <= before[:, ROOT_Y]).all()                     # the root only comes down
    j0, j1 = body_joints(before, rest), body_joints(after, rest)
    upper = [3, 6, 9, 12, 15, 16, 20]
    np.testing.assert_array_equal(j1[:, upper][..., [0, 2]], j0[:, upper][..., [0, 2]])
    for side, (_, _, ankle, _) in enumerate(LEGS):
        edges = np.diff(np.concatenate(([0], result.contacts[:, side].astype(int), [0])))
        for s, e in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]):
            span = j1[s:e, ankle]
            assert np.linalg.norm(span - span.mean(0), axis=-1).max() < planted_tolerance, (side, s, e)
    jump0 = np.linalg.norm(np.diff(j0, axis=0), axis=-1).max()
    jump1 = np.linalg.norm(np.diff(j1, axis=0), axis=-1).max()
    # No seams, no pops: no joint moves further in a frame than the input's fastest joint (1 % slack:
    # lowering the root a few mm changes the hands' steps by micrometres).
    assert jump1 <= 1.01 * jump0
    bend0, bend1 = knee_bend(j0), knee_bend(j1)
    assert (bend1 >= np.minimum(bend0, np.radians(8)) - np.radians(0.5)).all()
    return j0, j1


def test_demo_dance_stops_sliding(demo, rest):
    before = foot_skating(body_joints(demo, rest))
    result = lock_feet(demo, rest)
    j0, j1 = check_lock(demo, result, rest)
    after = foot_skating(j1)
    assert before.ratio > 0.5 and after.ratio < 0.5 * before.ratio
    assert result.contacts.mean() > 0.6                        # the feet are down most of the time
    assert abs(floor_from_toes(j1) - floor_from_toes(j0)) < 0.02     # still standing on the same floor


def test_a_root_drift_during_a_stance_is_absorbed_by_the_legs(rest):
    """A bent-knee stance whose root sways 7 cm sideways (1 s period, up to 1.5 cm per frame) from
    frame 20 to 110: the feet skate with the root; locked, they stay put and the legs take the sway."""
    n = 130
    t = np.arange(n)
    trans = np.zeros((n, 3), np.float32)
    trans[:, 0] = np.where((t >= 20) & (t < 110), 0.07 * np.sin(2 * np.pi * (t - 20) / 30), 0.0)
    pose = {1: (-0.3, 0, 0.05), 2: (-0.3, 0, -0.05), 4: (0.6, 0, 0), 5: (0.6, 0, 0), 7: (-0.3, 0, 0), 8: (-0.3, 0, 0),
            16: (0, 0, -1.2), 17: (0, 0, 1.2)}
    v = pose_vector(n, pose, trans)
    before = foot_skating(body_joints(v, rest))
    result = lock_feet(v, rest)
    _, j1 = check_lock(v, result, rest)
    after = foot_skating(j1)
    assert before.ratio > 0.3 and after.ratio < 0.02
    assert result.contacts.all()                               # both feet stay planted through the sway
    assert result.root_drop.max() == 0                         # bent knees reach without lowering the hips


def test_out_of_reach_lowers_the_root_smoothly(rest):
    """Almost straight legs while the hips travel 18 cm forward and back: the feet cannot stay
    planted without lowering the hips, which come down smoothly instead of the knees locking."""
    n = 90
    t = np.arange(n)
    trans = np.zeros((n, 3), np.float32)
    trans[:, 2] = 0.09 * np.sin(2 * np.pi * t / n)
    pose = {1: (-0.06, 0, 0), 2: (-0.06, 0, 0), 4: (0.12, 0, 0), 5: (0.12, 0, 0), 7: (-0.06, 0, 0), 8: (-0.06, 0, 0)}
    v = pose_vector(n, pose, trans)
    result = lock_feet(v, rest)
    assert result.contacts.all()
    j0, j1 = check_lock(v, result, rest, planted_tolerance=0.002)
    drop = result.root_drop
    assert drop.max() > 0.003                                  # the root had to come down …
    np.testing.assert_allclose(v[:, ROOT_Y] - result.vector[:, ROOT_Y], drop, atol=1e-6)
    assert np.abs(np.diff(drop, 2)).max() < 0.2 * drop.max()  # … smoothly (no kinks)
    assert knee_bend(j1).min() >= knee_bend(j0).min() - np.radians(0.5)   # the knees never lock straight


def test_feet_in_the_air_and_still_feet_are_left_alone(rest):
    n = 60
    air = pose_vector(n, {}, np.tile([0.0, 0.0, 0.0], (n, 1)))
    air[:, ROOT_Y] = np.linspace(0.0, 1.5, n)                  # a rising body: the floor is its first frame's feet
    result = lock_feet(air, rest)
    assert not result.contacts[10:].any()
    still = pose_vector(n, {4: (0.3, 0, 0), 5: (0.3, 0, 0)}, np.zeros((n, 3)))
    result = lock_feet(still, rest)
    assert result.contacts.all() and result.max_correction < 1e-6
    np.testing.assert_allclose(result.vector, still, atol=1e-6)


def test_contact_cleanup():
    m = np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0], bool)
    got = clean_contacts(m, min_span=3, max_gap=2)
    want = np.array([0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0], bool)
    np.testing.assert_array_equal(got, want)


def test_fast_and_accepts_both_layouts(demo, rest):
    thirty = np.tile(demo, (3, 1))                              # 900 frames (30 s)
    t0 = time.perf_counter()
    lock_feet(thirty, rest)
    assert time.perf_counter() - t0 < 1.0
    ten_minutes = np.tile(demo, (60, 1))                        # 18 000 frames
    t0 = time.perf_counter()
    lock_feet(ten_minutes, rest)
    assert time.perf_counter() - t0 < 5.0
    r315 = lock_feet(demo[:, N_CONTACTS:], rest)
    np.testing.assert_array_equal(r315.vector, lock_feet(demo, rest).vector[:, N_CONTACTS:])
    with pytest.raises(ValueError):
        lock_feet(demo[:, :300], rest)


def test_switches_on_the_command_line_and_the_page():
    assert pipeline.Settings().foot_lock is True
    for parser in (generate_parser, app_parser, generate_all_parser):
        base = ["song.mp3"] if parser is generate_parser else ["--motion_save_dir", "x"] if parser is generate_all_parser else []
        assert parser().parse_args(base).foot_lock is True
        assert parser().parse_args(base + ["--no_foot_lock"]).foot_lock is False


def test_generate_dance_passes_no_foot_lock(monkeypatch, tmp_path, capsys):
    import generate_dance

    seen = []

    class Recorder:
        def __init__(self, *a, **k):
            pass

        def dance(self, song, settings, progress=None, edit=None, max_seconds=None):
            seen.append(settings)
            raise pipeline.GenerationError("stop here")

    song = tmp_path / "s.wav"
    song.write_bytes(b"")
    monkeypatch.setattr(pipeline, "DanceGenerator", Recorder)
    assert generate_dance.main([str(song), "--out_dir", str(tmp_path), "--no_foot_lock"]) == 1
    assert seen and seen[0].foot_lock is False and seen[0].beat_sync is True


def test_pipeline_locks_after_beat_sync(tiny_checkpoint, tmp_path):
    import soundfile as sf

    sr = 22050
    y = 0.2 * np.sin(2 * np.pi * 220 * np.arange(int(2.5 * sr)) / sr)
    song = tmp_path / "tone.wav"
    sf.write(song, y.astype(np.float32), sr)
    gen = pipeline.DanceGenerator(tiny_checkpoint)
    plain = gen.dance(song, pipeline.Settings(steps=2, foot_lock=False))
    locked = gen.dance(song, pipeline.Settings(steps=2))
    assert plain.foot_lock is None and "foot_lock" not in plain.timings
    assert "foot_lock" in locked.timings and locked.foot_lock is not None
    np.testing.assert_array_equal(locked.vector, lock_feet(plain.vector, gen.rest_joints).vector)
    resynced = gen.beat_synced(locked)                          # keeps the dance's foot-lock setting
    assert resynced.foot_lock is not None and "foot_lock" in resynced.timings
    assert gen.beat_synced(plain).foot_lock is None


def test_page_has_the_plant_the_feet_checkbox(tiny_checkpoint):
    import gradio as gr

    import webapp

    service = webapp.DanceService(lambda: pipeline.DanceGenerator(tiny_checkpoint))
    demo = webapp.build_app(service, defaults=pipeline.Settings(foot_lock=False))
    boxes = {b.label: b.value for b in demo.blocks.values() if isinstance(b, gr.Checkbox)}
    label = next(k for k in boxes if k.startswith("Plant the feet"))
    assert boxes[label] is False
    labels = [b.label for b in demo.blocks.values() if isinstance(b, gr.Checkbox)]
    assert labels.index(label) == labels.index(next(k for k in labels if k.startswith("Snap moves"))) + 1
