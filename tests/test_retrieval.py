"""Retrieval: the bank, clips fitted to a tempo and joined without seams, SDEdit sampling from them."""
import numpy as np
import pytest
import torch

from body.body_model import BodyModel
from sync.beats import body_joints
from retrieval import bank as rb


@pytest.fixture(scope="module")
def rest():
    return BodyModel().rest_joints


@pytest.fixture(scope="module")
def shipped():
    return rb.Bank.load()


def demo_bank() -> rb.Bank:
    demo = np.load("assets/motion/demo_dance.npy")                 # (300, 315)
    return rb.Bank(("a", "b"), ("x", "y"), (demo[:200], demo[100:]), (np.arange(10, 200, 20.0), np.arange(5, 200, 30.0)))


def test_bank_round_trip_and_errors(tmp_path):
    bank = demo_bank()
    path = bank.save(tmp_path / "bank.npz")
    back = rb.Bank.load(path)
    assert back.names == ("a", "b") and back.styles == ("x", "y")
    for m, b in zip(back.motions, bank.motions):
        assert np.all(np.abs(m - b) <= 1e-3 * (1 + np.abs(b)))          # float16 storage
    np.testing.assert_allclose(back.pulses, [20.0, 30.0])
    with pytest.raises(rb.BankError, match="missing.npz: retrieval bank not found"):
        rb.Bank.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a bank")
    with pytest.raises(rb.BankError, match="bad.npz: not a retrieval bank"):
        rb.Bank.load(tmp_path / "bad.npz")


def test_shipped_bank_holds_training_clips_only(shipped):
    from dataset.open_corpus import HELD_OUT_CLIPS

    assert len(shipped) >= 40
    assert not any(n.startswith(held) for n in shipped.names for held in HELD_OUT_CLIPS)
    assert np.isfinite(shipped.pulses).mean() > 0.9


def test_tempo_scale_picks_the_nearest_multiple_of_the_beat():
    assert rb.tempo_scale(36.0, 12.0) == pytest.approx(1.0)              # three beats
    assert rb.tempo_scale(33.0, 15.0) == pytest.approx(30 / 33)          # two beats, played faster
    assert rb.tempo_scale(30.0, 21.0) is None                           # 0.7 or 1.4 beats: none fits
    assert rb.tempo_scale(np.inf, 15.0) is None


