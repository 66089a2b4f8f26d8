"""A small, general reader for Biovision Hierarchy (BVH) motion capture files.

A BVH file has a HIERARCHY section (a tree of joints, each with an OFFSET from its parent and a
list of CHANNELS; leaves end in "End Site" blocks that only carry an offset) and a MOTION section
(a frame count, a frame time and one line of channel values per frame, in the order the channels
were declared). Conventions this reader follows:

- A joint's local rotation is the product of its rotation channels in the order they are listed:
  ``CHANNELS 3 Zrotation Xrotation Yrotation`` means ``R = Rz @ Rx @ Ry`` (angles in degrees).
  Any order and any subset of the three axes is accepted.
- A child's position is ``parent_position + parent_world_rotation @ child_translation``, where the
  translation is the OFFSET, or the position channels where a joint has them (they replace the
  OFFSET, as motion-capture exporters write them; for the usual root with OFFSET 0 both agree).
- End sites are kept as joints named ``<parent>_end`` (``_end2``… if a joint has several) with no
  channels and an identity rotation, so forward kinematics gives their positions too.

Units and axes are the file's own; nothing is rescaled here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from body import kinematics, rotations

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
_ROTATION_CHANNELS = {"xrotation": "x", "yrotation": "y", "zrotation": "z"}
_POSITION_CHANNELS = {"xposition": 0, "yposition": 1, "zposition": 2}


class BvhError(ValueError):
    """A BVH file is malformed. The message names the file and what is wrong."""


@dataclass
class Bvh:
    """One BVH clip.

    names: J joint names (end sites included, named ``<parent>_end``), depth-first file order.
    parents: J parent indices (−1 for the root); ``parents[j] < j``.
    offsets: (J, 3) OFFSET of each joint from its parent, file units.
    channels: J tuples of channel names as written in the file (empty for end sites).
    end_site: (J,) bool, True for end sites.
    rotations: (T, J, 3, 3) float64 local rotation matrices (identity where a joint has no
        rotation channels).
    translations: (T, J, 3) float64 local translation of each joint from its parent (the OFFSET,
        or the position channels where the joint has them), file units.
    frame_time: seconds per frame as declared in the file.
    frames_declared: the "Frames:" count in the file (``len(self)`` is smaller when the reader
        was asked for fewer frames).
    """

    path: str
    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    end_site: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    frame_time: float
    frames_declared: int

    def __len__(self) -> int:
        return self.rotations.shape[0]

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def root_positions(self) -> np.ndarray:
        """(T, 3) root position per frame, file units."""
        return self.translations[:, 0]

    @property
    def n_joints(self) -> int:
        """Joints proper, end sites not counted."""
        return int((~self.end_site).sum())

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"{self.path}: no joint named '{name}'") from None

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions with every rotation zero and the root at the origin."""
        return offsets_to_positions(self.offsets, self.parents, root_at_origin=True)


def offsets_to_positions(offsets: np.ndarray, parents, root_at_origin: bool = False) -> np.ndarray:
    """(..., J, 3) local translations → (..., J, 3) positions with all rotations at identity."""
    pos = np.array(offsets, dtype=np.float64, copy=True)
    if root_at_origin:
        pos[..., 0, :] = 0.0
    for j, p in enumerate(parents):
        if p >= 0:
            pos[..., j, :] += pos[..., p, :]
    return pos


# ---------------------------------------------------------------------------------------------
# Parsing


def _fail(path, problem: str) -> BvhError:
    return BvhError(f"{path}: {problem}")


class _Tokens:
    """Whitespace tokens of the HIERARCHY section with their line numbers, for error messages."""

    def __init__(self, path, lines: list[str]):
        self.path = path
        self.items = [(tok, n + 1) for n, line in enumerate(lines) for tok in line.split()]
        self.pos = 0

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise _fail(self.path, f"file ends inside the HIERARCHY while expecting {what}")
        tok = self.items[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str) -> int:
        tok, line = self.next(f"'{word}'")
        if tok.upper() != word.upper():
            raise _fail(self.path, f"line {line}: expected '{word}', found '{tok}'")
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            return float(tok)
        except ValueError:
            raise _fail(self.path, f"line {line}: expected a number for {what}, found '{tok}'") from None


