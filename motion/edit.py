"""Editing a dance: which frames and body parts of a motion are kept, as masks over the 319-d vector.

An edit names a source motion (S frames, 30 fps, y up, as a (S, 319) vector), spans of it in seconds
(``--keep 0-3,6-10``; default all of it) and body parts (``--keep_parts``; default ``all``). The dance
starts with the source at frame 0 and may run past its end (the extra frames continue the dance).
Inside the spans the parts' channels are kept exactly; everything else is generated (``pipeline``
samples it by inpainting, ``model.diffusion``), and beat sync and foot lock leave kept numbers alone
(``sync``: they read :meth:`EditPlan.kept`).

Parts (joints are SMPL-X body joints, see ``body.skeleton.JOINT_NAMES``):

- ``root``: root translation and global orientation (the pelvis's rotation): a path to follow;
- ``lower``: the root, the hips, knees, ankles and feet (and the foot-contact channels when the source
  has them): the legs keep their world positions;
- ``upper``: the root, the spine, neck, head, collars, shoulders, elbows and wrists. The root is part of
  it so that the upper body keeps its world position too (the legs are then written under a fixed pelvis);
- ``hands``: the 30 finger joints' local rotations (their world positions follow the arms: combine with
  ``upper`` to keep those too);
- ``all``: every channel.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from body.skeleton import FPS, JOINT_NAMES, MOTION_DIM, N_BODY_JOINTS, N_MOTION_JOINTS, ROT6D
from motion.layout import MOTION_319

GUARD = 15           # frames (0.5 s) beside a kept stretch where generated channels are eased towards the source

_LEG_JOINTS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
               "left_foot", "right_foot")
_UPPER_JOINTS = ("spine1", "spine2", "spine3", "neck", "left_collar", "right_collar", "head",
                 "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")
_INDEX = {name: i for i, name in enumerate(JOINT_NAMES[:N_BODY_JOINTS])}
PART_JOINTS = {   # motion-joint indices (0..51) whose rotations each part keeps
    "root": (0,),
    "lower": (0,) + tuple(_INDEX[n] for n in _LEG_JOINTS),
    "upper": (0,) + tuple(_INDEX[n] for n in _UPPER_JOINTS),
    "hands": tuple(range(N_BODY_JOINTS, N_MOTION_JOINTS)),
    "all": tuple(range(N_MOTION_JOINTS)),
}
PARTS = tuple(PART_JOINTS)
_WITH_TRANSLATION = ("root", "lower", "upper", "all")
_WITH_CONTACTS = ("lower", "all")
LEG_ROTATION_JOINTS = tuple(_INDEX[n] for n in _LEG_JOINTS[:6])   # hips, knees, ankles: what foot lock turns


class EditError(ValueError):
    """A span, part or motion that cannot be edited. The message names it."""


_NUMBER = r"\s*(\d+(?:\.\d*)?|\.\d+)\s*"
_SPAN = re.compile(_NUMBER + "-" + _NUMBER)


def parse_spans(text: str | None, seconds: float) -> tuple[tuple[int, int], ...]:
    """'0-3,6-10' (seconds of a motion ``seconds`` long) → ((0, 90), (180, 300)): frame ranges [start, stop).

    None or '' or 'all' → the whole motion. Overlapping spans are merged. Raises EditError for a span
    that is malformed, empty (end ≤ start) or runs past the motion's end."""
    n = int(round(seconds * FPS))
    if text is None or str(text).strip().lower() in ("", "all"):
        return ((0, n),)
    frames = []
    for piece in str(text).split(","):
        m = _SPAN.fullmatch(piece)
        if not m:
            raise EditError(f"--keep: '{piece.strip()}' is not a span START-END in seconds (e.g. 0-3,6-10)")
        start, end = float(m.group(1)), float(m.group(2))
        if not end > start:
            raise EditError(f"--keep: span '{piece.strip()}' ends before it starts")
        if end > seconds + 0.5 / FPS:
            raise EditError(f"--keep: span '{piece.strip()}' runs past the end of the motion ({seconds:.2f} s)")
        frames.append((int(round(start * FPS)), min(n, int(round(end * FPS)))))
    merged = []
    for start, stop in sorted(frames):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return tuple((a, b) for a, b in merged if b > a)


