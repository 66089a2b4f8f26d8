"""Kinetic (66-d) and geometric (32-d) features of a dance, the inputs of FID and diversity (SPEC §8).

Input everywhere: joints (T, 22, 3), metres, y up, the 22 SMPL-X body joints, T ≥ 3 frames.

Kinetic features (Onuma et al. 2008, as the dance-generation literature uses them), 3 per joint in
joint order ``[joint 0: horizontal, vertical, expenditure, joint 1: …]``:

- windowed velocity at frame i (i = 1 … T−1): the mean of the displacements x[k] − x[k−1] for
  k ∈ [i−2, i+2] ∩ [1, T−1], divided by the frame time dt;
- horizontal kinetic energy: mean over i of ‖v_i projected on the floor (x, z)‖² (m²/s²);
- vertical kinetic energy: mean over i of v_i,y² (m²/s²);
- energy expenditure: mean over i of ‖a_i‖, a_i the mean of the accelerations
  (x[k+1] − 2x[k] + x[k−1]) / dt² for k ∈ [i−2, i+2] ∩ [1, T−2] (m/s²).

No ½ and no mass: "energy" is the squared speed, as in the published features. The clean protocol
uses dt = 1/30 s; the reference protocol dt = 1/60 s and the published acceleration with its
operator-precedence bug, v1 = x[k] − x[k−1]/dt instead of (x[k] − x[k−1])/dt.

Geometric features (Müller et al. 2005, "Efficient content-based retrieval of motion capture data"):
32 boolean relations between body parts, evaluated at frames 1 … T−1 and averaged over frames (each
feature is the fraction of frames where the relation holds). The 32 relations and thresholds are the
ones of the public dance-metric scripts (table :data:`GEOMETRIC_FEATURES`), with their joint names
mapped onto SMPL-X (``root`` = pelvis, ``belly`` = spine1, ``chest`` = spine3, ``ltoes`` =
left_foot, …). Thresholds are multiples of the body's own humerus length ``hl`` (shoulder–elbow),
shoulder width ``sw`` and hip width ``hw``, measured on the rest joints of the body model in use
(not numbers copied from SMPL). Relation kinds (a, b, c, p joints or virtual points):

- ``plane``  p lies more than θ in front of the plane through a, b, c (normal (c−a)×(b−a));
- ``nplane`` p lies more than θ beyond the plane through c with normal b − a;
- ``move``   the velocity of c relative to a, projected on the direction b − a, exceeds θ
  (the published relation ignores its fourth joint; kept so for comparability);
- ``nmove``  the velocity of p relative to a, projected on the normal (c−a)×(b−a), exceeds θ;
- ``angle``  the angle between b − a and p − c lies strictly inside (lo, hi) degrees;
- ``fast``   the speed of a exceeds θ.

Virtual points: ``zero`` (origin), ``y_unit`` (0, 1, 0), ``minus_y_unit``, ``y_min`` (0, lowest
joint height of the frame, 0). Velocities use the frame time: 1/30 s in the clean protocol, the
scripts' 1/120 s in the reference protocol (which makes every velocity relation fire 4× as easily).
Degenerate geometry (a zero-length direction) makes a relation false, never NaN.
"""
from __future__ import annotations

import numpy as np

from body.skeleton import JOINT_NAMES, N_BODY_JOINTS

N_KINETIC = 3 * N_BODY_JOINTS   # 66
SLIDING_WINDOW = 2              # frames on each side for the windowed velocity and acceleration

# Short names of the public scripts → SMPL-X joint indices.
JOINTS = {"root": 0, "lhip": 1, "rhip": 2, "belly": 3, "lknee": 4, "rknee": 5, "spine": 6, "lankle": 7,
          "rankle": 8, "chest": 9, "ltoes": 10, "rtoes": 11, "neck": 12, "linshoulder": 13,
          "rinshoulder": 14, "head": 15, "lshoulder": 16, "rshoulder": 17, "lelbow": 18, "relbow": 19,
          "lwrist": 20, "rwrist": 21}
VIRTUAL = ("zero", "y_unit", "minus_y_unit", "y_min")
_INDEX = {**JOINTS, **{v: N_BODY_JOINTS + i for i, v in enumerate(VIRTUAL)}}
assert (JOINT_NAMES[JOINTS["lshoulder"]], JOINT_NAMES[JOINTS["rwrist"]], JOINT_NAMES[JOINTS["ltoes"]]) == (
    "left_shoulder", "right_wrist", "left_foot")

