"""Writing motion as Biovision Hierarchy (BVH) for animation tools (Blender, Maya, MotionBuilder …).

The skeleton is the 52 joints of the motion formats (SMPL-X without jaw and eyes, names from
``body/skeleton.py``), with the rest pose of the body in use. Conventions of the files written:

- units: **centimetres** (the usual BVH unit; in Blender's importer set Scale to 0.01), y up,
  the body faces +z, 30 frames per second (``Frame Time: 0.0333333``);
- the root (pelvis) has ``OFFSET 0 0 0`` and 6 channels
  ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``: the position channels hold the
  pelvis joint's world position (smplx ``transl`` + the rest pelvis), so importers that add the
  OFFSET and importers that replace it agree;
- every other joint has ``OFFSET`` = its rest position minus its parent's and 3 channels
  ``Zrotation Xrotation Yrotation`` in degrees. As in every BVH reader, the local rotation is the
  product in the listed order, ``R = Rz · Rx · Ry`` (intrinsic z, then x, then y);
- leaf joints (head, feet, finger tips) end in an ``End Site`` that reaches the end of the body
  part (the skin vertex furthest along the last bone);
- angles are unwrapped over time (each frame picks, of the two equivalent Euler triples, the one
  nearest the previous frame), so keyframe interpolation in an editor does not spin.

Forward kinematics of the file equals the body's joint positions (``BodyModel.joints``).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from body import rotations
from body.kinematics import motion_joint_parents
from body.skeleton import FPS, JOINT_NAMES, MOTION_JOINTS

BVH_UNITS_PER_METRE = 100.0          # centimetres
ROTATION_ORDER = "ZXY"               # channel order of every joint's rotation
ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition") + tuple(f"{a}rotation" for a in ROTATION_ORDER)
JOINT_CHANNELS = tuple(f"{a}rotation" for a in ROTATION_ORDER)
_DECIMALS = 6


def matrix_to_euler_zxy(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices → (..., 3) angles (z, x, y) in radians with R = Rz · Rx · Ry.

    x lies in [−π/2, π/2]; at x = ±π/2 (gimbal lock) z and y are not separable and y is set to 0.
    """
    m = np.asarray(matrix, np.float64)
    # R = Rz Rx Ry has R[2,1] = sin x, R[0,1] = −sin z cos x, R[1,1] = cos z cos x,
    # R[2,0] = −cos x sin y, R[2,2] = cos x cos y.
    cos_x = np.hypot(m[..., 0, 1], m[..., 1, 1])
    x = np.arctan2(m[..., 2, 1], cos_x)
    locked = cos_x < 1e-7
    z = np.where(locked, np.arctan2(m[..., 1, 0], m[..., 0, 0]), np.arctan2(-m[..., 0, 1], m[..., 1, 1]))
    y = np.where(locked, 0.0, np.arctan2(-m[..., 2, 0], m[..., 2, 2]))
    return np.stack((z, x, y), axis=-1)


def euler_zxy_to_matrix(angles: np.ndarray) -> np.ndarray:
    """(..., 3) angles (z, x, y) in radians → (..., 3, 3), R = Rz · Rx · Ry."""
    a = torch.as_tensor(np.asarray(angles, np.float64))
    axes = torch.eye(3, dtype=torch.float64)
    rz, rx, ry = (rotations.axis_angle_to_matrix(a[..., i, None] * axes[k]) for i, k in ((0, 2), (1, 0), (2, 1)))
    return (rz @ rx @ ry).numpy()


def continuous_euler(angles: np.ndarray) -> np.ndarray:
    """(T, ..., 3) Euler triples (z, x, y) → the same rotations with angles continuous over time.

    (z, x, y) and (z + π, π − x, y + π) are the same rotation; per frame the one closer to the
    previous frame is kept, after adding the multiple of 2π to each angle that brings it nearest.
    """
    out = np.array(angles, np.float64, copy=True)
    alt = out + np.array([np.pi, 0.0, np.pi])
    alt[..., 1] = np.pi - out[..., 1]
    wrap = lambda a, ref: a - 2 * np.pi * np.round((a - ref) / (2 * np.pi))
    for t in range(1, len(out)):
        prev = out[t - 1]
        a, b = wrap(out[t], prev), wrap(alt[t], prev)
        closer_b = (np.abs(b - prev).sum(-1) < np.abs(a - prev).sum(-1))[..., None]
        out[t] = np.where(closer_b, b, a)
    return out