def _parse_hierarchy(path, tokens: _Tokens):
    names, parents, offsets, channels, end = [], [], [], [], []

    def block(name: str, parent: int, is_end: bool) -> None:
        tokens.expect("{")
        index = len(names)
        names.append(name)
        parents.append(parent)
        channels.append(())
        tokens.expect("OFFSET")
        offsets.append([tokens.number(f"the OFFSET of '{name}'") for _ in range(3)])
        end.append(is_end)
        chans: tuple[str, ...] = ()
        n_end = 0
        while True:
            tok, line = tokens.next(f"the rest of joint '{name}'")
            key = tok.upper()
            if key == "}":
                break
            if key == "CHANNELS" and not is_end:
                count = tokens.number(f"the channel count of '{name}'")
                if count != int(count) or not 0 <= count <= 6:
                    raise _fail(path, f"line {line}: joint '{name}' declares {count} channels")
                chans = tuple(tokens.next(f"channel names of '{name}'")[0] for _ in range(int(count)))
                for c in chans:
                    if c.lower() not in _ROTATION_CHANNELS and c.lower() not in _POSITION_CHANNELS:
                        raise _fail(path, f"line {line}: joint '{name}' has unknown channel '{c}'")
                if len({c.lower() for c in chans}) != len(chans):
                    raise _fail(path, f"line {line}: joint '{name}' repeats a channel: {chans}")
            elif key == "JOINT" and not is_end:
                child, _ = tokens.next("a joint name")
                block(child, index, False)
            elif key == "END" and not is_end:
                tokens.expect("Site")
                n_end += 1
                block(f"{name}_end" if n_end == 1 else f"{name}_end{n_end}", index, True)
            else:
                raise _fail(path, f"line {line}: unexpected '{tok}' in joint '{name}'")
        channels[index] = chans

    tokens.expect("HIERARCHY")
    tokens.expect("ROOT")
    root, _ = tokens.next("the root joint's name")
    block(root, -1, False)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise _fail(path, f"joint names are not unique: {dup}")
    return names, parents, np.asarray(offsets, np.float64), channels, np.asarray(end, bool)


def _parse_header_value(path, line: str, key: str, line_no: int) -> str:
    head, sep, value = line.partition(":")
    if not sep or head.strip().lower() != key.lower():
        raise _fail(path, f"line {line_no}: expected '{key}: …', found '{line.strip()[:60]}'")
    return value.strip()


