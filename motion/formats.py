"""Reading and writing dance motion in the formats users bring (SPEC §3).

Everything is read into one in-memory form, :class:`Motion`: per frame the root translation and
the local axis-angle rotations of the 52 SMPL-H-ordered joints (22 body, 15 left hand, 15 right
hand). Formats:

==========================  ============================================================
FineDance ``.npy``          (T, 315) translation + 52 × 6-D, or (T, 319) with 4 foot contacts first
EDGE / AIST++ ``.pkl``      ``smpl_poses`` (T, 72 | 156) axis-angle, ``smpl_trans`` (T, 3)
                            (optional ``smpl_scaling``: AIST++ divides translation by it)
AMASS-style ``.npz``        ``poses`` (T, 156 | 165), ``trans`` (T, 3), optional ``betas``,
                            ``gender``, ``mocap_frame_rate`` / ``mocap_framerate``, ``up_axis``
==========================  ============================================================

Only ``.npy`` and ``.npz`` are written. Problems with a file raise :class:`MotionFormatError`
with the file name in the message.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from atomic import atomic_write
from body import rotations
from body.skeleton import (AXIS_ANGLE_DIM, FPS, MOTION_DIM, MOTION_DIM_315, MOTION_JOINTS, N_BODY_JOINTS,
                           N_CONTACTS, N_JOINTS, N_MOTION_JOINTS, TRANS_DIM)
from motion.layout import layout_of

MOTION_EXTENSIONS = (".npy", ".pkl", ".npz")
SMPL_POSE_DIM = 72          # SMPL: 24 joints; the first 22 are SMPL-X's body joints
SMPLX_POSE_DIM = N_JOINTS * 3  # 165


class MotionFormatError(ValueError):
    """A motion file cannot be read or has invalid content. The message names the file."""


@dataclass
class Motion:
    """A dance in SMPL-X's body frame.

    poses: (T, 52, 3) float32 local axis-angle rotations (joint 0 = global orientation).
    trans: (T, 3) float32 root translation in metres.
    fps: frames per second.
    up_axis: 'y' (SMPL-X native, FineDance) or 'z' (AMASS); see :func:`to_y_up`.
    betas: (n,) body shape, zeros for the neutral shape.
    contacts: (T, 4) foot contacts (left ankle, right ankle, left foot, right foot) or None.
    """

    poses: np.ndarray
    trans: np.ndarray
    fps: float = FPS
    up_axis: str = "y"
    gender: str = "neutral"
    betas: np.ndarray = field(default_factory=lambda: np.zeros(10, np.float32))
    contacts: np.ndarray | None = None

    def __len__(self) -> int:
        return self.poses.shape[0]

    @property
    def duration(self) -> float:
        return len(self) / self.fps

    def smplx_params(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for an ``smplx.SMPLX`` forward pass, each with batch T."""
        p = torch.from_numpy(np.ascontiguousarray(self.poses, np.float32))
        n = len(self)
        return {
            "global_orient": p[:, 0],
            "body_pose": p[:, 1:N_BODY_JOINTS].reshape(n, -1),
            "left_hand_pose": p[:, N_BODY_JOINTS:N_BODY_JOINTS + 15].reshape(n, -1),
            "right_hand_pose": p[:, N_BODY_JOINTS + 15:].reshape(n, -1),
            "transl": torch.from_numpy(np.ascontiguousarray(self.trans, np.float32)),
        }

    def slice(self, start: int, stop: int) -> "Motion":
        c = None if self.contacts is None else self.contacts[start:stop]
        return replace(self, poses=self.poses[start:stop], trans=self.trans[start:stop], contacts=c)


# ---------------------------------------------------------------------------------------------
# The FineDance vectors


def motion_from_vector(vec: np.ndarray | torch.Tensor, fps: float = FPS) -> Motion:
    """(T, 315) or (T, 319) FineDance vector → Motion."""
    v = vec.detach().cpu().float() if torch.is_tensor(vec) else torch.from_numpy(np.asarray(vec, np.float32))
    layout = layout_of(v)
    contacts = v[:, layout.contacts].numpy().copy() if layout.n_contacts else None
    poses = rotations.rotation_6d_to_axis_angle(layout.rot6d(v))
    return Motion(poses=poses.numpy().astype(np.float32), trans=v[:, layout.translation].numpy().astype(np.float32),
                  fps=fps, contacts=contacts)


