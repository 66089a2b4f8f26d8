"""Diffusion: schedule, losses, DDIM and the long-song sampler (with a tiny random model)."""
from __future__ import annotations

import math

import pytest
import torch

from body import rotations
from body.skeleton import FOOT_JOINTS, MOTION_DIM, N_CONTACTS, N_MOTION_JOINTS
from audio.music import BEAT_CHANNEL
from model.diffusion import (GaussianDiffusion, LossWeights, beat_contrast, ddim_timesteps,
                             join_windows, song_windows, speed_profile)
from motion.layout import MOTION_319
from model.network import MUSIC_DIM, ModelConfig, SeqModel, beat_phase_features

WINDOW, STRIDE = 120, 60


@pytest.fixture(scope="module")
def rest_joints() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randn(55, 3, generator=g) * 0.1


@pytest.fixture(scope="module")
def diffusion(rest_joints) -> GaussianDiffusion:
    return GaussianDiffusion(rest_joints=rest_joints)


@pytest.fixture(scope="module")
def tiny_model() -> SeqModel:
    torch.manual_seed(0)
    return SeqModel(ModelConfig.tiny()).eval()


def make_motion(frames: int, moving: bool = True, contact: float = 1.0, seed: int = 0,
                batch: int | None = None) -> torch.Tensor:
    """Smooth 319-d motion: sinusoidal joint rotations and a drifting root (or a still pose)."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch,) if batch else ()
    t = torch.arange(frames, dtype=torch.float32)[:, None, None]
    phase = torch.rand(*shape, 1, N_MOTION_JOINTS, 3, generator=g) * 2 * math.pi
    amp = 0.2 + 0.3 * torch.rand(*shape, 1, N_MOTION_JOINTS, 3, generator=g)
    axis_angle = amp * torch.sin(0.1 * t * moving + phase)                        # (…, T, 52, 3)
    rot6d = rotations.axis_angle_to_rotation_6d(axis_angle).flatten(-2)
    trans = 0.01 * t[..., 0] * moving * torch.tensor([1.0, 0.0, 0.5]) + torch.zeros(*shape, frames, 3)
    contacts = torch.full((*shape, frames, N_CONTACTS), contact)
    return torch.cat((contacts, trans, rot6d), dim=-1)


def rotation_change(motion: torch.Tensor) -> torch.Tensor:
    """Per frame step, the largest joint rotation change in radians: (T, 319) → (T − 1,)."""
    mats = rotations.rotation_6d_to_matrix(motion[..., MOTION_319.rotations].unflatten(-1, (N_MOTION_JOINTS, 6)))
    rel = mats[1:].transpose(-1, -2) @ mats[:-1]
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.acos(cos).amax(-1)


# ---------------------------------------------------------------------------------------------
# Schedule


def test_cosine_schedule(diffusion):
    betas, abar = diffusion.betas, diffusion.alphas_cumprod
    assert betas.shape == (1000,) and betas.dtype == torch.float32
    assert betas.max().item() == pytest.approx(0.999) and betas.min() > 0
    assert torch.all(abar[1:] < abar[:-1])
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 250, 500, 900):
        assert abar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-4)
    assert diffusion.state_dict().keys() >= {"betas", "alphas_cumprod"}
    assert "rest_joints" not in diffusion.state_dict()


def test_ddim_timesteps():
    pairs = ddim_timesteps(1000, 50)
    assert len(pairs) == 50
    assert [t for t, _ in pairs] == list(range(999, 0, -20))
    assert pairs[-1] == (19, -1)
    assert ddim_timesteps(1000, 1) == [(999, -1)]


def test_q_sample_and_noise_inverse(diffusion):
    x0, noise = torch.randn(3, 8, MOTION_DIM), torch.randn(3, 8, MOTION_DIM)
    t = torch.tensor([0, 500, 999])
    x_t = diffusion.q_sample(x0, t, noise)
    abar = diffusion.alphas_cumprod[t][:, None, None]
    torch.testing.assert_close(x_t, abar.sqrt() * x0 + (1 - abar).sqrt() * noise)
    torch.testing.assert_close(diffusion.noise_from_x0(x_t, t, x0)[1:], noise[1:], atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# Losses


def test_losses_zero_for_exact_prediction(diffusion):
    still = make_motion(16, moving=False, contact=1.0, batch=2)
    assert all(v.item() == 0 for v in diffusion.losses(still, still.clone()).values())
    moving = make_motion(16, moving=True, contact=0.0, batch=2)
    assert all(v.item() == 0 for v in diffusion.losses(moving, moving.clone()).values())


def test_losses_positive_for_wrong_prediction(diffusion):
    target = make_motion(16, contact=0.0, batch=2)
    pred = target.clone()
    pred[..., MOTION_319.translation] += 0.05
    pred[..., MOTION_319.rotations] += 0.05 * torch.randn(pred[..., MOTION_319.rotations].shape, generator=torch.Generator().manual_seed(0))
    terms = diffusion.losses(pred, target)
    assert terms["x0"] > 0 and terms["velocity"] > 0 and terms["fk"] > 0 and terms["foot"] == 0
    w = LossWeights()
    expected = w.x0 * terms["x0"] + w.velocity * terms["velocity"] + w.fk * terms["fk"]
    torch.testing.assert_close(terms["loss"], expected)
    # A shift of the root alone moves every joint equally: the FK term is exactly its square.
    shifted = target.clone()
    shifted[..., MOTION_319.translation] += 0.1
    torch.testing.assert_close(diffusion.losses(shifted, target)["fk"], torch.tensor(0.01))
    assert diffusion.losses(shifted, target)["velocity"] < 1e-12


def test_foot_loss_only_where_predicted_contact(diffusion):
    pred = make_motion(24, contact=0.94, batch=2)
    assert diffusion.losses(pred, pred)["foot"] == 0             # 0.94 is not a contact
    pred[:, 10:20, :N_CONTACTS] = 0.96
    joints = diffusion.joints(pred)[:, :, list(FOOT_JOINTS)]     # (B, T, 4, 3)
    vel = joints[:, 1:] - joints[:, :-1]
    expected = vel[:, 10:20].pow(2).sum() / joints.numel()       # mean over B·T·4·3
    foot = diffusion.losses(pred, pred)["foot"]
    assert foot > 0
    torch.testing.assert_close(foot, expected)
    # Contacts on the last frame alone count nothing (its velocity is defined as zero).
    pred[:, :, :N_CONTACTS] = 0.0
    pred[:, -1, :N_CONTACTS] = 1.0
    assert diffusion.losses(pred, pred)["foot"] == 0


def test_speed_loss_scores_the_rhythm_not_the_pose(diffusion):
    """The speed-profile loss: zero for a prediction that moves at the target's speed in another
    direction, positive for one that moves at another speed; weighted into the total only when asked."""
    target = make_motion(24, moving=False, contact=0.0, batch=2)     # a still pose…
    n = target.shape[1]
    ramp = torch.linspace(0, 0.3, n)[None, :]
    target[..., MOTION_319.translation.start] += ramp                  # walks along x at a constant speed
    sideways = target.clone()
    sideways[..., MOTION_319.translation.start] -= ramp
    sideways[..., MOTION_319.translation.start + 2] += ramp            # the same speed, along z
    assert diffusion.losses(sideways, target)["speed"] < 1e-10
    assert diffusion.losses(sideways, target)["fk"] > 1e-4
    slower = target.clone()
    slower[..., MOTION_319.translation.start] -= ramp / 2
    terms = diffusion.losses(slower, target)
    assert terms["speed"] > 0.1
    weighted = GaussianDiffusion(rest_joints=diffusion.rest_joints, loss_weights=LossWeights(speed=0.5))
    torch.testing.assert_close(weighted.losses(slower, target)["loss"], terms["loss"] + 0.5 * terms["speed"])


def pulsing_walk(n: int, period: int, amplitude: float) -> torch.Tensor:
    """A still pose walking along x at a speed of 1 + amplitude·cos(2π·frame/period) cm per frame."""
    motion = make_motion(n, moving=False, contact=0.0, batch=1)
    f = torch.arange(n, dtype=torch.float32)
    x = 0.01 * (f + amplitude * period / (2 * math.pi) * torch.sin(2 * math.pi * f / period))
    motion[..., MOTION_319.translation.start] += x
    return motion


def beat_music(n: int, period: int) -> torch.Tensor:
    music = torch.zeros(1, n, MUSIC_DIM)
    music[0, ::period, BEAT_CHANNEL] = 1.0
    return music


def test_beat_contrast_and_loss(diffusion):
    """Beat contrast: −a/2 for a speed of 1 + a·cos 2πφ (slow on the beat), +a/2 when the body
    is fastest on the beat, 0 without beats. The beat loss is zero once a window's contrast is below
    −margin and positive above it, and is weighted into the total only when asked."""
    n, period = 60, 10
    phase = beat_phase_features(beat_music(n, period)[..., BEAT_CHANNEL])
    on_beat, off_beat = pulsing_walk(n, period, -0.4), pulsing_walk(n, period, 0.4)   # slowest, fastest on beats
    contrast = beat_contrast(speed_profile(diffusion.joints(torch.cat((on_beat, off_beat)))), phase.expand(2, -1, -1))
    torch.testing.assert_close(contrast, torch.tensor([-0.2, 0.2]), atol=0.06, rtol=0)   # window edges
    no_beats = beat_phase_features(torch.zeros(1, n))
    assert beat_contrast(speed_profile(diffusion.joints(on_beat)), no_beats).abs().item() == 0
    assert diffusion.losses(on_beat, on_beat, phase)["beat"] == 0                    # −0.19 < −0.1
    assert diffusion.losses(off_beat, off_beat, phase)["beat"] > 0.05
    assert diffusion.losses(off_beat, off_beat)["beat"] == 0                         # no phase, no loss
    weighted = GaussianDiffusion(rest_joints=diffusion.rest_joints, loss_weights=LossWeights(beat=3.0))
    plain = diffusion.losses(off_beat, off_beat, phase)
    torch.testing.assert_close(weighted.losses(off_beat, off_beat, phase)["loss"], plain["loss"] + 3 * plain["beat"])


def test_beat_loss_backpropagates_from_the_music_beats(rest_joints):
    """With a beat weight, training_losses computes the phase from the music's beat channel itself."""
    diffusion = GaussianDiffusion(rest_joints=rest_joints, loss_weights=LossWeights(beat=1.0, beat_margin=1.0))
    model = SeqModel(ModelConfig.tiny()).train()
    terms = diffusion.training_losses(model, make_motion(WINDOW, batch=2), beat_music(WINDOW, 12).expand(2, -1, -1),
                                      generator=torch.Generator().manual_seed(0))
    assert terms["beat"] > 0
    terms["beat"].backward()
    assert model.body_net.final_layer.weight.grad.abs().sum() > 0


