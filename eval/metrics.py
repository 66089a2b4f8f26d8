"""The metrics of the FineDance benchmark (SPEC §8), on (T, 22, 3) body joints (metres, y up, 30 fps).

Distribution metrics (on feature sets, one row per dance; see :mod:`eval.features`):

- :func:`zscore` both sets with the ground truth's mean and standard deviation (ddof = 0). Clean
  protocol: a channel whose ground-truth σ < 1e-8 is divided by 1 instead; reference: σ + 1e-10.
- :func:`frechet_distance` (FID) between the Gaussians N(μ₁, Σ₁), N(μ₂, Σ₂) fitted to two sets
  (Σ with ddof = 1): ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^½. The trace of the matrix square root
  is computed as Σ √λᵢ over the eigenvalues of Σ₁^½ Σ₂ Σ₁^½ (symmetric, positive semi-definite), so
  it is exact and real even when the covariances are singular (fewer dances than dimensions).
- :func:`diversity` (Div): mean Euclidean distance over all unordered pairs of one set's rows.

Per-dance metrics:

- :func:`foot_skating` (FSR). Feet: (ankle, toe) = SMPL-X joints (7, 10) left, (8, 11) right. A foot
  is in contact at frame t when its ankle is at most 0.08 m and its toe at most 0.05 m above the
  floor; a contact frame slides when the foot moves horizontally more than 0.01 m to frame t+1.
  FSR = sliding contact frames / contact frames, per foot, averaged over the two feet (a foot that is
  never in contact is left out; a dance with no contact at all gives NaN, skipped by the averages).
  Clean: the floor is the 2nd percentile over frames of the lower toe's height (robust to a few
  frames of penetration and to jumps); the foot moves when the horizontal step ‖(dx, dz)‖ of its
  ankle or its toe exceeds the threshold; frames 0 … T−2 (the last has no next frame). Reference
  (LODGE's script): the floor is the toes' height in frame 0 (their mean when within 2 cm, else the
  lower); a joint moves when |mean(dx, dz)| exceeds the threshold (a signed mean, as published);
  all T frames, the last with zero speed.
- :func:`pfc` (EDGE's Physical Foot Contact), identical in both protocols except a still root:
  root velocity v_t = (r_{t+1} − r_t)/dt, acceleration a_t = (v_{t+1} − v_t)/dt (dt = 1/30 s,
  t = 0 … T−3); the upward component is clamped at ≥ 0 (falling is allowed with both feet off the
  ground); ‖a_t‖ is NORMALISED BY ITS MAXIMUM OVER THE DANCE (so it lies in [0, 1]); per foot the
  smaller of the ankle's and the toe's horizontal speeds ‖(dx, dz)‖ in m/frame, from frame t+1 to t+2;
  PFC = 10⁴ · mean_t (left min speed · right min speed · normalised ‖a_t‖). A root that never
  accelerates gives 0 (clean) or NaN (reference, 0/0 as published).
- :func:`bas` (Beat Alignment Score, ``sync.beats``): motion beats of the joints against music beats
  (frame indices), with the chance level of the shifted beat grid and the gain over it. Clean: only
  the music beats inside the motion's frames; reference: every beat of the music (whole song).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from body.skeleton import floor_height
from eval.protocol import CLEAN, Protocol

LEFT_FOOT, RIGHT_FOOT = (7, 10), (8, 11)        # (ankle, toe) SMPL-X joints
ANKLE_CONTACT_HEIGHT = 0.08                     # metres above the floor
TOE_CONTACT_HEIGHT = 0.05
SLIDE_SPEED = 0.01                              # metres per frame
LODGE_TOE_TOLERANCE = 0.02                      # metres: both toes count as on the floor in frame 0
PFC_SCALE = 1e4
FPS = 30
UP = 1                                          # y
FLAT = (0, 2)                                   # x, z


# ---------------------------------------------------------------------------------------------
# Distribution metrics


def zscore(pred, gt, protocol: Protocol = CLEAN) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) and (m, d) feature sets → both z-scored with the ground truth's mean and std."""
    pred, gt = np.atleast_2d(np.asarray(pred, np.float64)), np.atleast_2d(np.asarray(gt, np.float64))
    mean, std = gt.mean(axis=0), gt.std(axis=0)
    if protocol.std_floor is not None:
        std = np.where(std < protocol.std_floor, 1.0, std)
    else:
        std = std + protocol.std_epsilon
    return (pred - mean) / std, (gt - mean) / std


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((matrix + matrix.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to the rows of a (n, d) and b (m, d); n, m ≥ 2."""
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets differ in width: {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        return float("nan")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)
    return max(value, 0.0)


def diversity(features) -> float:
    """Mean pairwise Euclidean distance between the rows of (n, d) features (NaN for n < 2)."""
    from scipy.spatial.distance import pdist

    f = np.atleast_2d(np.asarray(features, np.float64))
    return float(pdist(f).mean()) if len(f) >= 2 else float("nan")


def fid_div(pred_features, gt_features, protocol: Protocol = CLEAN) -> dict[str, float]:
    """FID between the sets and the diversity of each, after z-scoring with the ground truth."""
    p, g = zscore(pred_features, gt_features, protocol)
    return {"fid": frechet_distance(p, g), "div": diversity(p), "div_gt": diversity(g)}


# ---------------------------------------------------------------------------------------------
# Feet


@dataclass(frozen=True)
class FootSkating:
    """Per-foot sliding ratios (NaN when a foot is never in contact) and their mean."""

    left: float
    right: float
    contact_frames: tuple[int, int]
    sliding_frames: tuple[int, int]

    @property
    def ratio(self) -> float:
        vals = [r for r in (self.left, self.right) if np.isfinite(r)]
        return float(np.mean(vals)) if vals else float("nan")


def _check(joints) -> np.ndarray:
    j = np.asarray(joints, np.float64)
    if j.ndim != 3 or j.shape[-1] != 3 or j.shape[1] <= max(RIGHT_FOOT):
        raise ValueError(f"joints must be (T, ≥{max(RIGHT_FOOT) + 1}, 3), got {j.shape}")
    return j


def floor_from_toes(joints, protocol: Protocol = CLEAN) -> float:
    """Height of the floor the dancer stands on (metres), from the toe joints, as each protocol grounds
    a motion."""
    j = _check(joints)
    toes = j[:, [LEFT_FOOT[1], RIGHT_FOOT[1]], UP]
    if protocol.fsr_style == "lodge":
        left, right = toes[0]
        return float((left + right) / 2 if abs(left - right) < LODGE_TOE_TOLERANCE else min(left, right))
    return floor_height(toes)


def foot_skating(joints, protocol: Protocol = CLEAN) -> FootSkating:
    """Foot skating of one dance (see the module docstring)."""
    j = _check(joints)
    if len(j) < 2:
        raise ValueError("foot skating needs at least 2 frames")
    height = j[..., UP] - floor_from_toes(j, protocol)
    step = j[1:] - j[:-1]                                              # (T−1, J, 3)
    if protocol.fsr_style == "lodge":
        moved = np.abs(step[..., list(FLAT)].mean(axis=-1))            # signed mean, as published
        moved = np.concatenate([moved, np.zeros_like(moved[:1])])     # last frame: speed 0
        frames = slice(None)
    else:
        moved = np.linalg.norm(step[..., list(FLAT)], axis=-1)
        frames = slice(0, len(j) - 1)
    result = []
    for ankle, toe in (LEFT_FOOT, RIGHT_FOOT):
        contact = ((height[:, ankle] <= ANKLE_CONTACT_HEIGHT) & (height[:, toe] <= TOE_CONTACT_HEIGHT))[frames]
        slides = contact & ((moved[:, ankle] > SLIDE_SPEED) | (moved[:, toe] > SLIDE_SPEED))
        n_contact, n_slide = int(contact.sum()), int(slides.sum())
        result.append((n_slide / n_contact if n_contact else float("nan"), n_contact, n_slide))
    (lr, lc, ls), (rr, rc, rs) = result
    return FootSkating(left=lr, right=rr, contact_frames=(lc, rc), sliding_frames=(ls, rs))


def pfc(joints, protocol: Protocol = CLEAN) -> float:
    """EDGE's Physical Foot Contact score of one dance, already ×10⁴ (see the module docstring)."""
    j = _check(joints)
    if len(j) < 3:
        raise ValueError("PFC needs at least 3 frames")
    dt = 1.0 / FPS
    root_v = (j[1:, 0] - j[:-1, 0]) / dt
    root_a = (root_v[1:] - root_v[:-1]) / dt                           # (T−2, 3)
    root_a[:, UP] = np.maximum(root_a[:, UP], 0.0)
    acc = np.linalg.norm(root_a, axis=-1)
    peak = acc.max()
    if peak <= 0:
        return 0.0 if protocol.pfc_zero_when_still else float("nan")
    acc = acc / peak
    feet = j[:, [LEFT_FOOT[0], LEFT_FOOT[1], RIGHT_FOOT[0], RIGHT_FOOT[1]]][..., list(FLAT)]
    speed = np.linalg.norm(feet[2:] - feet[1:-1], axis=-1)             # (T−2, 4) m/frame
    left, right = speed[:, :2].min(axis=1), speed[:, 2:].min(axis=1)
    return float((left * right * acc).mean() * PFC_SCALE)


# ---------------------------------------------------------------------------------------------
# Beats


def segment_beats(music_beats, n_frames: int, protocol: Protocol = CLEAN) -> np.ndarray:
    """The music beats a protocol scores a dance of n_frames against (sorted frame positions)."""
    music = np.sort(np.asarray(music_beats, np.float64).ravel())
    return music if protocol.whole_song_beats else music[(music >= 0) & (music < n_frames)]


def bas(joints, music_beats, protocol: Protocol = CLEAN):
    """Beat alignment of one dance → ``sync.beats.BeatAlignment`` (bas, chance, gain).

    joints: (T, J, 3); music_beats: beat frames of the music file the dance was made for (frame 0 =
    the dance's first frame). Clean: the beats in frames [0, T) and a chance grid cut at T; reference:
    all of them (the whole song) and an uncut chance grid.
    """
    from sync import beats

    j = np.asarray(joints, np.float64)
    music = segment_beats(music_beats, len(j), protocol)
    return beats.beat_alignment(music, beats.motion_beats(j), n_frames=None if protocol.whole_song_beats else len(j))


def beat_phases(joints, music_beats) -> np.ndarray:
    """Where in the beat each motion beat of a dance falls: (K,) phases in [−½, ½) of a beat (0 = on
    a music beat, −0.1 = a tenth of a beat early), for the motion beats between the first and the
    last music beat. joints (T, J, 3); music_beats: beat frames (frame 0 = the dance's first frame)."""
    from sync import beats

    music = np.sort(np.asarray(music_beats, np.float64).ravel())
    moves = beats.motion_beats(np.asarray(joints, np.float64))
    if len(music) < 2 or len(moves) == 0:
        return np.zeros(0)
    moves = moves[(moves >= music[0]) & (moves < music[-1])]
    i = np.searchsorted(music, moves, side="right") - 1
    phase = (moves - music[i]) / (music[i + 1] - music[i])
    return (phase + 0.5) % 1.0 - 0.5


def phase_locking(phases) -> tuple[float, float]:
    """Phase-locking of motion beats to the music beat: (R, mean phase). R = |mean e^{2πiφ}| is 1
    when every motion beat falls at the same point of the beat and ≈ 0 for timing unrelated to the
    beat (about 1/√K for K beats by chance); the mean phase says where (in beats, [−½, ½))."""
    phases = np.asarray(phases, np.float64).ravel()
    if len(phases) == 0:
        return float("nan"), float("nan")
    z = np.exp(2j * np.pi * phases).mean()
    return float(abs(z)), float(np.angle(z) / (2 * np.pi))
