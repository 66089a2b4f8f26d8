"""Kinematic beats and the Beat Alignment Score (SPEC §8).

Everything here counts time in frames of the 30 fps motion (music beats may be fractional frames,
e.g. annotated beat times × 30).

- Motion beats are the local minima of the mean joint speed after Gaussian smoothing (σ = 5 frames):
  the moments a dancer momentarily holds still, which in dance fall on the music's beats.
- BAS = mean over music beats of exp(−d² / (2·3²)), d = distance in frames from the music beat to
  the nearest motion beat. It is 1 when every music beat has a motion beat on it.
- BAS alone rewards chance: a motion with speed minima every ~10 frames scores 0.2–0.35 against
  any beat grid. :func:`chance_bas` gives the score the same motion gets against the same beat grid
  shifted by fractions of its local beat period (phases uniformly spread over one period, the
  unshifted phase excluded); :func:`beat_alignment` reports BAS, chance and their difference (the
  gain). Beat-synchronous motion has a clearly positive gain, motion unrelated to the music ≈ 0.

Empty inputs: no motion beats gives BAS 0; no music beats gives NaN (the score is undefined, so a
caller averaging over clips should use ``np.nanmean``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from body.kinematics import joints_from_6d
from body.skeleton import N_BODY_JOINTS
from audio.music import BEAT_CHANNEL
from motion.layout import layout_of

SPEED_SIGMA = 5.0      # frames: Gaussian smoothing of the speed curve before looking for minima
BAS_SIGMA = 3.0        # frames: tolerance of the alignment score
CHANCE_SHIFTS = 8      # phases of the shifted beat grid averaged by chance_bas


def joint_speed(joints: np.ndarray) -> np.ndarray:
    """(T, J, 3) joint positions → (T,) mean joint speed (position units per frame).

    Central differences ((x[t+1] − x[t−1]) / 2; one-sided at the ends), so the speed belongs to
    frame t itself: a forward difference would put every beat half a frame early.
    """
    joints = np.asarray(joints, np.float64)
    if joints.ndim != 3 or joints.shape[-1] != 3:
        raise ValueError(f"joints must be (T, J, 3), got {joints.shape}")
    if len(joints) < 2:
        return np.zeros(len(joints))
    return np.linalg.norm(np.gradient(joints, axis=0), axis=-1).mean(axis=1)


def motion_beats(joints: np.ndarray, sigma: float = SPEED_SIGMA, subframe: bool = False) -> np.ndarray:
    """Kinematic beats of a motion: (T, J, 3) joints → sorted frame positions (n,).

    A beat is a local minimum of the Gaussian-smoothed (σ = ``sigma`` frames) mean joint speed:
    lower than the next frame and not higher than the previous one (a flat-bottomed minimum counts
    once, at its last frame; a constant speed has none). The first and last frames are never beats.
    Integer frame indices (the BAS protocol), or with ``subframe`` float positions refined by a
    parabola through the minimum and its two neighbours (within ±½ frame; for fitting, not scoring).
    """
    s = gaussian_filter1d(joint_speed(joints), sigma, mode="nearest") if sigma > 0 else joint_speed(joints)
    if len(s) < 3:
        return np.zeros(0, float if subframe else int)
    idx = np.nonzero((s[1:-1] <= s[:-2]) & (s[1:-1] < s[2:]))[0] + 1
    if not subframe:
        return idx
    before, at, after = s[idx - 1], s[idx], s[idx + 1]
    curvature = before - 2 * at + after
    offset = np.where(curvature > 0, 0.5 * (before - after) / np.where(curvature > 0, curvature, 1), 0.0)
    return idx + np.clip(offset, -0.5, 0.5)


def body_joints(motion: np.ndarray, rest_joints: torch.Tensor | np.ndarray) -> np.ndarray:
    """(T, 315) or (T, 319) motion vector → (T, 22, 3) body joint positions (metres) by FK.

    rest_joints: (55, 3) rest joints of the body model (e.g. ``BodyModel().rest_joints``).
    """
    m = torch.as_tensor(np.asarray(motion, np.float32))
    layout = layout_of(m)
    trans = m[:, layout.translation]
    rot6d = layout.rot6d(m, N_BODY_JOINTS)
    with torch.no_grad():
        return joints_from_6d(rot6d, trans, torch.as_tensor(rest_joints, dtype=torch.float32)).numpy()


def beat_alignment_score(music_beats, motion_beats_, sigma: float = BAS_SIGMA) -> float:
    """Mean over music beats of exp(−d² / (2σ²)), d = frames to the nearest motion beat.

    music_beats: (M,) frame positions (may be fractional); motion_beats_: (N,) frame positions.
    Returns 0 when there are no motion beats and NaN when there are no music beats.
    """
    music = np.asarray(music_beats, np.float64).ravel()
    motion = np.sort(np.asarray(motion_beats_, np.float64).ravel())
    if music.size == 0:
        return float("nan")
    if motion.size == 0:
        return 0.0
    return float(np.exp(-_nearest_distance(music, motion) ** 2 / (2 * sigma ** 2)).mean())


def _nearest_distance(points: np.ndarray, sorted_ref: np.ndarray) -> np.ndarray:
    """Distance from each point to the nearest value of a sorted, non-empty reference array."""
    last = len(sorted_ref) - 1
    i = np.searchsorted(sorted_ref, points)
    before = sorted_ref[np.clip(i - 1, 0, last)]
    after = sorted_ref[np.clip(i, 0, last)]
    return np.minimum(np.abs(points - before), np.abs(points - after))


def shifted_grid(music_beats, fraction: float) -> np.ndarray:
    """Each music beat moved later by ``fraction`` of its local beat period (the interval to the
    next beat; the last beat uses the interval before it). Needs at least two beats."""
    b = np.sort(np.asarray(music_beats, np.float64).ravel())
    if len(b) < 2:
        raise ValueError("a beat grid needs at least two beats to have a period")
    period = np.diff(b)
    period = np.append(period, period[-1])
    return b + fraction * period


def chance_bas(music_beats, motion_beats_, n_frames: int | None = None, n_shifts: int = CHANCE_SHIFTS,
               sigma: float = BAS_SIGMA) -> float:
    """BAS of the motion against the music's beat grid shifted by (k + ½)/n of its period,
    k = 0 … n−1, averaged: the score this motion gets by chance from this grid.

    Shifted beats at or past ``n_frames`` (when given) are dropped, as the motion ends there.
    Fewer than two music beats: NaN (no period to shift by).
    """
    music = np.asarray(music_beats, np.float64).ravel()
    if len(music) < 2:
        return float("nan")
    scores = []
    for k in range(n_shifts):
        grid = shifted_grid(music, (k + 0.5) / n_shifts)
        if n_frames is not None:
            grid = grid[grid < n_frames]
        if len(grid):
            scores.append(beat_alignment_score(grid, motion_beats_, sigma))
    return float(np.mean(scores)) if scores else float("nan")


@dataclass(frozen=True)
class BeatAlignment:
    """BAS of a motion, the chance level of its beat grid, and gain = bas − chance."""

    bas: float
    chance: float

    @property
    def gain(self) -> float:
        return self.bas - self.chance


def beat_alignment(music_beats, motion_beats_, n_frames: int | None = None,
                   n_shifts: int = CHANCE_SHIFTS, sigma: float = BAS_SIGMA) -> BeatAlignment:
    """BAS and its chance level for one motion (see the module docstring)."""
    return BeatAlignment(beat_alignment_score(music_beats, motion_beats_, sigma),
                         chance_bas(music_beats, motion_beats_, n_frames, n_shifts, sigma))


def music_beats_from_features(features: np.ndarray) -> np.ndarray:
    """(T, 35) music features → frame indices of librosa's beats (the 0/1 beat channel)."""
    return np.nonzero(np.asarray(features)[:, BEAT_CHANNEL] > 0.5)[0]