def motion_to_vector(motion: Motion, with_contacts: bool | None = None) -> np.ndarray:
    """Motion → (T, 319) when it has contacts (or ``with_contacts``), else (T, 315), float32.

    Missing contacts requested with ``with_contacts=True`` are written as zeros.
    """
    rot6d = rotations.axis_angle_to_rotation_6d(torch.from_numpy(np.asarray(motion.poses, np.float32)))
    parts = [np.asarray(motion.trans, np.float32), rot6d.reshape(len(motion), -1).numpy()]
    if with_contacts is None:
        with_contacts = motion.contacts is not None
    if with_contacts:
        c = motion.contacts if motion.contacts is not None else np.zeros((len(motion), N_CONTACTS))
        parts.insert(0, np.asarray(c, np.float32))
    return np.concatenate(parts, axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Reading


def _fail(path, problem: str) -> MotionFormatError:
    return MotionFormatError(f"{path}: {problem}")


def _check_array(path, name: str, arr, ndim: int) -> np.ndarray:
    try:
        a = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(path, f"'{name}' is not a numeric array") from None
    if a.ndim != ndim:
        raise _fail(path, f"'{name}' has shape {a.shape}, expected {ndim} dimensions")
    if a.shape[0] == 0:
        raise _fail(path, f"'{name}' has no frames")
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=tuple(range(1, a.ndim))).sum()) if a.ndim > 1 else 1
        raise _fail(path, f"'{name}' contains NaN or infinite values ({bad} frames)")
    return a


def _poses_from_flat(path, poses: np.ndarray) -> np.ndarray:
    """(T, 72 | 156 | 165) axis-angle → (T, 52, 3)."""
    n, d = poses.shape
    if d == AXIS_ANGLE_DIM:
        return poses.reshape(n, N_MOTION_JOINTS, 3)
    if d == SMPLX_POSE_DIM:
        return poses.reshape(n, N_JOINTS, 3)[:, list(MOTION_JOINTS)]
    if d == SMPL_POSE_DIM:  # SMPL: keep the 22 body joints; hands rest flat
        out = np.zeros((n, N_MOTION_JOINTS, 3))
        out[:, :N_BODY_JOINTS] = poses.reshape(n, 24, 3)[:, :N_BODY_JOINTS]
        return out
    raise _fail(path, f"poses have {d} values per frame; expected {SMPL_POSE_DIM} (SMPL), "
                      f"{AXIS_ANGLE_DIM} (SMPL-H) or {SMPLX_POSE_DIM} (SMPL-X)")


def _read_npy(path: Path) -> Motion:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for corrupt files
        raise _fail(path, f"not a readable .npy array ({e.__class__.__name__}: {e})") from None
    a = _check_array(path, "array", arr, 2)
    if a.shape[1] not in (MOTION_DIM_315, MOTION_DIM):
        raise _fail(path, f"shape {a.shape}: a FineDance motion is (T, {MOTION_DIM_315}) or (T, {MOTION_DIM})")
    return motion_from_vector(a.astype(np.float32))


def _read_pkl(path: Path) -> Motion:
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception as e:
        raise _fail(path, f"not a readable pickle ({e.__class__.__name__}: {e})") from None
    if not isinstance(data, dict) or "smpl_poses" not in data or "smpl_trans" not in data:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise _fail(path, f"expected a dict with 'smpl_poses' and 'smpl_trans', found {keys}")
    poses = _check_array(path, "smpl_poses", data["smpl_poses"], 2)
    trans = _check_array(path, "smpl_trans", data["smpl_trans"], 2)
    if "smpl_scaling" in data:
        scale = _check_array(path, "smpl_scaling", np.ravel(data["smpl_scaling"]), 1)
        if np.any(scale <= 0):
            raise _fail(path, "'smpl_scaling' must be positive")
        trans = trans / scale[0]
    return _assemble(path, _poses_from_flat(path, poses), trans, fps=FPS)