def test_training_losses_backpropagate(diffusion):
    model = SeqModel(ModelConfig.tiny()).train()
    x0 = make_motion(WINDOW, batch=2)
    music = torch.randn(2, WINDOW, MUSIC_DIM)
    terms = diffusion.training_losses(model, x0, music, generator=torch.Generator().manual_seed(0))
    assert set(terms) == {"loss", "x0", "velocity", "fk", "foot", "speed", "beat"}
    assert terms["beat"] == 0                                   # off by default
    terms["loss"].backward()
    assert model.body_net.final_layer.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="rest_joints"):
        GaussianDiffusion().losses(x0, x0)


# ---------------------------------------------------------------------------------------------
# DDIM


@pytest.mark.slow
def test_ddim_sample_is_deterministic(diffusion, tiny_model):
    music = torch.randn(2, WINDOW, MUSIC_DIM, generator=torch.Generator().manual_seed(5))
    a = diffusion.ddim_sample(tiny_model, music, steps=4, generator=11)
    b = diffusion.ddim_sample(tiny_model, music, steps=4, generator=torch.Generator().manual_seed(11))
    c = diffusion.ddim_sample(tiny_model, music, steps=4, generator=12)
    assert a.shape == (2, WINDOW, MOTION_DIM)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert a.abs().max() <= 1.0                              # the predicted x0 is clamped
    free = diffusion.ddim_sample(tiny_model, music, steps=4, generator=11, clip_x0=None)
    assert torch.isfinite(free).all()


