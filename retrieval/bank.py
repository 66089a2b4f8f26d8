"""Retrieval (ours): start the diffusion from real dance that suits the song.

FineDance's paper describes a genre- and coherence-aware retrieval module whose code was never
released. Ours is simpler and says plainly what it does:

- **Retrieved**: real motion-capture clips from a small bank (``assets/retrieval/bank.npz``: the
  open corpus's training clips, CMU dance mocap retargeted onto our body, *before* any warping to
  music; the held-out clips are not in it). For a song, clips whose pulse fits the song's tempo
  (the corpus's rule: their median kinematic-beat interval is ½, 1, 2 or 3 beats within the warp's
  slope limits) are drawn at random with the dance's seed, each possibly mirrored, each played
  uniformly faster or slower so its pulse equals that multiple of the beat, joined end to end
  (each turned about the vertical and moved so it starts where and facing where the last one
  ended, cross-faded over ``JOIN_FRAMES``) until the song is covered, then turned to face the
  camera (+z) on average. Its slow drift across the
  floor is removed (the network keeps dancers within about a metre), and the whole is re-timed
  onto the song's beats by the product's beat sync (``sync.time_warp.sync_to_beats``).
  With a style (``--style``, issue 22) only that style's clips are drawn.
  ``CANDIDATES`` such sequences are drawn and the one whose re-timed motion fits the song's beats
  best (BAS gain over chance, ``sync.beats.beat_alignment``) is used (:func:`retrieve_synced`);
  a candidate that keeps both feet off the floor most of the time (jumps, relevés: fewer than
  ``MIN_GROUNDED`` of its frames with an ankle within ``GROUNDED_HEIGHT`` of the floor) is taken
  only if every candidate does.
- **Generated**: the diffusion model samples the dance by inpainting
  (``model.diffusion.GaussianDiffusion.sample_long``'s ``known``/``keep``): the retrieved body
  motion is kept, and the network writes, conditioned on the music, (a) every transition between
  two clips (``TRANSITION`` frames on each side of a join, faded in and out over ``FADE`` frames)
  and (b) the hands throughout (the mocap has no finger motion). Beat sync then re-times the
  whole dance onto the song's beats and foot locking plants its feet, as for any dance.

We tried SDEdit first (start from the retrieved motion noised to an intermediate step): our small
network turns even 10 % noise into its own smooth, low-energy motion (joint speed 0.66 → 0.44 m/s,
Div_k 9.7 → 4.6 on the test set), so the real dance's energy was lost; inpainting keeps it. The bank
is built by ``data/code/build_retrieval_bank.py``; credits in ``assets/retrieval/README.md``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from body import rotations
from body.skeleton import MOTION_DIM_315, N_BODY_JOINTS, ROT6D, floor_height
from dataset.open_corpus import TEMPO_MULTIPLES    # a clip's pulse may span this many beats, as in the corpus
from motion.layout import MOTION_315, layout_of
from sync.time_warp import SLOPE_LIMITS             # how much a clip may be sped up or slowed down

ROOT_ROTATION = slice(MOTION_315.rotations.start, MOTION_315.rotations.start + ROT6D)   # joint 0 (global orientation)
FLOOR_AXES = [MOTION_315.translation.start, MOTION_315.translation.start + 2]          # translation x and z
HEIGHT_AXIS = MOTION_315.translation.start + 1

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BANK = ROOT / "assets" / "retrieval" / "bank.npz"
JOIN_FRAMES = 12          # cross-fade between consecutive clips
TRANSITION = 20           # frames on each side of a join that the network writes
FADE = 6                  # frames over which the kept motion fades into the generated transition
CANDIDATES = 6            # retrieved sequences compared by beat fit; the best is danced around
MIN_CLIP_FRAMES = 4 * JOIN_FRAMES   # shorter clips are never drawn (each join must add frames)
MIN_GROUNDED = 0.1        # a candidate must have a foot near the floor in at least this share of frames
GROUNDED_HEIGHT = 0.08    # m: ankle height above the floor that counts as near it (the FSR protocol's)
DRIFT_WINDOW = 241        # frames (8 s): the floor drift removed is the clip path's running mean over this


class BankError(ValueError):
    """A retrieval bank that cannot be read. The message names the file."""


@dataclass(frozen=True)
class Bank:
    """Real dance clips: names, styles, (T_i, 315) float32 motions and their kinematic beats."""

    names: tuple[str, ...]
    styles: tuple[str, ...]
    motions: tuple[np.ndarray, ...]
    beats: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def pulses(self) -> np.ndarray:
        """(N,) median interval between each clip's kinematic beats, frames (inf with < 2 beats)."""
        return np.array([np.median(np.diff(b)) if len(b) > 1 else np.inf for b in self.beats])

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bank as one compressed .npz (motions in float16, about 2 bytes a number)."""
        from atomic import atomic_write

        lengths = np.array([len(m) for m in self.motions])
        n_beats = np.array([len(b) for b in self.beats])
        arrays = {"names": np.array(self.names), "styles": np.array(self.styles), "lengths": lengths,
                  "motion": np.concatenate(self.motions).astype(np.float16), "n_beats": n_beats,
                  "beats": np.concatenate(self.beats).astype(np.float32)}
        return atomic_write(path, lambda f: np.savez_compressed(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike = DEFAULT_BANK) -> "Bank":
        path = Path(path)
        try:
            with np.load(path) as z:
                lengths, n_beats = z["lengths"], z["n_beats"]
                motion, beats = z["motion"].astype(np.float32), z["beats"].astype(np.float64)
                names, styles = tuple(str(n) for n in z["names"]), tuple(str(s) for s in z["styles"])
        except FileNotFoundError:
            raise BankError(f"{path}: retrieval bank not found (build it with "
                            f"data/code/build_retrieval_bank.py, or turn retrieval off)") from None
        except (OSError, KeyError, ValueError) as e:
            raise BankError(f"{path}: not a retrieval bank ({e})") from None
        if motion.ndim != 2 or motion.shape[1] != MOTION_DIM_315 or lengths.sum() != len(motion):
            raise BankError(f"{path}: motion must be (T, {MOTION_DIM_315}) split by 'lengths'")
        if np.any(lengths <= 0) or n_beats.sum() != len(beats) or len(names) != len(lengths):
            raise BankError(f"{path}: 'lengths', 'n_beats' and 'names' do not match the arrays")
        return cls(names, styles, tuple(np.split(motion, np.cumsum(lengths)[:-1])),
                   tuple(np.split(beats, np.cumsum(n_beats)[:-1])))


def tempo_scale(pulse: float, period: float, multiples=TEMPO_MULTIPLES, limits=SLOPE_LIMITS) -> float | None:
    """The time scale (song frames per clip frame) that makes a clip's pulse a whole multiple of
    the song's beat period, the one closest to 1; None when no multiple is within ``limits``."""
    if not np.isfinite(pulse) or pulse <= 0 or not np.isfinite(period) or period <= 0:
        return None
    scales = np.array([k * period / pulse for k in multiples])
    best = float(scales[np.argmin(np.abs(np.log(scales)))])
    return best if limits[0] <= best <= limits[1] else None