def _read_npz(path: Path) -> Motion:
    try:
        data = np.load(path, allow_pickle=False)
        keys = set(data.files)
    except Exception as e:
        raise _fail(path, f"not a readable .npz archive ({e.__class__.__name__}: {e})") from None
    if "poses" not in keys or "trans" not in keys:
        raise _fail(path, f"expected AMASS-style keys 'poses' and 'trans', found {sorted(keys)}")
    poses = _check_array(path, "poses", data["poses"], 2)
    trans = _check_array(path, "trans", data["trans"], 2)
    fps = FPS
    for key in ("mocap_frame_rate", "mocap_framerate"):
        if key in keys:
            fps = float(np.ravel(data[key])[0])
    if not fps > 0:
        raise _fail(path, f"frame rate {fps} is not positive")
    betas = np.asarray(data["betas"], np.float32).ravel() if "betas" in keys else np.zeros(10, np.float32)
    gender = str(np.asarray(data["gender"]).item()) if "gender" in keys else "neutral"
    up = str(np.asarray(data["up_axis"]).item()).lower() if "up_axis" in keys else "z"
    if up not in ("y", "z"):
        raise _fail(path, f"up_axis '{up}' is not 'y' or 'z'")
    return _assemble(path, _poses_from_flat(path, poses), trans, fps=fps, up_axis=up,
                     betas=betas, gender=gender)


def _assemble(path, poses: np.ndarray, trans: np.ndarray, **kw) -> Motion:
    if trans.shape[1] != TRANS_DIM:
        raise _fail(path, f"translation has shape {trans.shape}, expected (T, 3)")
    if len(trans) != len(poses):
        raise _fail(path, f"{len(poses)} frames of poses but {len(trans)} of translation")
    return Motion(poses=poses.astype(np.float32), trans=trans.astype(np.float32), **kw)


_READERS = {".npy": _read_npy, ".pkl": _read_pkl, ".npz": _read_npz}