# ---------------------------------------------------------------------------------------------
# Long songs


@pytest.mark.parametrize("n_frames", [30, 120, 121, 300, 901])
def test_sample_long_gives_exact_length(diffusion, tiny_model, n_frames):
    music = torch.randn(n_frames, MUSIC_DIM, generator=torch.Generator().manual_seed(n_frames))
    out = diffusion.sample_long(tiny_model, music, steps=2, generator=0)
    assert out.shape == (n_frames, MOTION_DIM)
    assert torch.isfinite(out).all()


def test_song_windows():
    counts = [song_windows(torch.zeros(n, MUSIC_DIM), WINDOW, STRIDE).shape[0]
              for n in (1, 30, 120, 121, 180, 181, 900, 901)]
    assert counts == [1, 1, 1, 2, 2, 3, 14, 15]
    song = torch.arange(1000.0)[:, None].expand(1000, MUSIC_DIM)
    short = song_windows(song[:200], WINDOW, STRIDE)
    assert short.shape == (3, WINDOW, MUSIC_DIM)
    assert short[1, 0, 0] == 60 and short[2, 0, 0] == 120 and short[2, -1, 0] == 199   # padded
    # The first 121 frames of a longer song: the last window hears the song going on.
    part = song_windows(song, WINDOW, STRIDE, n_frames=121)
    assert part.shape[0] == 2 and part[1, -1, 0] == 179
    assert song_windows(short, WINDOW, STRIDE, n_frames=150).shape[0] == 2
    with pytest.raises(ValueError, match="music windows"):
        song_windows(short, WINDOW, STRIDE, n_frames=300)
    with pytest.raises(ValueError, match="1..200 frames"):
        song_windows(song[:200], WINDOW, STRIDE, n_frames=201)