# (kind, joints, threshold): threshold is (multiple, 'hl' | 'sw' | 'hw') or an angle range (lo, hi).
GEOMETRIC_FEATURES = (
    ("nmove", ("neck", "rhip", "lhip", "rwrist"), (1.8, "hl")),
    ("nmove", ("neck", "lhip", "rhip", "lwrist"), (1.8, "hl")),
    ("nplane", ("chest", "neck", "neck", "rwrist"), (0.2, "hl")),
    ("nplane", ("chest", "neck", "neck", "lwrist"), (0.2, "hl")),
    ("move", ("belly", "chest", "chest", "rwrist"), (1.8, "hl")),
    ("move", ("belly", "chest", "chest", "lwrist"), (1.8, "hl")),
    ("angle", ("relbow", "rshoulder", "relbow", "rwrist"), (0, 110)),
    ("angle", ("lelbow", "lshoulder", "lelbow", "lwrist"), (0, 110)),
    ("nplane", ("lshoulder", "rshoulder", "lwrist", "rwrist"), (2.5, "sw")),
    ("move", ("lwrist", "rwrist", "rwrist", "lwrist"), (1.4, "hl")),
    ("move", ("rwrist", "root", "lwrist", "root"), (1.4, "hl")),
    ("move", ("lwrist", "root", "rwrist", "root"), (1.4, "hl")),
    ("fast", ("rwrist",), (2.5, "hl")),
    ("fast", ("lwrist",), (2.5, "hl")),
    ("plane", ("root", "lhip", "ltoes", "rankle"), (0.38, "hl")),
    ("plane", ("root", "rhip", "rtoes", "lankle"), (0.38, "hl")),
    ("nplane", ("zero", "y_unit", "y_min", "rankle"), (1.2, "hl")),
    ("nplane", ("zero", "y_unit", "y_min", "lankle"), (1.2, "hl")),
    ("nplane", ("lhip", "rhip", "lankle", "rankle"), (2.1, "hw")),
    ("angle", ("rknee", "rhip", "rknee", "rankle"), (0, 110)),
    ("angle", ("lknee", "lhip", "lknee", "lankle"), (0, 110)),
    ("fast", ("rankle",), (2.5, "hl")),
    ("fast", ("lankle",), (2.5, "hl")),
    ("angle", ("neck", "root", "rshoulder", "relbow"), (25, 180)),
    ("angle", ("neck", "root", "lshoulder", "lelbow"), (25, 180)),
    ("angle", ("neck", "root", "rhip", "rknee"), (50, 180)),
    ("angle", ("neck", "root", "lhip", "lknee"), (50, 180)),
    ("plane", ("rankle", "neck", "lankle", "root"), (0.5, "hl")),
    ("angle", ("neck", "root", "zero", "y_unit"), (70, 110)),
    ("nplane", ("zero", "minus_y_unit", "y_min", "rwrist"), (-1.2, "hl")),
    ("nplane", ("zero", "minus_y_unit", "y_min", "lwrist"), (-1.2, "hl")),
    ("fast", ("root",), (2.3, "hl")),
)
N_GEOMETRIC = len(GEOMETRIC_FEATURES)   # 32
assert N_GEOMETRIC == 32


def _check_joints(joints) -> np.ndarray:
    j = np.asarray(joints, np.float64)
    if j.ndim != 3 or j.shape[1] != N_BODY_JOINTS or j.shape[2] != 3:
        raise ValueError(f"joints must be (T, {N_BODY_JOINTS}, 3), got {j.shape}")
    if len(j) < 3:
        raise ValueError(f"features need at least 3 frames, got {len(j)}")
    return j


def _window_mean(values: np.ndarray, lo: int, hi: int, n_centres: int, window: int) -> np.ndarray:
    """Mean of ``values[k]`` (k = lo … hi, indexed as values[k - lo]) over k ∈ [i−w, i+w] ∩ [lo, hi]
    for every centre i = 1 … n_centres. values: (hi − lo + 1, ...). Returns (n_centres, ...)."""
    csum = np.concatenate([np.zeros_like(values[:1]), np.cumsum(values, axis=0)])
    centres = np.arange(1, n_centres + 1)
    start = np.clip(centres - window, lo, hi + 1) - lo
    stop = np.clip(centres + window, lo - 1, hi) - lo + 1
    count = np.maximum(stop - start, 1).reshape(-1, *([1] * (values.ndim - 1)))
    return (csum[stop] - csum[start]) / count


