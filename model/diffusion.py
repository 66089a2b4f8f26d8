"""Diffusion around ``SeqModel`` (SPEC §6): schedule, training losses, DDIM and long-song samplers.

The network predicts the clean motion x0. The schedule is the cosine one (``model.config.DiffusionConfig``:
1000 steps, s = 0.008, betas clipped to ≤ 0.999), computed and kept in float64 and used in the dtype of
the numbers it meets (``GaussianDiffusion.schedule``). Samplers take the model as an argument, so one
``GaussianDiffusion`` serves any network size.

Motion vectors are the 319-d model vectors of SPEC §3: [contacts 4 | root translation 3 |
52 joints × 6-D rotation].
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from body import rotations
from body.kinematics import joints_from_6d
from body.skeleton import FOOT_JOINTS, MOTION_DIM, N_BODY_JOINTS
from audio.music import BEAT_CHANNEL, covering_window_starts, slice_windows
from model.config import DEFAULT_DIFFUSION as D, DiffusionConfig
from model.network import beat_phase_features
from motion.layout import MOTION_319

CONTACT_THRESHOLD = 0.95      # predicted contact above which the foot-velocity loss applies
BEAT_MARGIN = 0.1             # beat contrast the beat loss asks for: speed ±20 % over the beat

Progress = Callable[[int, int], None]   # called with (steps done, total steps)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the four training losses (SPEC §6), and of our speed-profile loss (0: off, as in
    the reference recipe)."""

    x0: float = 0.636          # MSE of the clean motion
    velocity: float = 2.964    # MSE of frame differences of dims 4: (all but contacts)
    fk: float = 0.646          # MSE of joint positions after forward kinematics
    foot: float = 10.942       # MSE of foot joint velocity where the predicted contact > 0.95
    speed: float = 0.0         # relative MSE of the per-frame mean body-joint speed (``speed_profile``)
    beat: float = 0.0          # hinge on the speed's beat contrast (``beat_contrast``), ours
    beat_margin: float = BEAT_MARGIN  # the contrast it asks for


def speed_profile(joints: Tensor) -> Tensor:
    """(B, T, J, 3) joints → (B, T − 2) mean speed of the 22 body joints per frame, by central
    differences (the quantity whose minima are a dance's kinematic beats, ``sync.beats``)."""
    body = joints[:, :, :N_BODY_JOINTS]
    return (body[:, 2:] - body[:, :-2]).norm(dim=-1).mean(-1) / 2


def beat_contrast(speed: Tensor, phase: Tensor) -> Tensor:
    """How much slower a motion is on the beat than between beats: (B,) per window.

    speed: (B, T − 2) from ``speed_profile`` (frames 1 … T − 2); phase: (B, T, PHASE_DIM) beat
    phase features of the same windows (``model.network.beat_phase_features``: sin, cos, log
    period, known). The speed, divided by its window mean, is weighted by cos 2πφ (1 on a beat, −1
    half-way between): a speed of 1 + a·cos 2πφ gives a/2, so negative values mean the body slows
    down on the beats — where a dance's kinematic beats should fall. 0 for windows with no beats.
    """
    cos, known = phase[:, 1:-1, 1], phase[:, 1:-1, 3]
    relative = speed / speed.mean(-1, keepdim=True).clamp(min=1e-6)
    return (relative * cos * known).sum(-1) / known.sum(-1).clamp(min=1)