class Recorder:
    """Stands in for the model and records what the sampler asks of it."""

    def __init__(self, model: SeqModel):
        self.model, self.config = model, model.config
        self.calls: list[tuple[torch.Tensor, int, float]] = []
        self.last = None

    def encode_condition(self, music):
        return self.model.encode_condition(music)

    def denoise(self, x, t, cache, w):
        self.calls.append((x.clone(), t, w))
        self.last = self.model.denoise(x, t, cache, w)
        return self.last


def test_sample_long_shares_overlaps_ramps_guidance_and_joins(diffusion, tiny_model):
    recorder = Recorder(tiny_model)
    music = torch.randn(300, MUSIC_DIM, generator=torch.Generator().manual_seed(2))
    out = diffusion.sample_long(recorder, music, steps=10, guidance_weight=2.0, generator=4)
    assert len(recorder.calls) == 10
    for x, _, _ in recorder.calls:           # every window starts where the previous one is
        assert torch.equal(x[1:, :STRIDE], x[:-1, STRIDE:])
    weights = [w for _, _, w in recorder.calls]
    assert weights[0] == 0 and weights == sorted(weights)
    assert all(w == 2.0 for (_, t, w) in recorder.calls if t < 500)
    windows = recorder.last.clamp(-1, 1)
    torch.testing.assert_close(out, join_windows(windows, STRIDE)[:300])
    # Seams are continuous: the first blended frame is the earlier window's, the last the later's.
    for i in range(1, windows.shape[0]):
        start = i * STRIDE
        torch.testing.assert_close(out[start, :7], windows[i - 1, STRIDE, :7])
        torch.testing.assert_close(out[start + STRIDE - 1, :7], windows[i, STRIDE - 1, :7])
    # A random model moves erratically (up to π per frame), so this bound is weak; the stub tests
    # below check the seams on smooth motion.
    inside = max(rotation_change(w).max() for w in windows)
    assert rotation_change(out).max() <= inside + 1e-4


@pytest.mark.slow
def test_sample_long_is_deterministic(diffusion, tiny_model):
    music = torch.randn(200, MUSIC_DIM, generator=torch.Generator().manual_seed(9))
    a = diffusion.sample_long(tiny_model, music, steps=3, generator=1)
    b = diffusion.sample_long(tiny_model, music, steps=3, generator=1)
    c = diffusion.sample_long(tiny_model, music, steps=3, generator=2)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_join_windows_smooths_disagreeing_windows():
    """Windows cut from one smooth motion join back to it; windows that disagree by a rotation
    are cross-faded without a jump, unlike a hard cut."""
    n = 6
    motion = make_motion((n - 1) * STRIDE + WINDOW, seed=1)
    windows = motion.unfold(0, WINDOW, STRIDE).transpose(1, 2).contiguous()     # (n, W, 319)
    joined = join_windows(windows, STRIDE)
    torch.testing.assert_close(joined, motion, atol=1e-5, rtol=0)

    # Give each window its own global turn (0.4 rad about y) and root offset.
    g = torch.Generator().manual_seed(0)
    angles = (torch.rand(n, generator=g) - 0.5) * 0.8
    shifted = windows.clone()
    for i, angle in enumerate(angles):
        turn = rotations.axis_angle_to_matrix(torch.tensor([0.0, angle.item(), 0.0]))
        root = rotations.rotation_6d_to_matrix(windows[i, :, 7:13])
        shifted[i, :, 7:13] = rotations.matrix_to_rotation_6d(turn @ root)
        shifted[i, :, 4:7] += 0.1 * i
    joined = join_windows(shifted, STRIDE)
    assert joined.shape == motion.shape
    inside = max(rotation_change(w).max() for w in shifted)
    largest_turn = (angles[1:] - angles[:-1]).abs().max()
    seams = rotation_change(joined)
    assert seams.max() <= inside + largest_turn / (STRIDE - 1) + 1e-4
    hard_cut = torch.cat([shifted[0, :STRIDE]] + [w[:STRIDE] for w in shifted[1:]])
    assert rotation_change(hard_cut).max() > 3 * seams.max()
    assert (joined[1:, 4:7] - joined[:-1, 4:7]).abs().max() < 0.1 / (STRIDE - 1) + 0.02