def load_motion(path: str | os.PathLike) -> Motion:
    """Read any supported motion file. Raises MotionFormatError naming the file."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _READERS:
        raise _fail(path, f"unknown motion format '{ext}'; supported: {', '.join(MOTION_EXTENSIONS)}")
    if not path.is_file():
        raise _fail(path, "no such file")
    if path.stat().st_size == 0:
        raise _fail(path, "file is empty")
    return _READERS[ext](path)


# ---------------------------------------------------------------------------------------------
# Writing (atomic: a temporary file in the same folder, then a rename; see atomic.py)


def save_finedance_npy(motion: Motion, path: str | os.PathLike, with_contacts: bool | None = None) -> Path:
    """Write (T, 319) (with contacts) or (T, 315) float32, in y-up, at 30 fps."""
    m = resample(to_y_up(motion), FPS)
    vec = motion_to_vector(m, with_contacts)
    return atomic_write(Path(path), lambda f: np.save(f, vec))


def save_amass_npz(motion: Motion, path: str | os.PathLike, up_axis: str | None = None,
                   pelvis_rest: np.ndarray | None = None) -> Path:
    """Write an AMASS-style archive with SMPL-X poses (T, 165); jaw and eyes zero.

    Keys: poses, trans, betas, gender, mocap_frame_rate, up_axis, surface_model_type ('smplx').
    up_axis: 'y' or 'z' to write in that frame (z is AMASS's own, and what the SMPL-X Blender
    add-on's default "AMASS" format expects); None keeps the motion's. ``pelvis_rest`` (3,): the
    body's rest pelvis joint, for an exact change of frame (see :func:`to_y_up`).
    """
    if up_axis is not None and up_axis != motion.up_axis:
        if up_axis not in ("y", "z"):
            raise MotionFormatError(f"{path}: up_axis '{up_axis}' is not 'y' or 'z'")
        motion = to_y_up(motion, pelvis_rest) if up_axis == "y" else to_z_up(motion, pelvis_rest)
    n = len(motion)
    full = np.zeros((n, N_JOINTS, 3), np.float32)
    full[:, list(MOTION_JOINTS)] = motion.poses
    arrays = dict(poses=full.reshape(n, -1), trans=np.asarray(motion.trans, np.float32),
                  betas=np.asarray(motion.betas, np.float32), gender=np.array(motion.gender),
                  mocap_frame_rate=np.array(float(motion.fps)), up_axis=np.array(motion.up_axis),
                  surface_model_type=np.array("smplx"))
    return atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays))


def save_motion(motion: Motion, path: str | os.PathLike) -> Path:
    """Write by extension: .npy (FineDance) or .npz (AMASS-style)."""
    ext = Path(path).suffix.lower()
    if ext == ".npy":
        return save_finedance_npy(motion, path)
    if ext == ".npz":
        return save_amass_npz(motion, path)
    raise MotionFormatError(f"{path}: cannot write '{ext}'; choose .npy (FineDance) or .npz (AMASS-style)")


# ---------------------------------------------------------------------------------------------
# Conventions


# z-up → y-up: a −90° turn about x maps (x, y, z) to (x, z, −y).
_Z_TO_Y = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], np.float32)


def to_y_up(motion: Motion, pelvis_rest: np.ndarray | None = None) -> Motion:
    """Express a z-up motion in y-up. ``pelvis_rest`` (3,) is the body's rest pelvis joint:
    smplx rotates the body about it, so an exact change of frame moves the translation by
    ``C·p − p``; without it the result differs by that constant offset."""
    if motion.up_axis == "y":
        return motion
    c = torch.from_numpy(_Z_TO_Y)
    root = rotations.axis_angle_to_matrix(torch.from_numpy(motion.poses[:, 0]))
    poses = motion.poses.copy()
    poses[:, 0] = rotations.matrix_to_axis_angle(c @ root).numpy()
    trans = motion.trans @ _Z_TO_Y.T
    if pelvis_rest is not None:
        trans = trans + (_Z_TO_Y @ pelvis_rest - pelvis_rest)
    return replace(motion, poses=poses, trans=trans.astype(np.float32), up_axis="y")


def to_z_up(motion: Motion, pelvis_rest: np.ndarray | None = None) -> Motion:
    """The inverse of :func:`to_y_up`: express a y-up motion in z-up (AMASS's frame)."""
    if motion.up_axis == "z":
        return motion
    c = torch.from_numpy(_Z_TO_Y.T.copy())
    root = rotations.axis_angle_to_matrix(torch.from_numpy(motion.poses[:, 0]))
    poses = motion.poses.copy()
    poses[:, 0] = rotations.matrix_to_axis_angle(c @ root).numpy()
    trans = np.asarray(motion.trans, np.float32)
    if pelvis_rest is not None:
        trans = trans + (pelvis_rest - _Z_TO_Y @ pelvis_rest)
    trans = trans @ _Z_TO_Y
    return replace(motion, poses=poses, trans=trans.astype(np.float32), up_axis="z")


def resample(motion: Motion, fps: float = FPS) -> Motion:
    """Change the frame rate: slerp for rotations, linear for translation and contacts.

    The first frame is kept; the clip's duration is preserved to the nearest output frame.
    """
    if abs(motion.fps - fps) < 1e-6:
        return motion
    n_in = len(motion)
    n_out = max(1, int(round((n_in - 1) * fps / motion.fps)) + 1)
    src = np.arange(n_out) * motion.fps / fps
    src = np.clip(src, 0, n_in - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = (src - i0).astype(np.float32)
    q = rotations.axis_angle_to_quaternion(torch.from_numpy(motion.poses))
    wt = torch.from_numpy(w)[:, None].expand(-1, N_MOTION_JOINTS)
    poses = rotations.quaternion_to_axis_angle(rotations.quaternion_slerp(q[i0], q[i1], wt)).numpy()
    lerp = lambda a: (a[i0] * (1 - w[:, None]) + a[i1] * w[:, None]).astype(np.float32)
    contacts = None if motion.contacts is None else lerp(motion.contacts)
    return replace(motion, poses=poses.astype(np.float32), trans=lerp(motion.trans), fps=float(fps),
                   contacts=contacts)


def prepare_for_body(motion: Motion, body) -> Motion:
    """Bring a motion into a body's frame: y up, 30 fps, translation scaled to the body's legs.

    body: a :class:`body.body_model.BodyModel` (its ``rest_joints`` (55, 3) and ``translation_scale``).
    The result is what ``body.joints`` and ``body.vertices`` pose.
    """
    m = to_y_up(motion, body.rest_joints[0].numpy())
    m = resample(m, FPS)
    if body.translation_scale != 1.0:
        m = replace(m, trans=(m.trans * body.translation_scale).astype(np.float32))
    return m