def retime(motion: np.ndarray, scale: float) -> np.ndarray:
    """A (T, 315) motion played ``scale`` times slower (scale > 1) or faster, resampled (slerp)."""
    from sync.time_warp import sample_motion

    n = max(2, int(np.floor((len(motion) - 1) * scale)) + 1)
    return sample_motion(motion, np.minimum(np.arange(n) / scale, len(motion) - 1))


def mirrored(motion: np.ndarray) -> np.ndarray:
    """The left/right mirror image of a (T, 315) motion (``dataset.retarget.mirror_motion``)."""
    from motion.formats import motion_from_vector, motion_to_vector
    from dataset.retarget import mirror_motion

    return motion_to_vector(mirror_motion(motion_from_vector(motion)), with_contacts=False)


def _root_matrices(motion: np.ndarray) -> torch.Tensor:
    rot6d = torch.from_numpy(np.ascontiguousarray(motion[:, ROOT_ROTATION], np.float64))
    return rotations.rotation_6d_to_matrix(rot6d)


def heading(motion: np.ndarray) -> np.ndarray:
    """(T,) the direction the pelvis faces on the floor, radians about +y (0 = facing +z)."""
    forward = _root_matrices(motion)[:, :, 2].numpy()          # the pelvis's local +z in the world
    return np.arctan2(forward[:, 0], forward[:, 2])