class SmoothStub:
    """A 'model' whose every prediction is the windows of one smooth dance, each window turned
    about the vertical by its own angle (the disagreement a real model shows between windows)."""

    config = ModelConfig.tiny()

    def __init__(self, motion: torch.Tensor, turns: torch.Tensor):
        windows = motion.unfold(0, WINDOW, STRIDE).transpose(1, 2).contiguous()
        for i, angle in enumerate(turns):
            turn = rotations.axis_angle_to_matrix(torch.tensor([0.0, angle.item(), 0.0]))
            root = rotations.rotation_6d_to_matrix(windows[i, :, 7:13])
            windows[i, :, 7:13] = rotations.matrix_to_rotation_6d(turn @ root)
        self.windows = windows

    def encode_condition(self, music):
        return music.shape[0]

    def denoise(self, x, t, n_windows, w):
        return self.windows[:n_windows].clone()


@pytest.mark.parametrize("spread", [0.0, 0.8])
def test_sample_long_places_windows_on_the_song_timeline(diffusion, spread):
    motion = make_motion(4 * STRIDE + WINDOW, seed=4)            # 5 windows, 360 frames
    turns = (torch.rand(5, generator=torch.Generator().manual_seed(1)) - 0.5) * spread
    stub = SmoothStub(motion, turns)
    out = diffusion.sample_long(stub, torch.zeros(330, MUSIC_DIM), steps=3, clip_x0=None, generator=0)
    assert out.shape == (330, MOTION_DIM)
    if spread == 0:
        torch.testing.assert_close(out, motion[:330], atol=1e-5, rtol=0)
    else:
        inside = max(rotation_change(w).max() for w in stub.windows)
        largest_turn = (turns[1:] - turns[:-1]).abs().max()
        assert largest_turn > 5 * inside                         # the windows really disagree
        assert rotation_change(out).max() <= inside + largest_turn / (STRIDE - 1) + 1e-4


# ---------------------------------------------------------------------------------------------
# Chunked sampling (bounded memory) and the reference sampler (issue 15)


@pytest.mark.parametrize("budget", [None, 0])
def test_chunked_sampling_gives_the_same_dance(diffusion, tiny_model, budget, monkeypatch):
    """The network sees a few windows at a time; the dance is the one-batch dance (float rounding
    aside), with caches kept across steps or recomputed at every step (budget 0), with inpainting.
    The windows are compared before joining: a random model's rotations are near degenerate, where
    the join would magnify float rounding."""
    import model.diffusion as md

    for name in ("join_windows", "join_windows_reference"):
        monkeypatch.setattr(md, name, lambda windows, stride: windows.flatten(0, 1))
    if budget is not None:
        monkeypatch.setattr(md, "CACHE_BUDGET", budget)
    music = torch.randn(600, MUSIC_DIM, generator=torch.Generator().manual_seed(5))     # 9 windows
    known = make_motion(600, seed=2)
    keep = torch.zeros(600, MOTION_DIM)
    keep[200:320] = 1
    for reference in (False, True):
        kw = dict(steps=4, generator=3, reference=reference, known=known, keep=keep)
        whole = diffusion.sample_long(tiny_model, music, chunk=100, **kw)
        for chunk in (1, 2, 4):
            torch.testing.assert_close(diffusion.sample_long(tiny_model, music, chunk=chunk, **kw), whole,
                                       atol=1e-5, rtol=0)