def test_turned_changes_the_heading_by_the_angle(rest):
    demo = np.load("assets/motion/demo_dance.npy")[:40]
    out = rb.turned(demo, 0.7, rest[0].numpy())
    diff = (rb.heading(out) - rb.heading(demo) + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(diff, 0.7, atol=1e-5)
    # The body turns as a whole: distances between joints and the height are kept.
    j0, j1 = body_joints(demo, rest), body_joints(out, rest)
    np.testing.assert_allclose(np.linalg.norm(j1[:, 1:] - j1[:, :1], axis=-1),
                               np.linalg.norm(j0[:, 1:] - j0[:, :1], axis=-1), atol=1e-4)
    np.testing.assert_allclose(j1[..., 1], j0[..., 1], atol=1e-4)


def test_retrieve_covers_the_song_without_seams_and_follows_the_seed(shipped, rest):
    beats = np.arange(7, 1200, 15.0)                                   # 120 BPM
    a = rb.retrieve(shipped, beats, 1200, seed=0, pelvis_rest=rest[0].numpy())
    assert a.motion.shape == (1200, 315) and len(a.clips) >= 1
    again = rb.retrieve(shipped, beats, 1200, seed=0, pelvis_rest=rest[0].numpy())
    np.testing.assert_array_equal(a.motion, again.motion)
    other = rb.retrieve(shipped, beats, 1200, seed=1, pelvis_rest=rest[0].numpy())
    assert np.abs(other.motion - a.motion).max() > 0.1
    # No seam: the largest frame-to-frame joint step is not far above the motion's own 99th percentile.
    joints = body_joints(a.motion, rest)
    step = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max(axis=1)
    assert step.max() < 3 * np.percentile(step, 99)
    assert np.abs(a.motion[:, [0, 2]]).max() < 2.0                       # drift removed
    assert a.motion[0, 1] == 0.0
    facing = rb.heading(a.motion)                                      # faces the camera on average
    assert abs(np.arctan2(np.sin(facing).mean(), np.cos(facing).mean())) < 1e-4


def test_retrieve_synced_keeps_the_best_beat_fit(shipped, rest):
    beats = np.arange(7, 600, 16.0)
    best = rb.retrieve_synced(shipped, beats, 600, seed=0, rest_joints=rest, candidates=3)
    assert best.motion.shape == (600, 319) and np.isfinite(best.beat_gain)
    for k in range(3):
        one = rb.retrieve_synced(shipped, beats, 600, seed=0, rest_joints=rest, candidates=k + 1)
        assert one.beat_gain <= best.beat_gain + 1e-12
    assert best.beat_gain > 0.02                                       # re-timed onto the beat


def test_sample_long_inpaints_around_kept_motion(tiny_checkpoint):
    """Kept numbers come back exactly; the rest is generated, and depends on what was kept."""
    from model.checkpoint import load_checkpoint
    from model.diffusion import GaussianDiffusion

    model = load_checkpoint(tiny_checkpoint).model.eval()
    diffusion = GaussianDiffusion()
    music = torch.zeros(200, 35)
    music[::15, 34] = 1
    known = torch.from_numpy(np.concatenate([np.zeros((200, 4), np.float32),
                                             np.load("assets/motion/demo_dance.npy")[:200]], axis=1))
    keep = torch.zeros(200, 319)
    keep[:80, :139] = 1                                   # the body's first 80 frames
    keep[150:, :] = 1                                     # everything after frame 150
    kw = dict(n_frames=200, steps=6, generator=0)
    plain = diffusion.sample_long(model, music, **kw)
    a = diffusion.sample_long(model, music, known=known, keep=keep, **kw)
    torch.testing.assert_close(a[keep > 0], known[keep > 0])
    assert (a[keep == 0] - plain[keep == 0]).abs().max() > 1e-2
    shifted = known.clone()
    shifted[:, 4:7] += 0.5
    b = diffusion.sample_long(model, music, known=shifted, keep=keep, **kw)
    assert (a[90:140, :139] - b[90:140, :139]).abs().max() > 1e-3       # the generated span follows the kept one
    torch.testing.assert_close(diffusion.sample_long(model, music, known=known, keep=keep, **kw), a)
    with pytest.raises(ValueError, match="known must be"):
        diffusion.sample_long(model, music, known=known[:100], keep=keep[:100], **kw)


def test_keep_mask_frees_the_hands_and_the_joins():
    r = rb.Retrieved(np.zeros((200, 319), np.float32), ("a", "b"), (100,))
    keep = r.keep_mask()
    assert keep.shape == (200, 319)
    assert np.all(keep[:, 139:] == 0)                                    # hands: generated
    assert np.all(keep[:100 - rb.TRANSITION - rb.FADE, :139] == 1)
    assert np.all(keep[100 - rb.TRANSITION:100 + rb.TRANSITION + 1] == 0)  # the join: generated
    assert np.all(np.diff(keep[:100, 0]) <= 0) and np.all(np.diff(keep[100:, 0]) >= 0)   # smooth fades


def test_pipeline_retrieval_is_switchable(tiny_checkpoint, tmp_path):
    import soundfile as sf

    import pipeline

    sr = 22050
    y = 0.1 * np.sin(2 * np.pi * 220 * np.arange(4 * sr) / sr)
    for b in np.arange(0.2, 4, 0.5):
        y[int(b * sr):int(b * sr) + 300] += 0.5
    sf.write(tmp_path / "clicks.wav", y.astype(np.float32), sr)
    gen = pipeline.DanceGenerator(tiny_checkpoint, device="cpu")
    on = gen.dance(tmp_path / "clicks.wav", pipeline.Settings(duration=3, steps=4))
    off = gen.dance(tmp_path / "clicks.wav", pipeline.Settings(duration=3, steps=4, retrieval=False))
    assert on.retrieved and not off.retrieved and "retrieval" in on.timings
    one = gen.dance(tmp_path / "clicks.wav", pipeline.Settings(duration=0.04, steps=2))   # 1 frame: generated outright
    assert one.vector.shape == (1, 319) and not one.retrieved
    assert on.vector.shape == off.vector.shape == (90, 319)
    assert np.abs(on.vector - off.vector).max() > 1e-2
    missing = pipeline.DanceGenerator(tiny_checkpoint, device="cpu", bank=tmp_path / "none.npz")
    with pytest.raises(pipeline.GenerationError, match="none.npz: retrieval bank not found"):
        missing.dance(tmp_path / "clicks.wav", pipeline.Settings(duration=3, steps=4))


def test_retrieval_takes_any_seed_and_very_short_dances(shipped, rest, tiny_checkpoint, tmp_path):
    beats = np.arange(5, 300, 15.0)
    a = rb.retrieve_synced(shipped, beats, 300, seed=-1, rest_joints=rest, candidates=2)
    assert a.motion.shape == (300, 319)
    none = rb.retrieve_synced(shipped, np.zeros(0), 60, seed=0, rest_joints=rest, candidates=2)
    assert none.motion.shape == (60, 319) and none.beat_gain is None       # no beats: nothing to score
    short = rb.Bank(("s",), ("x",), (np.load("assets/motion/demo_dance.npy")[:20],), (np.zeros(0),))
    with pytest.raises(rb.BankError, match="no clip of at least"):
        rb.retrieve(short, beats, 100, 0, rest[0].numpy())