def end_site_offsets(rest_joints: np.ndarray, weights: np.ndarray, vertices: np.ndarray,
                     parents, joints) -> dict[int, np.ndarray]:
    """End Site offset (metres) for each leaf of a joint subset.

    rest_joints: (55, 3); weights: (V, 55) skin weights; vertices: (V, 3) rest mesh; parents: parent
    of each joint of ``joints`` (indices into that subset); joints: indices into the 55.
    For a leaf, the offset runs along its last bone to the vertex (of those it moves most) that
    reaches furthest that way; half the last bone when no vertex belongs to it.
    """
    owner = np.asarray(weights).argmax(1)
    has_child = {p for p in parents if p >= 0}
    out = {}
    for i, j in enumerate(joints):
        if i in has_child:
            continue
        bone = rest_joints[j] - rest_joints[joints[parents[i]]]
        direction = bone / max(np.linalg.norm(bone), 1e-9)
        reach = (vertices[owner == j] - rest_joints[j]) @ direction
        length = float(reach.max()) if reach.size and reach.max() > 0 else 0.5 * float(np.linalg.norm(bone))
        out[i] = direction * length
    return out


def _tidy(values: np.ndarray) -> np.ndarray:
    """Round to the written precision and turn −0 into 0, so files read cleanly."""
    return np.round(values, _DECIMALS) + 0.0


def write_bvh(path: str | os.PathLike, local_rotations: np.ndarray, root_positions: np.ndarray,
              rest_joints: np.ndarray, end_sites: dict[int, np.ndarray], fps: float = FPS) -> Path:
    """Write a BVH file for the 52 motion joints.

    local_rotations: (T, 52, 3, 3) local rotation matrices (joint 0 = global orientation);
    root_positions: (T, 3) pelvis joint world positions, metres; rest_joints: (52, 3) rest joint
    positions, metres; end_sites: {leaf index: (3,) offset in metres}. Returns the path.
    """
    from atomic import atomic_write

    names = [JOINT_NAMES[j] for j in MOTION_JOINTS]
    parents = motion_joint_parents()
    children = {i: [c for c, p in enumerate(parents) if p == i] for i in range(len(names))}
    scale = BVH_UNITS_PER_METRE
    fmt = lambda v: " ".join(f"{x:.{_DECIMALS}f}" for x in _tidy(np.asarray(v, np.float64) * scale))

    header, order = io.StringIO(), []

    def joint(i: int, depth: int) -> None:
        pad = "\t" * depth
        order.append(i)
        is_root = parents[i] < 0
        keyword, channels = ("ROOT", ROOT_CHANNELS) if is_root else ("JOINT", JOINT_CHANNELS)
        offset = np.zeros(3) if is_root else rest_joints[i] - rest_joints[parents[i]]
        header.write(f"{pad}{keyword} {names[i]}\n{pad}{{\n{pad}\tOFFSET {fmt(offset)}\n"
                     f"{pad}\tCHANNELS {len(channels)} {' '.join(channels)}\n")
        for c in children[i]:
            joint(c, depth + 1)
        if not children[i]:
            header.write(f"{pad}\tEnd Site\n{pad}\t{{\n{pad}\t\tOFFSET {fmt(end_sites[i])}\n{pad}\t}}\n")
        header.write(f"{pad}}}\n")

    header.write("HIERARCHY\n")
    joint(0, 0)
    n = len(local_rotations)
    header.write(f"MOTION\nFrames: {n}\nFrame Time: {1.0 / fps:.7f}\n")

    angles = np.rad2deg(continuous_euler(matrix_to_euler_zxy(local_rotations[:, order])))   # (T, 52, 3)
    columns = _tidy(np.concatenate((np.asarray(root_positions, np.float64) * scale, angles.reshape(n, -1)), axis=1))

    def write(f):
        f.write(header.getvalue().encode("ascii"))
        np.savetxt(f, columns, fmt=f"%.{_DECIMALS}f", delimiter=" ")

    return atomic_write(Path(path), write)