def test_guidance_schedules_by_hand():
    from model.diffusion import guidance_schedule

    pairs = ddim_timesteps(1000, 5)                                  # t = 999, 799, 599, 399, 199
    ref = [guidance_schedule("reference", 2.0, k, 5, t, 1000) for k, (t, _) in enumerate(pairs)]
    assert ref == pytest.approx([0.0, 1.0, 2.0, 2.0, 2.0])           # min(2, 4k/4)
    ref4 = [guidance_schedule("reference", 2.0, k, 4, 0, 1000) for k in range(4)]
    assert ref4 == pytest.approx([0.0, 4 / 3, 2.0, 2.0])             # min(2, 4k/3)
    ours = [guidance_schedule("ours", 2.0, k, 5, t, 1000) for k, (t, _) in enumerate(pairs)]
    assert ours == pytest.approx([0.0, 0.8, 1.6, 2.0, 2.0])          # 2·min(1, 2(1 − (t+1)/1000))
    assert guidance_schedule("reference", 2.0, 0, 1, 999, 1000) == 2.0
    assert guidance_schedule(None, 3.0, 0, 5, 999, 1000) == 3.0


class AffineStub:
    """A 'model' predicting x0 = x/2 + 0.1, recording every input and guidance weight."""

    config = ModelConfig.tiny()
    dtype = torch.float32

    def __init__(self):
        self.calls = []

    def encode_condition(self, music):
        return None

    def denoise(self, x, t, cache, w):
        self.calls.append((x.clone(), t, w))
        return x / 2 + 0.1


@pytest.mark.parametrize("reference", [False, True])
def test_noise_and_overwrite_order(diffusion, reference):
    """By hand on a stub: one randn for x_T, one per step but the last; the overlap is shared after
    every step with t_next ≥ 0, and in the initial noise only in our mode; the last step returns x0."""
    n, steps = 4, 3
    stub = AffineStub()
    g = torch.Generator().manual_seed(7)
    diffusion.sample_long(stub, torch.zeros(n, WINDOW, MUSIC_DIM), steps=steps, guidance_weight=2.0, eta=1.0,
                          clip_x0=None, generator=g, reference=reference)
    shape = (n, WINDOW, MOTION_DIM)
    draws = torch.Generator().manual_seed(7)
    x = torch.randn(shape, generator=draws)

    def share(x):
        x = x.clone()
        x[1:, :STRIDE] = x[:-1, STRIDE:]
        return x

    if not reference:
        x = share(x)
    pairs = ddim_timesteps(1000, steps)
    for k, (t, t_next) in enumerate(pairs):
        seen, t_seen, w = stub.calls[k]
        torch.testing.assert_close(seen, x, atol=1e-6, rtol=0)
        assert t_seen == t
        expected_w = min(2.0, 4.0 * k / (steps - 1)) if reference else 2.0 * min(1.0, 2 * (1 - (t + 1) / 1000))
        assert w == pytest.approx(expected_w)
        if t_next < 0:
            break
        x = share(diffusion._ddim_step(x, x / 2 + 0.1, t, t_next, 1.0, torch.randn(shape, generator=draws)))
    assert len(stub.calls) == steps
    # Both generators have drawn the same: 1 + (steps − 1) tensors of the batch's shape.
    assert torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=draws))
    if reference:     # independent x_T: the first call's overlaps differ
        first = stub.calls[0][0]
        assert not torch.allclose(first[1:, :STRIDE], first[:-1, STRIDE:])