def turned(motion: np.ndarray, angle: float, pelvis_rest: np.ndarray) -> np.ndarray:
    """A (T, 315) motion turned by ``angle`` radians about the vertical through the world origin
    (root orientation and the pelvis's path; ``pelvis_rest``: the body's rest pelvis position)."""
    c, s = np.cos(angle), np.sin(angle)
    turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    out = motion.copy()
    pelvis = motion[:, MOTION_315.translation].astype(np.float64) + pelvis_rest
    out[:, MOTION_315.translation] = pelvis @ turn.T - pelvis_rest
    mats = torch.from_numpy(turn) @ _root_matrices(motion)
    out[:, ROOT_ROTATION] = rotations.matrix_to_rotation_6d(mats).numpy()
    return out


def _cross_fade(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a's last JOIN_FRAMES and b's first, blended frame by frame (linear translation, slerp
    rotations: ``sample_motion`` between each pair of frames, interleaved a₀ b₀ a₁ b₁ …)."""
    from sync.time_warp import sample_motion

    n = min(JOIN_FRAMES, len(a), len(b))
    w = (np.arange(n) + 1.0) / (n + 1.0)
    pairs = np.stack([a[-n:], b[:n]], axis=1).reshape(2 * n, -1)
    return sample_motion(pairs, 2 * np.arange(n) + w)


def join(first: np.ndarray, nxt: np.ndarray, pelvis_rest: np.ndarray) -> np.ndarray:
    """Two (T, 315) motions played one after the other: ``nxt`` turned to face where ``first``
    ends facing and moved to start where it ends (height kept), cross-faded over JOIN_FRAMES."""
    nxt = turned(nxt, float(heading(first[-1:])[0] - heading(nxt[:1])[0]), pelvis_rest)
    nxt = nxt.copy()
    nxt[:, FLOOR_AXES] += first[-1, FLOOR_AXES] - nxt[0, FLOOR_AXES]
    n = min(JOIN_FRAMES, len(first), len(nxt))
    return np.concatenate([first[:-n], _cross_fade(first, nxt), nxt[n:]])


def without_drift(motion: np.ndarray) -> np.ndarray:
    """The motion with its slow travel across the floor removed (x/z minus their running mean over
    DRIFT_WINDOW frames) and its height relative to the first frame, as the network expects."""
    from scipy.ndimage import uniform_filter1d

    out = motion.copy()
    size = min(len(out), DRIFT_WINDOW)
    out[:, FLOOR_AXES] -= uniform_filter1d(out[:, FLOOR_AXES].astype(np.float64), size=size, axis=0, mode="nearest")
    out[:, HEIGHT_AXIS] -= out[0, HEIGHT_AXIS]
    return out


@dataclass(frozen=True)
class Retrieved:
    """What :func:`retrieve` put together: the (T, 315) motion, one line per clip used, and the
    frames where one clip hands over to the next (the middle of each cross-fade)."""

    motion: np.ndarray
    clips: tuple[str, ...]
    joins: tuple[int, ...] = ()
    beat_gain: float | None = None     # BAS − chance against the song's beats (retrieve_synced)

    def keep_mask(self) -> np.ndarray:
        """(T, width) float32 for inpainting a motion of this one's width (315 or 319): 1 where the
        retrieved body motion is kept (contacts, translation, 22 body joints), 0 where the network
        writes (the hands everywhere, every channel within TRANSITION frames of a join), a
        raised-cosine fade between."""
        layout = layout_of(self.motion)
        n = len(self.motion)
        frames = np.arange(n)
        weight = np.ones(n)
        for j in self.joins:
            d = np.abs(frames - j) - TRANSITION
            weight = np.minimum(weight, np.where(d <= 0, 0.0, np.where(d >= FADE, 1.0,
                                                                        0.5 - 0.5 * np.cos(np.pi * d / FADE))))
        keep = np.zeros((n, layout.dim), np.float32)
        keep[:, :layout.rotations.start + N_BODY_JOINTS * ROT6D] = weight[:, None]   # contacts, root, body
        return keep


def style_clips(bank: Bank, style: str | None = None) -> list[int]:
    """Indices of the bank's clips of ``style`` (``dataset.styles``; None or 'any': every clip)."""
    from dataset.styles import ANY, check_style

    style = check_style(style)
    return [i for i in range(len(bank)) if style == ANY or bank.styles[i] == style]


def retrieve(bank: Bank, music_beats, n_frames: int, seed: int, pelvis_rest: np.ndarray,
             style: str | None = None) -> Retrieved:
    """Real dance covering ``n_frames`` of a song whose beats are ``music_beats`` (frames): clips
    of ``style`` (None or 'any': every clip) that fit its tempo, drawn with ``seed``, joined, drift
    removed (see the module docstring; the beat sync onto the song is the caller's). Deterministic
    for a given seed."""
    if len(bank) == 0:
        raise BankError("the retrieval bank is empty")
    beats = np.sort(np.asarray(music_beats, np.float64).ravel())
    period = float(np.median(np.diff(beats))) if len(beats) > 1 else float("nan")
    scales = [tempo_scale(p, period) for p in bank.pulses]
    allowed = set(style_clips(bank, style))
    long_enough = [i for i, m in enumerate(bank.motions) if len(m) >= MIN_CLIP_FRAMES and i in allowed]
    if not long_enough:
        what = f" {style}" if allowed != set(range(len(bank))) else ""
        raise BankError(f"the retrieval bank has no{what} clip of at least {MIN_CLIP_FRAMES} frames")
    candidates = [i for i in long_enough if scales[i] is not None] or long_enough
    rng = np.random.default_rng(seed)
    out, used, last, joins = None, [], None, []
    while out is None or len(out) < n_frames:
        pool = [i for i in candidates if i != last] or candidates
        i = int(pool[rng.integers(len(pool))])
        clip = bank.motions[i]
        flip = bool(rng.integers(2))
        if flip:
            clip = mirrored(clip)
        scale = scales[i] or 1.0
        if abs(scale - 1.0) > 1e-3:
            clip = retime(clip, scale)
        if out is None:                      # the first clip starts anywhere in it
            start = int(rng.integers(max(1, len(clip) - min(len(clip), n_frames) + 1)))
            clip = clip[start:]
            out = clip
        else:
            start = 0
            joins.append(len(out) - min(JOIN_FRAMES, len(out), len(clip)) // 2)
            out = join(out, clip, pelvis_rest)
        used.append(f"{bank.names[i]}{' (mirrored)' if flip else ''} from frame {start}, ×{1 / scale:.2f} speed")
        last = i
    out = out[:n_frames]
    facing = heading(out)                    # turned to face the camera (+z) on average
    out = turned(out, -float(np.arctan2(np.sin(facing).mean(), np.cos(facing).mean())), pelvis_rest)
    return Retrieved(without_drift(out), tuple(used), tuple(j for j in joins if j < n_frames))


def retrieve_synced(bank: Bank, music_beats, n_frames: int, seed: int, rest_joints,
                    candidates: int = CANDIDATES, style: str | None = None) -> Retrieved:
    """The best-fitting of ``candidates`` retrieved sequences (seeds derived from ``seed``) of clips
    of ``style`` (None or 'any': all), each with foot contacts and re-timed onto ``music_beats`` by
    beat sync: a (T, 319) Retrieved whose joins follow the re-timing and whose ``beat_gain`` is its
    BAS gain over chance."""
    from sync.beats import beat_alignment, body_joints, motion_beats
    from dataset.finedance import with_contacts
    from sync.time_warp import sync_to_beats

    beats = np.sort(np.asarray(music_beats, np.float64).ravel())
    beats = beats[(beats >= 0) & (beats < n_frames)]
    best = None
    pelvis_rest = np.asarray(rest_joints[0], np.float64)
    for k in range(candidates):
        child = np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, k]).generate_state(1)[0]   # any int seed
        found = retrieve(bank, beats, n_frames, int(child), pelvis_rest, style)
        sync = sync_to_beats(with_contacts(found.motion, rest_joints), beats, rest_joints)
        joins = found.joins
        if sync.source_frames is not None:      # where each join went: invert the re-timing's frame map
            joins = tuple(int(round(np.interp(j, sync.source_frames, np.arange(n_frames)))) for j in joins)
        joints = body_joints(sync.vector, rest_joints)
        gain = beat_alignment(beats, motion_beats(joints), n_frames).gain
        gain = -np.inf if not np.isfinite(gain) else gain
        key = (grounded_share(joints) >= MIN_GROUNDED, gain)
        if best is None or key > best[0]:
            best = (key, Retrieved(sync.vector, found.clips, joins, float(gain) if np.isfinite(gain) else None))
    return best[1]


def grounded_share(joints: np.ndarray) -> float:
    """Share of frames of (T, ≥12, 3) joints in which an ankle is within GROUNDED_HEIGHT of the floor
    (the floor: the 2nd percentile of the lower toe's height, as the evaluator grounds a dance)."""
    ankles, toes = joints[:, [7, 8], 1], joints[:, [10, 11], 1]
    return float(((ankles.min(axis=1) - floor_height(toes)) <= GROUNDED_HEIGHT).mean())
