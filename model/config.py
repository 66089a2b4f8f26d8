"""The one source of every generation default: the diffusion schedule and sampler settings, and the
dance's length.

A :class:`DiffusionConfig` is saved with each checkpoint (inside its ``config`` entry, beside the
network's ``ModelConfig``, which lives in ``model/network.py``) and rebuilt at inference, so sampling
cannot drift from training. Checkpoints written before it was saved, and FineDance's official
``train-2000.pt``, load with the defaults below, which are the values they were trained with.

This module imports nothing heavy, so ``args.py`` can read the defaults without slowing ``--help``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class DiffusionConfig:
    """Schedule (training and sampling) and sampler defaults (what ``--steps`` etc. start at)."""

    n_steps: int = 1000             # diffusion steps of the cosine schedule
    cosine_s: float = 0.008         # offset s of ᾱ(t) = cos²((t/n + s)/(1 + s)·π/2)
    max_beta: float = 0.999         # betas clipped to at most this
    cond_drop_prob: float = 0.25    # training: music condition dropped per sample (classifier-free guidance)
    sample_steps: int = 50          # DDIM steps when sampling
    guidance: float = 2.0           # classifier-free guidance weight
    eta: float = 1.0                # DDIM noise (1: as stochastic as DDPM)
    clip_x0: float | None = 1.0     # clamp the predicted clean motion to ±clip_x0 on every channel

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiffusionConfig":
        """Inverse of ``to_dict``; raises ``ValueError`` naming unknown keys."""
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown DiffusionConfig keys {unknown}")
        return cls(**d)


DEFAULT_DIFFUSION = DiffusionConfig()
DEFAULT_SECONDS = 30.0              # seconds of dance from the song's start (--duration)