def parse_parts(text: str | tuple | list | None) -> tuple[str, ...]:
    """'lower,hands' (or a sequence of names) → ('lower', 'hands'); None or '' → ('all',).
    Raises EditError naming an unknown part."""
    names = text.split(",") if isinstance(text, str) else list(text or [])
    names = [n.strip().lower() for n in names if n.strip()] or ["all"]
    for n in names:
        if n not in PART_JOINTS:
            raise EditError(f"--keep_parts: unknown part '{n}'; choose from {', '.join(PARTS)} (comma-separated)")
    return tuple(dict.fromkeys(names))


def part_channels(parts, with_contacts: bool = True) -> np.ndarray:
    """(319,) bool: the channels of the 319-d vector that ``parts`` keep (contacts only ``with_contacts``)."""
    mask = np.zeros(MOTION_DIM, bool)
    rot0 = MOTION_319.rotations.start
    for part in parse_parts(parts):
        for j in PART_JOINTS[part]:
            mask[rot0 + j * ROT6D:rot0 + (j + 1) * ROT6D] = True
        if part in _WITH_TRANSLATION:
            mask[MOTION_319.translation] = True
        if part in _WITH_CONTACTS and with_contacts:
            mask[MOTION_319.contacts] = True
    return mask


def ease_away_from(fixed: np.ndarray, width: float) -> np.ndarray:
    """(T,) bool fixed frames → (T,) weights: 0 on fixed frames, rising by a raised cosine to 1 at
    ``width`` frames from the nearest fixed frame (all ones when nothing is fixed). What may change a
    dance (beat sync, foot lock, the generated side of a seam) is scaled by it."""
    fixed = np.asarray(fixed, bool)
    n = len(fixed)
    if not fixed.any():
        return np.ones(n)
    idx = np.nonzero(fixed)[0]
    t = np.arange(n)
    pos = np.searchsorted(idx, t)
    before = np.where(pos > 0, t - idx[np.clip(pos - 1, 0, None)], n)
    after = np.where(pos < len(idx), idx[np.clip(pos, None, len(idx) - 1)] - t, n)
    dist = np.minimum(before, after).astype(np.float64)
    x = np.clip(dist / max(width, 1e-9), 0.0, 1.0)
    return 0.5 * (1.0 - np.cos(np.pi * x))


def fixed_frames(kept: np.ndarray | None, channels: np.ndarray | slice | None = None) -> np.ndarray | None:
    """(T, D) kept mask → (T,) frames in which any of ``channels`` (default: any channel) is kept."""
    if kept is None:
        return None
    kept = np.asarray(kept) >= 1
    return (kept if channels is None else kept[:, channels]).any(axis=1)


@dataclass(frozen=True)
class EditPlan:
    """A resolved edit: the source (S, 319) vector (y up, 30 fps), its kept spans (frames [start, stop))
    and parts, and whether the source's contact channels are real (else they are generated)."""

    source: np.ndarray
    spans: tuple[tuple[int, int], ...]
    parts: tuple[str, ...] = ("all",)
    has_contacts: bool = True
    name: str = "motion"

    @property
    def n_frames(self) -> int:
        return len(self.source)

    @property
    def seconds(self) -> float:
        return self.n_frames / FPS

    @property
    def channels(self) -> np.ndarray:
        """(319,) bool: the kept channels (inside the spans)."""
        return part_channels(self.parts, self.has_contacts)

    def frames(self, n_frames: int) -> np.ndarray:
        """(n_frames,) bool: the frames inside a kept span."""
        out = np.zeros(n_frames, bool)
        for start, stop in self.spans:
            out[start:min(stop, n_frames)] = True
        return out

    def kept(self, n_frames: int) -> np.ndarray:
        """(n_frames, 319) bool: the numbers of a dance of n_frames that equal the source exactly."""
        return self.frames(n_frames)[:, None] & self.channels[None, :]

    def known(self, n_frames: int) -> np.ndarray:
        """(n_frames, 319) float32: the source, its last frame held past its end."""
        idx = np.minimum(np.arange(n_frames), self.n_frames - 1)
        return np.asarray(self.source, np.float32)[idx]

    def keep_weights(self, n_frames: int, guard: int = GUARD) -> np.ndarray:
        """(n_frames, 319) float32 inpainting mask: 1 on kept numbers; the kept channels ease from 1
        to 0 over ``guard`` frames beside each kept span (on the generated side), so a re-danced
        stretch leaves and rejoins the kept motion without a jump; 0 elsewhere."""
        frames = self.frames(n_frames)
        weight = 1.0 - ease_away_from(frames, guard + 1)
        return (weight[:, None] * self.channels[None, :]).astype(np.float32)