def read_bvh(path: str | os.PathLike, max_frames: int | None = None) -> Bvh:
    """Read a BVH file (LF or CRLF line endings).

    max_frames: read only the first frames (fast checks on long clips); None reads all.
    Raises :class:`BvhError` naming the file on malformed input, FileNotFoundError if absent.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    motion_at = next((i for i, l in enumerate(lines) if l.strip().upper() == "MOTION"), None)
    if motion_at is None:
        raise _fail(path, "no MOTION section; is this a BVH file?")
    tokens = _Tokens(path, lines[:motion_at])
    names, parents, offsets, channels, end = _parse_hierarchy(path, tokens)
    if tokens.pos != len(tokens.items):
        tok, line = tokens.items[tokens.pos]
        raise _fail(path, f"line {line}: unexpected '{tok}' after the hierarchy")

    # Header lines of the MOTION section (skipping blank lines).
    rest = iter(enumerate(lines[motion_at + 1:], start=motion_at + 2))
    header = []
    for n, line in rest:
        if line.strip():
            header.append((n, line))
            if len(header) == 2:
                break
    if len(header) < 2:
        raise _fail(path, "the MOTION section lacks 'Frames:' and 'Frame Time:' lines")
    try:
        n_frames = int(_parse_header_value(path, header[0][1], "Frames", header[0][0]))
        frame_time = float(_parse_header_value(path, header[1][1], "Frame Time", header[1][0]))
    except ValueError as e:
        if isinstance(e, BvhError):
            raise
        raise _fail(path, f"unreadable frame count or frame time: {e}") from None
    if n_frames < 1 or not frame_time > 0:
        raise _fail(path, f"Frames: {n_frames}, Frame Time: {frame_time}; both must be positive")

    n_channels = sum(len(c) for c in channels)
    wanted = n_frames if max_frames is None else min(n_frames, max(1, int(max_frames)))
    data = np.empty((wanted, n_channels), np.float64)
    got = 0
    for n, line in rest:
        if got == wanted:
            if max_frames is None and line.strip():
                raise _fail(path, f"line {n}: more motion lines than the {n_frames} frames declared")
            if max_frames is not None:
                break
            continue
        if not line.strip():
            continue
        values = line.split()
        if len(values) != n_channels:
            raise _fail(path, f"line {n}: {len(values)} values, expected {n_channels} (one per channel)")
        try:
            data[got] = [float(v) for v in values]
        except ValueError:
            raise _fail(path, f"line {n}: a motion value is not a number") from None
        got += 1
    if got < wanted:
        raise _fail(path, f"only {got} motion lines, but {n_frames} frames are declared")
    if not np.isfinite(data).all():
        raise _fail(path, "motion data contains NaN or infinite values")

    rot, trans = _channels_to_transforms(data, channels, offsets)
    return Bvh(path=str(path), names=names, parents=parents, offsets=offsets, channels=channels,
               end_site=end, rotations=rot, translations=trans, frame_time=frame_time,
               frames_declared=n_frames)


def _channels_to_transforms(data: np.ndarray, channels, offsets: np.ndarray):
    """(T, C) channel values → local rotations (T, J, 3, 3) and translations (T, J, 3)."""
    n = data.shape[0]
    n_joints = len(channels)
    rot = torch.eye(3, dtype=torch.float64).repeat(n, n_joints, 1, 1)
    trans = np.repeat(offsets[None], n, axis=0)
    values = torch.from_numpy(data)
    col = 0
    for j, chans in enumerate(channels):
        r = None
        for c in chans:
            key = c.lower()
            if key in _POSITION_CHANNELS:
                trans[:, j, _POSITION_CHANNELS[key]] = data[:, col]
            else:
                axis = torch.tensor(_AXES[_ROTATION_CHANNELS[key]], dtype=torch.float64)
                m = rotations.axis_angle_to_matrix(torch.deg2rad(values[:, col, None]) * axis)
                r = m if r is None else r @ m
            col += 1
        if r is not None:
            rot[:, j] = r
    return rot.numpy(), trans


# ---------------------------------------------------------------------------------------------
# Forward kinematics of the BVH skeleton


def world_rotations(local: np.ndarray | torch.Tensor, parents) -> torch.Tensor:
    """(..., J, 3, 3) local rotations → (..., J, 3, 3) world rotations along the tree."""
    local = torch.as_tensor(local)
    out: list[torch.Tensor] = []
    for j, p in enumerate(parents):
        out.append(local[..., j, :, :] if p < 0 else out[p] @ local[..., j, :, :])
    return torch.stack(out, dim=-3)


def forward_kinematics(bvh: Bvh, rotations_: np.ndarray | None = None,
                       translations: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions (T, J, 3) in file units and world rotations (T, J, 3, 3).

    rotations_ / translations default to the clip's own; pass others (e.g. a single rest frame,
    shapes (T', J, 3, 3) and (T', J, 3)) to pose the same skeleton differently.
    """
    rot = torch.as_tensor(bvh.rotations if rotations_ is None else rotations_, dtype=torch.float64)
    tr = bvh.translations if translations is None else translations
    # body.kinematics takes rest positions and derives each offset as a difference; cumulative
    # sums of the local translations give exactly those offsets back, frame by frame.
    chain = torch.as_tensor(offsets_to_positions(tr, bvh.parents), dtype=torch.float64)
    positions = kinematics.forward_kinematics(rot, chain, bvh.parents)
    return positions.numpy(), world_rotations(rot, bvh.parents).numpy()