def cosine_betas(n_steps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Betas (n_steps,) float64 of the cosine schedule ᾱ(t) = cos²((t/n + s)/(1 + s)·π/2) / ᾱ(0)."""
    t = torch.linspace(0, n_steps, n_steps + 1, dtype=torch.float64) / n_steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = f / f[0]
    betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return betas.clamp(max=max_beta)


def ddim_timesteps(n_total: int, n_sample: int) -> list[tuple[int, int]]:
    """(t, t_next) pairs of a DDIM run: 50 of 1000 → (999, 979), …, (19, −1)."""
    if not 1 <= n_sample <= n_total:
        raise ValueError(f"sampling steps must be in 1..{n_total}, got {n_sample}")
    times = torch.linspace(-1, n_total - 1, n_sample + 1).long().tolist()[::-1]
    return list(zip(times[:-1], times[1:]))


def as_generator(seed: torch.Generator | int | None) -> torch.Generator | None:
    """A generator from a seed (int), or the given generator, or None (global RNG)."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def _per_sample(values: Tensor, t: Tensor, ndim: int) -> Tensor:
    """values[t] shaped (B, 1, …) to broadcast against a (B, …) tensor of ``ndim`` dims."""
    return values[t].reshape(-1, *([1] * (ndim - 1)))


SCHEDULE = ("betas", "alphas_cumprod", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
            "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod")


class GaussianDiffusion(nn.Module):
    """Cosine-schedule diffusion with x0 prediction.

    rest_joints: (55, 3) rest-pose joints of the body model in metres, needed only by the
    forward-kinematics losses (not saved in state dicts).

    The schedule (``SCHEDULE``, each (n_steps,)) is computed in float64 and kept so, on the CPU, in
    ``schedule64``; the buffers of those names (saved in state dicts, moved by ``.to(device)``, as
    before) are its float32 rounding. ``schedule(name, x)`` gives the one to compute with: float64
    for float64 numbers, else the float32 buffer — so a float64 model samples with the exact
    float64 schedule (rounding ᾱ to float32 alone moves the first DDIM step by 1e-5), while float32,
    bf16 and training compute exactly as before, devices without float64 (MPS) included. The
    float64 schedule is never loaded: it follows from the config, and an older checkpoint's float32
    buffers could only round it.
    """

    def __init__(self, n_steps: int = D.n_steps, cosine_s: float = D.cosine_s, max_beta: float = D.max_beta,
                 rest_joints: Tensor | None = None, loss_weights: LossWeights = LossWeights(),
                 cond_drop_prob: float = D.cond_drop_prob):
        super().__init__()
        self.config = DiffusionConfig(n_steps=n_steps, cosine_s=cosine_s, max_beta=max_beta,
                                      cond_drop_prob=cond_drop_prob)
        self.n_steps = n_steps
        self.loss_weights = loss_weights
        self.cond_drop_prob = cond_drop_prob
        betas = cosine_betas(n_steps, cosine_s, max_beta)
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        self.schedule64 = dict(zip(SCHEDULE, (
            betas,
            alphas_cumprod,
            alphas_cumprod.sqrt(),
            (1 - alphas_cumprod).sqrt(),
            (1 / alphas_cumprod).sqrt(),
            (1 / alphas_cumprod - 1).sqrt(),
        )))
        for name, value in self.schedule64.items():
            self.register_buffer(name, value.float())
        self.register_buffer("rest_joints", None if rest_joints is None else rest_joints.float(),
                             persistent=False)

    @classmethod
    def from_config(cls, config: DiffusionConfig, rest_joints: Tensor | None = None,
                    loss_weights: LossWeights = LossWeights()) -> "GaussianDiffusion":
        """The diffusion a checkpoint's saved config describes; its sampler defaults stay in ``config``."""
        diffusion = cls(config.n_steps, config.cosine_s, config.max_beta, rest_joints=rest_joints,
                        cond_drop_prob=config.cond_drop_prob, loss_weights=loss_weights)
        diffusion.config = config
        return diffusion

    def schedule(self, name: str, like: Tensor) -> Tensor:
        """The schedule ``name`` (one of ``SCHEDULE``; (n_steps,)) to compute with ``like``: the float64
        one on like's device for float64 numbers, else the float32 buffer."""
        if like.dtype == torch.float64:
            return self.schedule64[name].to(like.device)
        return getattr(self, name)

    # -- forward process -----------------------------------------------------------------------

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = √ᾱ_t·x0 + √(1 − ᾱ_t)·noise; x0, noise (B, …), t (B,) long."""
        return (_per_sample(self.schedule("sqrt_alphas_cumprod", x0), t, x0.dim()) * x0
                + _per_sample(self.schedule("sqrt_one_minus_alphas_cumprod", x0), t, x0.dim()) * noise)

    def noise_from_x0(self, x_t: Tensor, t: Tensor, x0: Tensor) -> Tensor:
        """The noise that makes x_t from x0 at step t."""
        return ((_per_sample(self.schedule("sqrt_recip_alphas_cumprod", x_t), t, x_t.dim()) * x_t - x0)
                / _per_sample(self.schedule("sqrt_recipm1_alphas_cumprod", x_t), t, x_t.dim()))

    # -- training ------------------------------------------------------------------------------

    def joints(self, motion: Tensor) -> Tensor:
        """Joint positions (B, T, 52, 3) in metres of 319-d motion (B, T, 319)."""
        if self.rest_joints is None:
            raise ValueError("GaussianDiffusion needs rest_joints (55, 3) for the kinematic losses")
        return joints_from_6d(MOTION_319.rot6d(motion), motion[..., MOTION_319.translation], self.rest_joints)

    def losses(self, pred: Tensor, target: Tensor, phase: Tensor | None = None) -> dict[str, Tensor]:
        """The weighted losses of a prediction against the clean motion, both (B, T, 319).

        phase: (B, T, PHASE_DIM) beat phase of the windows' music, for the beat loss (0 without it).
        Returns the unweighted terms ``x0``, ``velocity``, ``fk``, ``foot``, ``speed``, ``beat`` and
        their weighted sum ``loss``.
        """
        w = self.loss_weights
        x0 = F.mse_loss(pred, target)
        pred_vel = pred[:, 1:, MOTION_319.motion] - pred[:, :-1, MOTION_319.motion]
        target_vel = target[:, 1:, MOTION_319.motion] - target[:, :-1, MOTION_319.motion]
        velocity = F.mse_loss(pred_vel, target_vel)
        pred_joints, target_joints = self.joints(pred), self.joints(target)
        fk = F.mse_loss(pred_joints, target_joints)
        # Foot velocity (zero on the last frame), kept only where the predicted contact is on.
        feet = pred_joints[:, :, list(FOOT_JOINTS)]                         # (B, T, 4, 3)
        foot_vel = F.pad(feet[:, 1:] - feet[:, :-1], (0, 0, 0, 0, 0, 1))    # (B, T, 4, 3)
        contact = (pred[..., MOTION_319.contacts] > CONTACT_THRESHOLD)[..., None]       # (B, T, 4, 1)
        foot = (foot_vel * contact).pow(2).mean()
        # Where the body slows down and speeds up, relative to how fast the target moves: a pose
        # error of any direction costs the same, so the rhythm is learnt apart from the poses.
        target_speed, pred_speed = speed_profile(target_joints), speed_profile(pred_joints)
        speed = (pred_speed - target_speed).pow(2).mean() / target_speed.pow(2).mean().clamp(min=1e-8)
        # On the beat by itself: a squared hinge asks every window for at least the margin's contrast
        # between its speed on and between the music's beats (the phase the network is given). As the
        # shipped model was trained: rows whose music was dropped count too (blind to the beats, they are
        # asked nothing on average), and windows without beats add a constant margin² to the mean.
        beat = (F.relu(beat_contrast(pred_speed, phase) + w.beat_margin).pow(2).mean() if phase is not None
                else pred.new_zeros(()))
        loss = w.x0 * x0 + w.velocity * velocity + w.fk * fk + w.foot * foot + w.speed * speed + w.beat * beat
        return {"loss": loss, "x0": x0, "velocity": velocity, "fk": fk, "foot": foot, "speed": speed,
                "beat": beat}

    def training_losses(self, model: nn.Module, x0: Tensor, music: Tensor, t: Tensor | None = None,
                        noise: Tensor | None = None, generator: torch.Generator | None = None,
                        style: Tensor | None = None, style_drop_prob: float = 0.0) -> dict[str, Tensor]:
        """Noise x0 (B, T, 319) to a random step, predict it back with music (B, T, 35), score.

        The condition is dropped with probability ``cond_drop_prob`` per sample and decoder. style:
        (B,) style indices for a model with a style input (``dataset.styles``), each replaced by the null
        style with probability ``style_drop_prob``; None passes no style (the reference recipe).
        """
        b = x0.shape[0]
        if t is None:
            t = torch.randint(0, self.n_steps, (b,), generator=generator).to(x0.device)
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        x_t = self.q_sample(x0, t, noise)
        if style is None:
            pred = model(x_t, music, t, cond_drop_prob=self.cond_drop_prob, generator=generator)
        else:
            pred = model(x_t, music, t, cond_drop_prob=self.cond_drop_prob, generator=generator,
                         style=style.to(x0.device), style_drop_prob=style_drop_prob)
        phase = None
        if self.loss_weights.beat:
            phase = beat_phase_features(music[..., BEAT_CHANNEL], pred.dtype).to(pred.device)
        return self.losses(pred, x0, phase)

    # -- sampling ------------------------------------------------------------------------------

    def _ddim_loop(self, model: nn.Module, music: Tensor, steps: int, guidance_weight: float,
                   guidance_ramp: str | None, eta: float, clip_x0: float | None, clip_translation: bool,
                   generator: torch.Generator | None, share: bool, share_initial: bool,
                   progress: Progress | None, known: Tensor | None = None, keep: Tensor | None = None,
                   chunk: int | None = None, style: int = 0) -> Tensor:
        """DDIM from pure noise for music windows (B, W, 35) → clean motion (B, W, 319), in the
        model's dtype when that is float64, else float32.

        guidance_ramp: None (constant weight), 'ours' or 'reference' (``guidance_schedule``).
        share: after every step with t_next ≥ 0, the first W − W/2 frames of window i+1 are replaced
        by the last ones of window i (long songs); share_initial: the initial noise too (ours; the
        reference draws every window's x_T independently).

        Inpainting: where ``keep`` (B, W, 319) is 1 the result is ``known`` (B, W, 319) exactly; after
        every step those numbers of x are replaced by ``known`` noised to that step, so the network
        writes the rest to fit both the music and the kept motion.

        Memory: the network runs on ``chunk`` windows at a time (default ``CHUNK_WINDOWS``), so its
        activations stay bounded; each chunk's music cache is kept for the whole run while all of
        them fit in ``CACHE_BUDGET`` bytes, and recomputed at every step otherwise. The windows
        are independent rows of the network, so chunking changes nothing but float rounding: the
        noise is drawn for the whole batch in the same order as unchunked.

        style: the style index every window dances (``dataset.styles``; 0, the null style, is what a
        model without a style input dances, and is not passed to it).

        Noise, all from ``generator`` on the CPU in the working dtype: x_T (B, W, 319); with
        ``known``, one draw to noise it to the first step; then at every step but the last one
        (B, W, 319) draw for the DDIM update and, with ``known``, one more for the kept motion.
        """
        b, window, _ = music.shape
        device = music.device
        dtype = torch.float64 if getattr(model, "dtype", None) == torch.float64 else torch.float32
        pairs = ddim_timesteps(self.n_steps, steps)
        chunk = max(1, chunk or CHUNK_WINDOWS)
        parts = [slice(s, min(s + chunk, b)) for s in range(0, b, chunk)]
        x = torch.randn((b, window, MOTION_DIM), generator=generator, dtype=dtype).to(device)
        if known is not None:
            known, keep = known.to(device, dtype), keep.to(device, dtype)

        def draw() -> Tensor:
            return torch.randn(x.shape, generator=generator, dtype=dtype).to(device)

        def impose(x: Tensor, t: int, noise: Tensor, rows=slice(None)) -> Tensor:
            if known is None:
                return x
            t_b = torch.full((x.shape[0],), t, dtype=torch.long, device=device)
            return torch.lerp(x, self.q_sample(known[rows], t_b, noise), keep[rows])

        def share_overlaps(x: Tensor) -> None:
            x[1:, :window - window // 2] = x[:-1, window // 2:]

        if known is not None:
            x = impose(x, pairs[0][0], draw())
        if share and share_initial:
            share_overlaps(x)
        def encode(rows: slice):
            return model.encode_condition(music[rows], style=style) if style else model.encode_condition(music[rows])

        first = encode(parts[0])
        caches = [first] if len(parts) == 1 else None
        if caches is None and _nbytes(first) * (b / (parts[0].stop - parts[0].start)) <= CACHE_BUDGET:
            caches = [first] + [encode(p) for p in parts[1:]]
        del first
        for i, (t, t_next) in enumerate(pairs):
            w = guidance_schedule(guidance_ramp, guidance_weight, i, len(pairs), t, self.n_steps)
            step_noise = draw() if t_next >= 0 else None
            keep_noise = draw() if t_next >= 0 and known is not None else None
            for k, rows in enumerate(parts):
                cache = caches[k] if caches is not None else encode(rows)
                x0 = model.denoise(x[rows], t, cache, w).to(dtype)
                if clip_x0 is not None:
                    clipped = x0.clamp(-clip_x0, clip_x0)
                    if not clip_translation:
                        clipped[..., MOTION_319.translation] = x0[..., MOTION_319.translation]
                    x0 = clipped
                if t_next < 0:
                    x[rows] = x0 if known is None else torch.lerp(x0, known[rows], keep[rows])
                else:
                    x[rows] = impose(self._ddim_step(x[rows], x0, t, t_next, eta, step_noise[rows]), t_next,
                                     keep_noise[rows] if keep_noise is not None else None, rows)
            if t_next >= 0 and share:
                share_overlaps(x)
            if progress is not None:
                progress(i + 1, len(pairs))
        return x

    def _ddim_step(self, x: Tensor, x0: Tensor, t: int, t_next: int, eta: float, noise: Tensor) -> Tensor:
        """One DDIM update x_t → x_{t_next} given the predicted x0 and fresh noise like x (Song et al., 2021),
        with the schedule in x's precision (``schedule``)."""
        abar = self.schedule("alphas_cumprod", x)
        a, a_next = abar[t], abar[t_next]
        recip, recipm1 = self.schedule("sqrt_recip_alphas_cumprod", x), self.schedule("sqrt_recipm1_alphas_cumprod", x)
        eps = (recip[t] * x - x0) / recipm1[t]
        sigma = eta * ((1 - a / a_next) * (1 - a_next) / (1 - a)).sqrt()
        c = (1 - a_next - sigma ** 2).clamp(min=0).sqrt()
        return a_next.sqrt() * x0 + c * eps + sigma * noise

    @torch.no_grad()
    def ddim_sample(self, model: nn.Module, music: Tensor, steps: int = D.sample_steps,
                    guidance_weight: float = D.guidance, eta: float = D.eta, clip_x0: float | None = D.clip_x0,
                    clip_translation: bool = True,
                    generator: torch.Generator | int | None = None,
                    progress: Progress | None = None, style: int = 0) -> Tensor:
        """Independent windows: music (B, W, 35) → motion (B, W, 319), constant guidance weight.

        clip_x0: clamp the predicted x0 to [−c, c] at every step (the reference uses 1 on every
        channel, which keeps the root within ±1 m); None disables it. clip_translation=False exempts
        the root translation from the clamp.
        """
        music = torch.as_tensor(music, dtype=torch.float32)
        music = music.to(getattr(model, "device", music.device))
        return self._ddim_loop(model, music, steps, guidance_weight, None, eta, clip_x0, clip_translation,
                               as_generator(generator), False, False, progress, style=style)

    @torch.no_grad()
    def sample_long(self, model: nn.Module, music: Tensor, n_frames: int | None = None, steps: int = D.sample_steps,
                    guidance_weight: float = D.guidance, eta: float = D.eta, clip_x0: float | None = D.clip_x0,
                    clip_translation: bool = True, generator: torch.Generator | int | None = None,
                    progress: Progress | None = None, known: Tensor | None = None,
                    keep: Tensor | None = None, reference: bool = False, chunk: int | None = None,
                    style: int = 0) -> Tensor:
        """A whole song as one batch of overlapping windows (SPEC §6) → motion (n_frames, 319).

        music: (F, 35) features of the whole song, or (n, W, 35) windows already cut every W/2
        frames. n_frames: frames wanted, any number from 1 (default: F, or (n + 1)·W/2 for
        windows); at most F for a whole song, whose later music still feeds the last window.
        Windows of W frames start every W/2 frames; after each denoising step the first half of
        window i+1 is replaced by the second half of window i; the guidance weight ramps up from
        0 at the first step (``guidance_schedule``); windows are joined with cross-fades
        (``join_windows``). The initial noise is shared between overlapping halves in the same way.
        known, keep: optional (n_frames, 319) motion and mask (1 = keep that number of ``known``,
        0 = generate it; fractions blend): inpainting (see ``_ddim_loop``), for dancing around
        retrieved or edited motion.

        reference: the official FineDance sampler instead (issue 15): its guidance schedule
        min(g, 2g·k/(S−1)) at step k of S, independent initial noise in every window (the overlap
        is first shared after the first step), and its stitching (``join_windows_reference``).
        chunk: windows the network sees at once (default ``CHUNK_WINDOWS``): memory stays bounded
        at any length, the result is the same but for float rounding (``_ddim_loop``).
        style: the style index to dance (``dataset.styles``; 0 = the null style, ``any``).
        """
        window = model.config.window
        stride = window // 2
        music = torch.as_tensor(music, dtype=torch.float32)
        windows = song_windows(music, window, stride, n_frames).to(getattr(model, "device", music.device))
        if n_frames is None:
            n_frames = music.shape[0] if music.dim() == 2 else (windows.shape[0] - 1) * stride + window

        known_w = keep_w = None
        if known is not None:
            total = (windows.shape[0] - 1) * stride + window

            def as_windows(a: Tensor, name: str, pad: Tensor) -> Tensor:
                a = torch.as_tensor(a, dtype=torch.float32)
                if a.shape != (n_frames, MOTION_DIM):
                    raise ValueError(f"{name} must be ({n_frames}, {MOTION_DIM}), got {tuple(a.shape)}")
                a = torch.cat((a, pad.expand(total - n_frames, -1)))
                return a.unfold(0, window, stride).transpose(1, 2)

            keep = torch.ones(n_frames, MOTION_DIM) if keep is None else keep
            known_w = as_windows(known, "known", torch.as_tensor(known, dtype=torch.float32)[-1:])
            keep_w = as_windows(keep, "keep", torch.zeros(1, MOTION_DIM))     # nothing kept past the end
        x = self._ddim_loop(model, windows, steps, guidance_weight, "reference" if reference else "ours", eta,
                            clip_x0, clip_translation, as_generator(generator), True, not reference, progress,
                            known_w, keep_w, chunk, style)
        join = join_windows_reference if reference else join_windows
        return join(x, stride)[:n_frames]


CHUNK_WINDOWS = 32              # windows (about a minute of song) the network denoises at once
CACHE_BUDGET = 512 * 2 ** 20    # bytes of music caches kept across steps; past it they are recomputed per step


def guidance_schedule(ramp: str | None, weight: float, k: int, n_sample: int, t: int, n_total: int) -> float:
    """The guidance weight at DDIM step k of n_sample (diffusion step t of n_total).

    None: ``weight`` throughout. 'ours': weight·min(1, 2(1 − (t+1)/n_total)), 0 at t = 999 and full
    from t = 499 on. 'reference' (the official sampler): min(weight, 2·weight·k/(n_sample − 1)), 0
    at the first step and full from the middle step on (``weight`` for a single step).
    """
    if ramp is None:
        return weight
    if ramp == "ours":
        return weight * min(1.0, 2.0 * (1.0 - (t + 1) / n_total))
    if ramp == "reference":
        return weight if n_sample == 1 else min(weight, 2.0 * weight * k / (n_sample - 1))
    raise ValueError(f"unknown guidance ramp {ramp!r}")


def _nbytes(obj) -> int:
    """Bytes of the tensors in a (nested) cache object."""
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(o) for o in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return sum(_nbytes(getattr(obj, f)) for f in obj.__dataclass_fields__)
    return 0


def song_windows(music: Tensor, window: int, stride: int, n_frames: int | None = None) -> Tensor:
    """Music windows (n, window, C) covering n_frames of a song.

    music: (F, C) whole-song features, cut every ``stride`` frames by ``audio.music.slice_windows``
    (which pads a last window that runs past the song's end), or (n, window, C) windows already cut
    (the first ones needed are used). n_frames: 1..F (default F).
    """
    if music.dim() == 3:
        if music.shape[1] != window:
            raise ValueError(f"music windows have {music.shape[1]} frames, the model needs {window}")
        if n_frames is None:
            return music
        needed = len(_window_starts(n_frames, window, stride))
        if needed > music.shape[0]:
            raise ValueError(f"{n_frames} frames need {needed} music windows, got {music.shape[0]}")
        return music[:needed]
    if music.dim() != 2 or music.shape[0] < 1:
        raise ValueError(f"music must be (frames, channels) or (windows, frames, channels), "
                         f"got shape {tuple(music.shape)}")
    n_frames = music.shape[0] if n_frames is None else n_frames
    if not 1 <= n_frames <= music.shape[0]:
        raise ValueError(f"can make 1..{music.shape[0]} frames for this music, not {n_frames}")
    # Music past n_frames (when the song goes on) feeds the last window; padding only past the end.
    last_start = _window_starts(n_frames, window, stride)[-1]
    cut = music[:last_start + window].cpu().numpy()
    return torch.from_numpy(slice_windows(cut, window, stride)).to(music)


def _window_starts(n_frames: int, window: int, stride: int) -> list[int]:
    if n_frames < 1:
        raise ValueError(f"need at least one frame, got {n_frames}")
    return covering_window_starts(n_frames, window, stride)


def _joint_quaternions(motion: Tensor) -> Tensor:
    """(..., 319) → (..., 52, 4) joint rotations as unit quaternions."""
    return rotations.matrix_to_quaternion(rotations.rotation_6d_to_matrix(MOTION_319.rot6d(motion)))


def blend_motion(a: Tensor, b: Tensor, weight: Tensor) -> Tensor:
    """Cross-fade two motions (..., T, 319) with the weight of b per frame (T,) in [0, 1]:
    linear for contacts and translation, slerp for the joint rotations (returned as 6-D of
    orthonormal matrices)."""
    out = torch.lerp(a, b, weight[:, None])
    q = rotations.quaternion_slerp(_joint_quaternions(a), _joint_quaternions(b), weight[:, None])
    out[..., MOTION_319.rotations] = rotations.matrix_to_rotation_6d(rotations.quaternion_to_matrix(q)).flatten(-2)
    return out


def reference_slerp(q0: Tensor, q1: Tensor, t: Tensor) -> Tensor:
    """The official stitching's quaternion interpolation: q0, q1 (..., 4) unit, t broadcasting to (...).

    Along the shorter arc; where the two are close (1 − |q0·q1| < 0.01, about 16° apart) it falls back
    to the linear blend (1 − t)·q0 + t·q1, left unnormalised (shorter than 1: down to about 0.9975),
    else a true slerp. The official code reads the result with ``reference_axis_angle``, which is not
    scale-free: a blend turns by |q| times its angle.
    """
    dot = (q0 * q1).sum(-1)
    q1 = torch.where((dot < 0)[..., None], -q1, q1)
    dot = dot.abs()
    t = torch.zeros_like(dot) + t
    linear = (1.0 - dot) < 0.01
    omega = torch.acos(dot.clamp(max=1.0))
    sin_omega = torch.where(linear, torch.ones_like(omega), torch.sin(omega))
    w0 = torch.where(linear, 1.0 - t, torch.sin((1.0 - t) * omega) / sin_omega)
    w1 = torch.where(linear, t, torch.sin(t * omega) / sin_omega)
    return w0[..., None] * q0 + w1[..., None] * q1


def reference_axis_angle(q: Tensor) -> Tensor:
    """The official quaternion → axis-angle conversion, (..., 4) (w, x, y, z) of any norm → (..., 3).

    It reads q = (w, v) as it is, neither normalised nor turned to w ≥ 0: the angle θ = 2·atan2(|v|, w)
    (in [0, 2π]) and the result v·θ / sin(θ/2) (v / (1/2 − θ²/48) below 1e-6 rad), which is
    |q|·θ·axis. A unit quaternion gives its rotation; the unnormalised linear blend of
    ``reference_slerp`` turns by |q|·θ about its own axis.
    """
    v = q[..., 1:]
    half = torch.atan2(v.norm(dim=-1, keepdim=True), q[..., :1])
    angle = 2 * half
    small = angle.abs() < 1e-6
    sin_half_over_angle = torch.where(small, 0.5 - angle * angle / 48,
                                      torch.sin(half) / torch.where(small, torch.ones_like(angle), angle))
    return v / sin_half_over_angle


def join_windows_reference(windows: Tensor, stride: int) -> Tensor:
    """The official stitching of windows (n, W, 319) every W/2 = ``stride`` frames → ((n + 1)·stride, 319).

    As ``join_windows`` (linear cross-fade of contacts and translation over each overlap, the later
    window's weight rising from 0 to 1) but the rotations go through ``reference_slerp`` and are read
    back as the official code reads them (``reference_axis_angle``): where it fell back to the linear
    blend, the joint turns by |q|·θ about the blend's axis, a little less than the blend's own angle θ.
    """
    n, window, dim = windows.shape
    if window != 2 * stride:
        raise ValueError(f"the reference stitching needs windows of 2·stride frames, got {window} and {stride}")
    if n == 1:
        return windows[0].clone()
    weight = torch.linspace(0, 1, stride, dtype=windows.dtype, device=windows.device)
    a, b = windows[:-1, stride:], windows[1:, :stride]
    blended = torch.lerp(a, b, weight[:, None])
    q = reference_slerp(_joint_quaternions(a), _joint_quaternions(b), weight[:, None])
    matrix = rotations.axis_angle_to_matrix(reference_axis_angle(q))
    blended[..., MOTION_319.rotations] = rotations.matrix_to_rotation_6d(matrix).flatten(-2)
    return torch.cat((windows[0, :stride], blended.flatten(0, 1), windows[-1, stride:]))


def join_windows(windows: Tensor, stride: int) -> Tensor:
    """Windows (n, W, 319) starting every ``stride`` frames → one motion ((n − 1)·stride + W, 319).

    Over each overlap of W − stride frames (≤ stride) the weight of the later window rises
    linearly from 0 to 1, so each seam is continuous with both windows.
    """
    n, window, dim = windows.shape
    overlap = window - stride
    if not 0 < overlap <= stride:
        raise ValueError(f"windows of {window} frames every {stride} must overlap by 1..{stride} frames")
    out = windows.new_empty((n - 1) * stride + window, dim)
    out[:window] = windows[0]
    if n == 1:
        return out
    # Before blending, frames [i·stride, i·stride + overlap) hold window i−1's frames [stride, W).
    weight = torch.linspace(0, 1, overlap, dtype=windows.dtype, device=windows.device)
    blended = blend_motion(windows[:-1, stride:], windows[1:, :overlap], weight)
    for i in range(1, n):
        start = i * stride
        out[start:start + overlap] = blended[i - 1]
        out[start + overlap:start + window] = windows[i, overlap:]
    return out