def kinetic_features(joints, frame_time: float = 1 / 30, acceleration_bug: bool = False,
                     window: int = SLIDING_WINDOW) -> np.ndarray:
    """(T, 22, 3) joints → (66,) float64: per joint [horizontal KE, vertical KE, energy expenditure]."""
    x = _check_joints(joints)
    t = len(x)
    dt = float(frame_time)
    disp = x[1:] - x[:-1]                                           # d[k], k = 1 … T−1
    v = _window_mean(disp, 1, t - 1, t - 1, window) / dt            # (T−1, J, 3), centres 1 … T−1
    horizontal = (v[..., 0] ** 2 + v[..., 2] ** 2).mean(axis=0)
    vertical = (v[..., 1] ** 2).mean(axis=0)
    if acceleration_bug:   # v1 = x[k] − x[k−1] / dt, as published
        acc = ((x[2:] - x[1:-1]) / dt - (x[1:-1] - x[:-2] / dt)) / dt
    else:
        acc = (x[2:] - 2 * x[1:-1] + x[:-2]) / dt ** 2               # a[k], k = 1 … T−2
    a = _window_mean(acc, 1, t - 2, t - 1, window)
    expenditure = np.linalg.norm(a, axis=-1).mean(axis=0)
    return np.stack([horizontal, vertical, expenditure], axis=1).reshape(-1)


def body_dimensions(rest_joints) -> dict[str, float]:
    """Humerus length, shoulder width and hip width (metres) of a body's (≥22, 3) rest joints."""
    r = np.asarray(rest_joints, np.float64)
    d = lambda a, b: float(np.linalg.norm(r[JOINTS[a]] - r[JOINTS[b]]))
    return {"hl": d("lshoulder", "lelbow"), "sw": d("lshoulder", "rshoulder"), "hw": d("lhip", "rhip")}


def _with_virtual(x: np.ndarray) -> np.ndarray:
    """(T, 22, 3) → (T, 26, 3) with the virtual points appended."""
    t = len(x)
    extra = np.zeros((t, len(VIRTUAL), 3))
    extra[:, 1, 1] = 1.0
    extra[:, 2, 1] = -1.0
    extra[:, 3, 1] = x[..., 1].min(axis=1)
    return np.concatenate([x, extra], axis=1)


def _project(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Signed length of each vector along its direction; NaN where the direction has no length."""
    norm = np.linalg.norm(direction, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 1e-12, (vectors * direction).sum(-1) / norm, np.nan)


def geometric_relations(joints, rest_joints, frame_time: float = 1 / 30) -> np.ndarray:
    """(T, 22, 3) joints → (T−1, 32) booleans: each relation at frames 1 … T−1."""
    x = _with_virtual(_check_joints(joints))
    dims = body_dimensions(rest_joints)
    cur, prev = x[1:], x[:-1]
    out = np.zeros((len(cur), N_GEOMETRIC), bool)
    with np.errstate(invalid="ignore"):
        for f, (kind, names, threshold) in enumerate(GEOMETRIC_FEATURES):
            idx = [_INDEX[n] for n in names]
            p = [cur[:, i] for i in idx]
            if kind == "angle":
                u, w = p[1] - p[0], p[3] - p[2]
                cos = (u * w).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1))
                angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
                out[:, f] = (angle > threshold[0]) & (angle < threshold[1])
                continue
            theta = threshold[0] * dims[threshold[1]]
            if kind == "plane":
                value = _project(p[3] - p[0], np.cross(p[2] - p[0], p[1] - p[0]))
            elif kind == "nplane":
                value = _project(p[3] - p[2], p[1] - p[0])
            elif kind == "move":
                q = [prev[:, i] for i in idx]
                velocity = ((p[2] - p[0]) - (q[2] - q[0])) / frame_time
                value = _project(velocity, p[1] - p[0])
            elif kind == "nmove":
                q = [prev[:, i] for i in idx]
                velocity = ((p[3] - p[0]) - (q[3] - q[0])) / frame_time
                value = _project(velocity, np.cross(p[2] - p[0], p[1] - p[0]))
            elif kind == "fast":
                value = np.linalg.norm(p[0] - prev[:, idx[0]], axis=-1) / frame_time
            else:  # pragma: no cover - the table above is fixed
                raise ValueError(kind)
            out[:, f] = value > theta          # NaN compares False
    return out


def geometric_features(joints, rest_joints, frame_time: float = 1 / 30) -> np.ndarray:
    """(T, 22, 3) joints → (32,) float64: the fraction of frames 1 … T−1 where each relation holds."""
    return geometric_relations(joints, rest_joints, frame_time).mean(axis=0).astype(np.float64)


def root_relative(joints) -> np.ndarray:
    """Joints minus the first frame's root position (all axes), as the public scripts prepare them."""
    j = np.asarray(joints, np.float64)
    return j - j[:1, :1, :]