def test_reference_slerp_falls_back_to_a_linear_blend():
    from model.diffusion import join_windows_reference, reference_slerp

    axis = torch.tensor([0.0, 1.0, 0.0])
    near = rotations.axis_angle_to_quaternion(torch.stack((0 * axis, 0.1 * axis)))       # 0.1 rad apart
    far = rotations.axis_angle_to_quaternion(torch.stack((0 * axis, 1.0 * axis)))        # 1 rad apart
    half = torch.tensor(0.5)
    lin = reference_slerp(near[0], near[1], half)
    torch.testing.assert_close(lin, (near[0] + near[1]) / 2)                              # unnormalised
    assert lin.norm() < 1.0
    torch.testing.assert_close(reference_slerp(far[0], far[1], half),
                               rotations.quaternion_slerp(far[0], far[1], 0.5), atol=1e-6, rtol=0)
    # Same seams as ours on windows that agree; the length is (n + 1)·stride.
    motion = make_motion(4 * STRIDE + WINDOW, seed=1)
    windows = motion.unfold(0, WINDOW, STRIDE).transpose(1, 2).contiguous()
    torch.testing.assert_close(join_windows_reference(windows, STRIDE), join_windows(windows, STRIDE),
                               atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------
# Official parity, issue 23: the stitching's linear-blend fallback and the float64 schedule


def test_reference_axis_angle_is_norm_times_angle_read_as_is():
    """The official conversion of a quaternion of norm s and angle θ gives s·θ·axis, and reads w < 0
    as an angle past π (no sign flip): (−cos 0.15, −sin 0.15·y) is 2π − 0.3 about −y."""
    from model.diffusion import reference_axis_angle

    y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    unit = rotations.axis_angle_to_quaternion(0.3 * y)
    for s in (1.0, 0.99):
        torch.testing.assert_close(reference_axis_angle(s * unit), s * 0.3 * y, atol=1e-15, rtol=0)
        torch.testing.assert_close(reference_axis_angle(-s * unit), -s * (2 * math.pi - 0.3) * y,
                                   atol=1e-14, rtol=0)
    tiny = torch.tensor([0.9, 0.0, 2e-8, 0.0], dtype=torch.float64)          # below 1e-6 rad
    torch.testing.assert_close(reference_axis_angle(tiny), math.hypot(0.9, 2e-8) * 2 * math.atan2(2e-8, 0.9) * y,
                               atol=1e-22, rtol=0)


def _two_windows(angles0, angles1, stride: int = 4) -> torch.Tensor:
    """Two windows of 2·stride frames whose overlap turns joint 5 about x by angles0 (the first
    window's last stride frames) and angles1 (the second's first); everything else still."""
    windows = torch.zeros(2, 2 * stride, MOTION_DIM, dtype=torch.float64)
    aa = torch.zeros(2, 2 * stride, N_MOTION_JOINTS, 3, dtype=torch.float64)
    aa[0, stride:, 5, 0] = torch.as_tensor(angles0, dtype=torch.float64)
    aa[1, :stride, 5, 0] = torch.as_tensor(angles1, dtype=torch.float64)
    windows[..., MOTION_319.rotations] = rotations.axis_angle_to_rotation_6d(aa).flatten(-2)
    return windows


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_reference_stitching_fallback_turns_by_norm_times_angle(dtype):
    """Overlap entries 0.25 rad apart (1 − |q0·q1| = 0.0078 < 0.01: the linear blend): joint 5 turns by
    |q|·θ of the blend q = (1 − w)·q0 + w·q1, by hand; 1 rad apart (slerp): by the slerp's angle."""
    from model.diffusion import join_windows_reference

    stride = 4
    weights = [k / (stride - 1) for k in range(stride)]
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    for a0, a1, linear in ((0.2, 0.45, True), (0.2, 1.2, False)):
        joined = join_windows_reference(_two_windows([a0] * stride, [a1] * stride).to(dtype), stride)
        mats = rotations.rotation_6d_to_matrix(joined[stride:2 * stride, MOTION_319.rotations].unflatten(-1, (-1, 6)))
        turned = torch.acos(((mats[:, 5].diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).double())
        for w, angle in zip(weights, turned.tolist()):
            if linear:
                qw = (1 - w) * math.cos(a0 / 2) + w * math.cos(a1 / 2)
                qx = (1 - w) * math.sin(a0 / 2) + w * math.sin(a1 / 2)
                expected = math.hypot(qw, qx) * 2 * math.atan2(qx, qw)
            else:
                expected = a0 + w * (a1 - a0)
            assert angle == pytest.approx(expected, abs=tol)
        assert mats[:, 4:5].sub(torch.eye(3, dtype=dtype)).abs().max() < tol           # other joints still
    # The shrink is real: at w = 1/3 the blend's own angle is 0.28329 (|q| = 0.99826) but the joint
    # turns 0.28279, 4.9e-4 less (a normalised blend or a slerp would turn 0.28329 or 0.28333).
    w = 1 / 3
    qw, qx = (1 - w) * math.cos(0.1) + w * math.cos(0.225), (1 - w) * math.sin(0.1) + w * math.sin(0.225)
    joined = join_windows_reference(_two_windows([0.2] * stride, [0.45] * stride), stride)
    mat = rotations.rotation_6d_to_matrix(joined[stride + 1, MOTION_319.rotations].unflatten(-1, (-1, 6)))[5]
    assert 2 * math.atan2(qx, qw) - math.acos((mat.trace().item() - 1) / 2) > 4.5e-4


def _abar(t: int) -> float:
    """ᾱ_t of the cosine schedule by hand in float64 (1000 steps, s = 0.008; β_999 clipped to 0.999)."""
    f = lambda u: math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    return f(t + 1) / f(0) if t < 999 else f(999) / f(0) * (1 - 0.999)


def _ddim_step_by_hand(x, x0, noise, t, t_next, eta=1.0):
    a, an = _abar(t), _abar(t_next)
    eps = (x / math.sqrt(a) - x0) / math.sqrt(1 / a - 1)
    sigma = eta * math.sqrt((1 - a / an) * (1 - an) / (1 - a))
    return math.sqrt(an) * x0 + math.sqrt(max(0.0, 1 - an - sigma ** 2)) * eps + sigma * noise


def test_schedule_is_kept_in_float64_and_float32_is_as_before(diffusion):
    for t in (0, 250, 500, 900, 998, 999):
        assert diffusion.schedule64["alphas_cumprod"][t].item() == pytest.approx(_abar(t), rel=1e-13, abs=0)
    for name, exact in diffusion.schedule64.items():
        assert exact.dtype == torch.float64
        assert torch.equal(getattr(diffusion, name), exact.float())     # the buffers, as saved before
        assert diffusion.state_dict()[name].dtype == torch.float32
    x32, x64 = torch.zeros(2), torch.zeros(2, dtype=torch.float64)
    assert diffusion.schedule("alphas_cumprod", x32) is diffusion.alphas_cumprod
    assert diffusion.schedule("alphas_cumprod", x64).dtype == torch.float64
    assert diffusion.q_sample(torch.ones(1, 3, dtype=torch.bfloat16), torch.tensor([5]),
                              torch.ones(1, 3, dtype=torch.bfloat16)).dtype == torch.float32   # as before
    # An older state dict (float32 buffers) loads as before and leaves the float64 schedule exact.
    loaded = GaussianDiffusion()
    loaded.load_state_dict({k: v.clone() for k, v in diffusion.state_dict().items()})
    assert torch.equal(loaded.schedule("sqrt_recipm1_alphas_cumprod", x64), diffusion.schedule64["sqrt_recipm1_alphas_cumprod"])


@pytest.mark.parametrize("t, t_next", [(999, 979), (519, 499), (39, 19)])
def test_float64_ddim_step_equals_the_step_by_hand(diffusion, t, t_next):
    g = torch.Generator().manual_seed(t)
    x, x0, noise = (torch.randn(64, generator=g, dtype=torch.float64) for _ in range(3))
    got = diffusion._ddim_step(x, x0, t, t_next, 1.0, noise)
    assert got.dtype == torch.float64
    hand = torch.tensor([_ddim_step_by_hand(*v, t, t_next) for v in zip(x.tolist(), x0.tolist(), noise.tolist())],
                        dtype=torch.float64)
    assert (got - hand).abs().max() < 1e-14                 # 4e-16 measured
    rounded = GaussianDiffusion()       # the float32-rounded schedule, as before: 4e-10 (t = 999) to 2e-5 (t = 39) off
    rounded.schedule64 = {k: v.float().double() for k, v in rounded.schedule64.items()}
    assert (rounded._ddim_step(x, x0, t, t_next, 1.0, noise) - hand).abs().max() > 1e-10


def test_float64_model_samples_with_the_float64_schedule(diffusion):
    """A whole float64 run (two steps, a stub predicting x0 = x/2 + 0.1): x_T from the generator, one
    step by hand, then the last step's x0."""
    class Stub(AffineStub):
        dtype = torch.float64

    n = 2
    out = diffusion.ddim_sample(Stub(), torch.zeros(n, WINDOW, MUSIC_DIM), steps=2, guidance_weight=1.0,
                                clip_x0=None, generator=11)
    draws = torch.Generator().manual_seed(11)
    x_T = torch.randn((n, WINDOW, MOTION_DIM), generator=draws, dtype=torch.float64)
    noise = torch.randn((n, WINDOW, MOTION_DIM), generator=draws, dtype=torch.float64)
    (t, t_next), _ = ddim_timesteps(1000, 2)
    x1 = torch.tensor([_ddim_step_by_hand(a, a / 2 + 0.1, b, t, t_next)
                       for a, b in zip(x_T.flatten().tolist(), noise.flatten().tolist())], dtype=torch.float64)
    assert out.dtype == torch.float64
    assert (out - (x1.reshape(out.shape) / 2 + 0.1)).abs().max() < 1e-14
