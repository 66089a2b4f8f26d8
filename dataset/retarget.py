"""Retarget CMU dance motion capture (BVH) onto the SMPL-X body (SPEC §3 motion format).

The CMU clips come in three skeleton variants (see the corpus README): MotionBuilder-style ("mb",
31 joints, CMU length units, frame 0 a T-pose), 3dsMax-style ("max", 31 joints, CMU units, rest =
arms down, no rest frame) and Daz/Poser-style ("daz", 43 joints, centimetres, frame 0 a zero
rest frame). All are y-up.

Method, per SMPL-X body joint j (22 of them):

1. A BVH joint (or the halfway slerp of two) drives j: its world rotation ``S(t)`` comes from the
   BVH's own forward kinematics.
2. A reference pose of the BVH skeleton (its T-pose/rest frame, or all rotations zero where the
   file has none; root rotation removed) gives ``S(ref)``. The motion of j since the reference is
   ``Q(t) = C S(t) S(ref)ᵀ Cᵀ``, with ``C`` the turn about y that makes the reference body face +z
   (measured from the hips, shoulders and toes, not assumed).
3. The reference and SMPL-X rest skeletons differ a little (spine curvature, leg splay, arms down in
   the 3dsMax rest). An alignment ``A_j`` (world frame) turns SMPL-X's rest bone directions onto the
   BVH reference bone directions: the shortest arc for one bone, or a frame fitted to two
   directions (pelvis, chest, hands). The SMPL-X world rotation is ``W_j(t) = Q(t) A_j``, so the
   BVH reference pose maps to (near-)identity rotations and every mapped bone points where the
   BVH bone points.
   Around the elbows and knees the second direction is the hinge axis: the BVH's, measured from
   the clip's own bending (the CMU rigs bend the elbow about an axis tilted 30° from SMPL-X's),
   is turned onto SMPL-X's anatomical one, so these joints bend as pure hinges on the mesh and
   the upper-arm/thigh twist follows from the hinge rather than from the rig's rest frame.
4. Local rotations follow from the SMPL-X parent chain: ``R_j = W_parent(j)ᵀ W_j``.

Hands get a fixed, gentle relaxed curl (CMU has no usable finger data). The root translation puts
SMPL-X's hip-joint midpoint where the BVH's is, scaled by the ratio of leg lengths (thigh + shin,
target/source) so a step of the legs moves the body as far as it moved the performer (no foot
skating), then shifted vertically once per clip so the feet stand on the floor (y = 0). Frames are
resampled to 30 fps (slerp / linear) after the BVH rest frame (and, in the Daz files, the blend-in
from it) is dropped.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from body import kinematics, rotations
from body.skeleton import FPS, JOINT_NAMES, MIRROR, MOTION_JOINTS, N_BODY_JOINTS, N_JOINTS, PARENTS
from motion import bvh as bvh_io
from motion.formats import Motion, resample

J = {name: i for i, name in enumerate(JOINT_NAMES)}
CMU_UNIT_M = 0.056444          # one CMU ASF length unit (1/0.45 inch) in metres
GROUND_PERCENTILE = 10         # frames whose lowest sole point is this low stand on the floor
_M = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))   # reflection x ↦ −x


class RetargetError(ValueError):
    """A BVH cannot be retargeted (unknown skeleton, unexpected axes). Names the file."""


# ---------------------------------------------------------------------------------------------
# The three CMU skeleton variants


@dataclass(frozen=True)
class Drive:
    """How one SMPL-X joint follows the BVH.

    joints: BVH joints whose world rotation drives it; two are blended halfway by slerp (one
        SMPL-X joint spanning two BVH segments, e.g. a two-bone neck).
    aims: bone directions matched between the rest skeletons, each ``(smplx_from, smplx_to,
        bvh_from, bvh_to)``; none: the joint keeps its parent's alignment (local identity at rest).
    """

    joints: tuple[str, ...]
    aims: tuple[tuple[str, str, str, str], ...] = ()


@dataclass(frozen=True)
class Variant:
    """A CMU BVH skeleton variant.

    drives: SMPL-X body joint name → :class:`Drive` (all 22 body joints).
    points: SMPL-X joint name → BVH joint at the same place, for the checks and leg lengths.
    rest_frame0: frame 0 is a rest (T-)pose, used as the reference; otherwise all-zero rotations.
    skip_frames: leading frames that are not motion (the rest frame, the blend-in after it).
    """

    code: str
    description: str
    unit_m: float
    rest_frame0: bool
    skip_frames: int
    drives: dict
    points: dict


def _sided(table: dict, smplx_side: str, bvh_side: str) -> dict:
    """Fill the placeholders of a one-sided table: '{s}' SMPL-X side ('left'), '{b}' / '{B}' the
    BVH side prefix as given / upper-cased ('l' / 'L'), '{Side}' 'Left' or 'Right'."""
    def fill(x):
        if isinstance(x, str):
            return x.format(s=smplx_side, b=bvh_side, B=bvh_side.upper(),
                            Side="Left" if smplx_side == "left" else "Right")
        if isinstance(x, Drive):
            return Drive(fill(x.joints), fill(x.aims))
        return tuple(fill(y) for y in x)
    return {fill(k): fill(v) for k, v in table.items()}


def _both_sides(table: dict, left: str, right: str) -> dict:
    return {**_sided(table, "left", left), **_sided(table, "right", right)}


def _drive(joints, *aims: str) -> Drive:
    """Drive from 'BvhJoint' or ('A', 'B') and aims written 'smplx_a>smplx_b = bvh_a>bvh_b'."""
    parsed = []
    for a in aims:
        lhs, rhs = (s.strip() for s in a.split("="))
        parsed.append((*lhs.split(">"), *rhs.split(">")))
    return Drive((joints,) if isinstance(joints, str) else tuple(joints), tuple(parsed))


_MB_LIMBS = {
    "{s}_hip": _drive("{Side}UpLeg", "{s}_hip>{s}_knee = {Side}UpLeg>{Side}Leg"),
    "{s}_knee": _drive("{Side}Leg", "{s}_knee>{s}_ankle = {Side}Leg>{Side}Foot"),
    "{s}_ankle": _drive("{Side}Foot", "{s}_ankle>{s}_foot = {Side}Foot>{Side}ToeBase"),
    "{s}_foot": _drive("{Side}ToeBase"),
    "{s}_collar": _drive("{Side}Shoulder", "{s}_collar>{s}_shoulder = {Side}Shoulder>{Side}Arm"),
    "{s}_shoulder": _drive("{Side}Arm", "{s}_shoulder>{s}_elbow = {Side}Arm>{Side}ForeArm"),
    "{s}_elbow": _drive("{Side}ForeArm", "{s}_elbow>{s}_wrist = {Side}ForeArm>{Side}Hand"),
    "{s}_wrist": _drive("{Side}FingerBase", "{s}_wrist>{s}_middle1 = {Side}FingerBase>{Side}HandIndex1",
                        "{s}_wrist>{s}_thumb1 = {Side}FingerBase>{b}Thumb_end"),
}
_MB_POINTS = {"{s}_hip": "{Side}UpLeg", "{s}_knee": "{Side}Leg", "{s}_ankle": "{Side}Foot",
              "{s}_foot": "{Side}ToeBase", "{s}_shoulder": "{Side}Arm", "{s}_elbow": "{Side}ForeArm",
              "{s}_wrist": "{Side}Hand", "{s}_middle1": "{Side}HandIndex1"}

MB = Variant(
    code="mb", description="cgspeed MotionBuilder-friendly (CMU units, frame 0 T-pose)",
    unit_m=CMU_UNIT_M, rest_frame0=True, skip_frames=1,
    drives={
        "pelvis": _drive("Hips", "right_hip>left_hip = RightUpLeg>LeftUpLeg", "pelvis>spine3 = Hips>Spine1"),
        "spine1": _drive("LowerBack", "spine1>spine2 = LowerBack>Spine"),
        "spine2": _drive("Spine", "spine2>spine3 = Spine>Spine1"),
        "spine3": _drive("Spine1", "spine3>neck = Spine1>Neck1", "right_shoulder>left_shoulder = RightArm>LeftArm"),
        "neck": _drive(("Neck", "Neck1"), "neck>head = Neck>Head"),
        "head": _drive("Head"),
        **_both_sides(_MB_LIMBS, "L", "R"),
    },
    points={"neck": "Neck", "head": "Head", **_both_sides(_MB_POINTS, "L", "R")},
)

_MAX_LIMBS = {
    "{s}_hip": _drive("{Side}Hip", "{s}_hip>{s}_knee = {Side}Hip>{Side}Knee"),
    "{s}_knee": _drive("{Side}Knee", "{s}_knee>{s}_ankle = {Side}Knee>{Side}Ankle"),
    "{s}_ankle": _drive("{Side}Ankle", "{s}_ankle>{s}_foot = {Side}Ankle>{Side}Toe"),
    "{s}_foot": _drive("{Side}Toe"),
    "{s}_collar": _drive("{Side}Collar", "{s}_collar>{s}_shoulder = {Side}Collar>{Side}Shoulder"),
    "{s}_shoulder": _drive("{Side}Shoulder", "{s}_shoulder>{s}_elbow = {Side}Shoulder>{Side}Elbow"),
    "{s}_elbow": _drive("{Side}Elbow", "{s}_elbow>{s}_wrist = {Side}Elbow>{Side}Wrist"),
    "{s}_wrist": _drive("{b}hand", "{s}_wrist>{s}_middle1 = {b}hand>{B}Fingers",
                        "{s}_wrist>{s}_thumb1 = {b}hand>{B}Thumb_end"),
}
_MAX_POINTS = {"{s}_hip": "{Side}Hip", "{s}_knee": "{Side}Knee", "{s}_ankle": "{Side}Ankle",
               "{s}_foot": "{Side}Toe", "{s}_shoulder": "{Side}Shoulder", "{s}_elbow": "{Side}Elbow",
               "{s}_wrist": "{Side}Wrist", "{s}_middle1": "{B}Fingers"}

MAX = Variant(
    code="max", description="cgspeed 3dsMax-friendly (CMU units, rest with arms down, no rest frame)",
    unit_m=CMU_UNIT_M, rest_frame0=False, skip_frames=0,
    drives={
        "pelvis": _drive("Hips", "right_hip>left_hip = RightHip>LeftHip", "pelvis>spine3 = Hips>Chest2"),
        "spine1": _drive("lowerback", "spine1>spine2 = lowerback>Chest"),
        "spine2": _drive("Chest", "spine2>spine3 = Chest>Chest2"),
        "spine3": _drive("Chest2", "spine3>neck = Chest2>Neck",
                         "right_shoulder>left_shoulder = RightShoulder>LeftShoulder"),
        "neck": _drive(("lowerneck", "Neck"), "neck>head = lowerneck>Head"),
        "head": _drive("Head"),
        **_both_sides(_MAX_LIMBS, "l", "r"),
    },
    points={"neck": "lowerneck", "head": "Head", **_both_sides(_MAX_POINTS, "l", "r")},
)

_DAZ_LIMBS = {
    "{s}_hip": _drive("{b}Thigh", "{s}_hip>{s}_knee = {b}Thigh>{b}Shin"),
    "{s}_knee": _drive("{b}Shin", "{s}_knee>{s}_ankle = {b}Shin>{b}Foot"),
    "{s}_ankle": _drive("{b}Foot", "{s}_ankle>{s}_foot = {b}Foot>{b}Foot_end"),
    "{s}_foot": _drive("{b}Foot"),      # no toe joint: the toes stay in line with the foot
    "{s}_collar": _drive("{b}Collar", "{s}_collar>{s}_shoulder = {b}Collar>{b}Shldr"),
    "{s}_shoulder": _drive("{b}Shldr", "{s}_shoulder>{s}_elbow = {b}Shldr>{b}ForeArm"),
    "{s}_elbow": _drive("{b}ForeArm", "{s}_elbow>{s}_wrist = {b}ForeArm>{b}Hand"),
    "{s}_wrist": _drive("{b}Hand", "{s}_wrist>{s}_middle1 = {b}Hand>{b}Mid1",
                        "{s}_wrist>{s}_thumb1 = {b}Hand>{b}Thumb1"),
}
_DAZ_POINTS = {"{s}_hip": "{b}Thigh", "{s}_knee": "{b}Shin", "{s}_ankle": "{b}Foot",
               "{s}_foot": "{b}Foot_end", "{s}_shoulder": "{b}Shldr", "{s}_elbow": "{b}ForeArm",
               "{s}_wrist": "{b}Hand", "{s}_middle1": "{b}Mid1"}

DAZ = Variant(
    code="daz", description="cgspeed Daz-friendly (centimetres, fixed Daz figure, frame 0 rest)",
    # Every Daz file blends from the rest frame into the motion over frames 1-4 (25-50° jumps per
    # frame) and rings until frame 7: frames 0-7 are dropped.
    unit_m=0.01, rest_frame0=True, skip_frames=8,
    drives={
        "pelvis": _drive("hip", "right_hip>left_hip = rThigh>lThigh", "pelvis>spine3 = hip>chest"),
        "spine1": _drive("abdomen", "spine1>spine2 = abdomen>chest"),
        "spine2": _drive(("abdomen", "chest"), "spine2>spine3 = abdomen>neck"),
        "spine3": _drive("chest", "spine3>neck = chest>neck", "right_shoulder>left_shoulder = rShldr>lShldr"),
        "neck": _drive("neck", "neck>head = neck>head"),
        "head": _drive("head"),
        **_both_sides(_DAZ_LIMBS, "l", "r"),
    },
    points={"neck": "neck", "head": "head", **_both_sides(_DAZ_POINTS, "l", "r")},
)

VARIANTS = {v.code: v for v in (MB, MAX, DAZ)}

# Bones compared by :func:`bone_direction_errors`: (name, from, to); a '+' joins points to average.
CHECK_BONES = tuple(
    (f"{s}_{a}>{b}", f"{s}_{a}", f"{s}_{b}") for s in ("left", "right")
    for a, b in (("hip", "knee"), ("knee", "ankle"), ("ankle", "foot"), ("shoulder", "elbow"),
                 ("elbow", "wrist"), ("wrist", "middle1"))
) + (("neck>head", "neck", "head"),
     ("hips>neck", "left_hip+right_hip", "neck"),
     ("hip_line", "right_hip", "left_hip"),
     ("shoulder_line", "right_shoulder", "left_shoulder"))


def detect_variant(bvh: bvh_io.Bvh) -> Variant:
    """The variant whose joints the file has; RetargetError if none fits."""
    names = set(bvh.names)
    for v in VARIANTS.values():
        needed = {n for d in v.drives.values() for n in d.joints} | set(v.points.values())
        if needed <= names:
            return v
    raise RetargetError(f"{bvh.path}: skeleton matches none of the CMU variants "
                        f"({', '.join(VARIANTS)}); root '{bvh.names[0]}', {bvh.n_joints} joints")


# Files whose declared Frame Time is wrong: (file-name pattern, true frame time, why).
FRAME_TIME_OVERRIDES = (
    (re.compile(r"^6[01]_"), 1 / 60, "CMU subjects 60/61 (salsa) were captured at 60 fps; "
                                      "the cgspeed files declare 120 fps"),
)


def source_frame_time(path: str | os.PathLike, declared: float) -> float:
    """The true seconds per frame of a CMU file: the README's override where one applies, else
    the declared one, snapped to a whole frame rate when it is a rounded one (.0083333 → 1/120)."""
    name = Path(path).name
    for pattern, frame_time, _ in FRAME_TIME_OVERRIDES:
        if pattern.search(name):
            return frame_time
    fps = 1.0 / declared
    return 1.0 / round(fps) if abs(fps - round(fps)) < 1e-3 * fps else declared


# ---------------------------------------------------------------------------------------------
# The SMPL-X rest body


@dataclass
class RestBody:
    """The target body's rest (T-)pose, metres, y up, facing +z.

    joints: (55, 3) rest joints. floor_y: height of the soles (the floor) in the same frame.
    soles: (K, 3) points on the soles (heel and toe tip of each foot) at rest, each carried by
        the joint in ``sole_joints`` (K,) (ankle or foot); used to stand the body on the floor.
        Default: estimated from the joints (heel under the ankle, toe tip ahead of the foot joint).
    """

    joints: np.ndarray
    floor_y: float
    soles: np.ndarray | None = None
    sole_joints: tuple[int, ...] = ()

    def __post_init__(self):
        self.joints = np.asarray(self.joints, np.float64)
        if self.joints.shape != (N_JOINTS, 3):
            raise ValueError(f"rest joints must be ({N_JOINTS}, 3), got {self.joints.shape}")
        if self.soles is None:
            pts, carriers = [], []
            for side in ("left", "right"):
                ankle, foot = self.joints[J[f"{side}_ankle"]], self.joints[J[f"{side}_foot"]]
                pts += [[ankle[0], self.floor_y, ankle[2] - HEEL_BEHIND_ANKLE],
                        [foot[0], self.floor_y, foot[2] + TOES_AHEAD_OF_FOOT_JOINT]]
                carriers += [J[f"{side}_ankle"], J[f"{side}_foot"]]
            self.soles, self.sole_joints = np.array(pts), tuple(carriers)
        self.soles = np.asarray(self.soles, np.float64)

    @classmethod
    def from_model_file(cls, path: str | os.PathLike) -> "RestBody":
        """Rest joints ``J_regressor @ v_template`` of an SMPL-X-style .npz; floor = its lowest
        vertex; soles = the rearmost and foremost vertices near the floor under each foot."""
        try:
            with np.load(path, allow_pickle=False) as z:
                v = np.asarray(z["v_template"], np.float64)
                reg = np.asarray(z["J_regressor"], np.float64)
        except FileNotFoundError:
            raise
        except (KeyError, ValueError, OSError) as e:
            raise RetargetError(f"{path}: not an SMPL-X-style model file with v_template and "
                                f"J_regressor ({e})") from None
        joints, floor = reg @ v, float(v[:, 1].min())
        pts, carriers = [], []
        for side, sign in (("left", 1.0), ("right", -1.0)):
            near = v[(v[:, 1] < floor + SOLE_BAND) & (sign * v[:, 0] > 0)]
            if len(near) == 0:
                return cls(joints=joints, floor_y=floor)
            pts += [near[near[:, 2].argmin()], near[near[:, 2].argmax()]]
            carriers += [J[f"{side}_ankle"], J[f"{side}_foot"]]
        return cls(joints=joints, floor_y=floor, soles=np.array(pts), sole_joints=tuple(carriers))

    @property
    def leg_length(self) -> float:
        """Thigh + shin (hip → knee → ankle joint), mean of both sides, metres."""
        return _leg_length(self.joints, lambda name: J[name])

    @property
    def hip_height(self) -> float:
        """Height of the hip joints above the floor at rest (m)."""
        return float(self.joints[[J["left_hip"], J["right_hip"]], 1].mean() - self.floor_y)


# Sole points when only joints are known, and the band above the floor where a mesh's soles are.
HEEL_BEHIND_ANKLE = 0.05
TOES_AHEAD_OF_FOOT_JOINT = 0.06
SOLE_BAND = 0.01


def _leg_length(points: np.ndarray, index) -> float:
    """Mean over sides of |hip − knee| + |knee − ankle|; ``index`` maps SMPL-X names to rows."""
    return float(np.mean([np.linalg.norm(points[index(f"{s}_hip")] - points[index(f"{s}_knee")])
                          + np.linalg.norm(points[index(f"{s}_knee")] - points[index(f"{s}_ankle")])
                          for s in ("left", "right")]))


# ---------------------------------------------------------------------------------------------
# Small rotation helpers (numpy/torch float64 on top of body.rotations)


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    if n < 1e-9:
        raise ValueError("zero-length direction")
    return v / n


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frame (columns): primary exactly, secondary in the plane of the two."""
    e1 = _unit(primary)
    e2 = _unit(secondary - np.dot(secondary, e1) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=1)


def _align(smplx_dirs: list[np.ndarray], bvh_dirs: list[np.ndarray]) -> np.ndarray:
    """World rotation A with A·smplx_dir ≈ bvh_dir (exact for the first)."""
    if len(smplx_dirs) == 1:
        return rotations.rotation_between(_unit(smplx_dirs[0]), _unit(bvh_dirs[0]))
    return _frame(bvh_dirs[0], bvh_dirs[1]) @ _frame(smplx_dirs[0], smplx_dirs[1]).T


def _blend(mats: list[torch.Tensor]) -> torch.Tensor:
    """(..., 3, 3) world rotations of one or two joints → one (halfway slerp for two)."""
    if len(mats) == 1:
        return mats[0]
    q0, q1 = rotations.matrix_to_quaternion(mats[0]), rotations.matrix_to_quaternion(mats[1])
    return rotations.quaternion_to_matrix(rotations.quaternion_slerp(q0, q1, 0.5))


def _turn_about_y(forward: np.ndarray) -> np.ndarray:
    """Rotation about +y taking the horizontal part of ``forward`` onto +z."""
    angle = np.arctan2(forward[0], forward[2])   # heading of forward, measured from +z towards +x
    return rotations.axis_angle_to_matrix(_t([0.0, -angle, 0.0])).numpy()


# ---------------------------------------------------------------------------------------------
# Hands


def relaxed_hands(body: RestBody, curl: float = 1.0) -> torch.Tensor:
    """(30, 3, 3) local rotations of the 30 hand joints (left 15 then right 15): a gentle curl.

    Each finger bone bends towards the palm (−y in the T-pose: palms down) about the axis
    ``bone × palm_normal``, more at the base than the tip, less for the thumb; the right hand is
    the mirror image of the left. ``curl`` scales every angle (0 = flat hands).
    """
    degrees = {"index": (12, 14, 8), "middle": (15, 16, 9), "ring": (17, 18, 10),
               "pinky": (20, 20, 11), "thumb": (8, 10, 6)}
    palm_normal = np.array([0.0, -1.0, 0.0])
    left = []
    for finger in ("index", "middle", "pinky", "ring", "thumb"):
        chain = [J[f"left_{finger}{k}"] for k in (1, 2, 3)]
        for k, j in enumerate(chain):
            a, b = (chain[k], chain[k + 1]) if k < 2 else (chain[1], chain[2])
            bone = body.joints[b] - body.joints[a]
            axis = _unit(np.cross(_unit(bone), palm_normal))
            left.append(rotations.axis_angle_to_matrix(_t(axis * np.radians(degrees[finger][k] * curl))))
    left = torch.stack(left)
    right = _M @ left @ _M
    return torch.cat([left, right])


# ---------------------------------------------------------------------------------------------
# Retargeting


@dataclass
class Retargeted:
    """One retargeted clip.

    motion: the SMPL-X motion at ``motion.fps`` (30), without the BVH's leading non-motion frames.
    variant: the skeleton variant code; fps_in: the true source rate (after any override);
    frames_in: source frames used (skipped leading frames excluded); scale: factor from source to stored
    translation (leg-length ratio, times any target-leg-length rescaling);
    ground_shift: metres the body was raised (negative: lowered) to stand on the floor.
    """

    motion: Motion
    variant: str
    fps_in: float
    frames_in: int
    scale: float
    ground_shift: float
    notes: list[str] = field(default_factory=list)


class _Setup:
    """Everything about one BVH skeleton that does not change from frame to frame, and the
    motion of each SMPL-X body joint since the reference pose."""

    def __init__(self, bvh: bvh_io.Bvh, variant: Variant, body: RestBody):
        self.bvh, self.variant, self.body = bvh, variant, body
        self.idx = {n: i for i, n in enumerate(bvh.names)}
        # Reference pose: the rest frame (T-pose) or zero rotations; root unturned, at the origin.
        ref_rot = bvh.rotations[:1].copy() if variant.rest_frame0 else np.broadcast_to(
            np.eye(3), (1, len(bvh.names), 3, 3)).copy()
        ref_rot[:, 0] = np.eye(3)
        ref_tr = bvh.translations[:1].copy()
        ref_tr[:, 0] = 0.0
        pos, rot = bvh_io.forward_kinematics(bvh, ref_rot, ref_tr)
        self.ref_pos, self.ref_world = pos[0], rot[0]
        self.C = self._facing()
        self.ref_pos_c = self.ref_pos @ self.C.T
        self.hinge_axes: dict[str, np.ndarray] = {}

    def p(self, name: str) -> np.ndarray:
        return self.ref_pos[self.idx[name]]

    def _facing(self) -> np.ndarray:
        pts = self.variant.points
        left = (self.p(pts["left_hip"]) - self.p(pts["right_hip"])
                + self.p(pts["left_shoulder"]) - self.p(pts["right_shoulder"]))
        mid_hip = (self.p(pts["left_hip"]) + self.p(pts["right_hip"])) / 2
        up = _unit(self.p(pts["neck"]) - mid_hip)
        if up[1] < 0.8:
            raise RetargetError(f"{self.bvh.path}: the rest skeleton's spine points {up.round(2)}, "
                                "not up the y axis; only y-up BVH files are supported")
        forward = np.cross(left, up)
        forward[1] = 0.0
        toes = sum(self.p(pts[f"{s}_foot"]) - self.p(pts[f"{s}_ankle"]) for s in ("left", "right"))
        if np.dot(toes, forward) <= 0:
            raise RetargetError(f"{self.bvh.path}: toes point backwards relative to left × up; "
                                "the skeleton is mirrored or its left/right names are swapped")
        return _turn_about_y(_unit(forward))

    def motion_since_ref(self, world: torch.Tensor) -> torch.Tensor:
        """(T, Jb, 3, 3) BVH world rotations → (T, 22, 3, 3) ``Q_j(t) = C S_j(t) S_j(ref)ᵀ Cᵀ``."""
        C, ref_world = _t(self.C), _t(self.ref_world)
        Q = []
        for j in range(N_BODY_JOINTS):
            ids = [self.idx[n] for n in self.variant.drives[JOINT_NAMES[j]].joints]
            s_t = _blend([world[:, i] for i in ids])
            s_ref = _blend([ref_world[i] for i in ids])
            Q.append(C @ s_t @ s_ref.transpose(-1, -2) @ C.T)
        return torch.stack(Q, dim=1)

    def alignments(self, Q: torch.Tensor) -> list[torch.Tensor]:
        """Per SMPL-X body joint, the world rotation ``A_j`` from SMPL-X's rest bones to the BVH
        reference bones. Around a hinge (elbow, knee) the bone's twist is fixed by the hinge axis:
        the BVH's, measured from the clip's own bending, is turned onto SMPL-X's anatomical one, so
        the elbow and knee stay pure hinges on the mesh."""
        rest, ref = self.body.joints, self.ref_pos_c
        hinge_pairs = {}
        for parent, child, flex in HINGES:
            axis = _hinge_axis(Q[:, J[parent]], Q[:, J[child]])
            if axis is None:
                continue
            self.hinge_axes[child] = axis
            bone = rest[J[child]] - rest[J[parent]]
            pair = (np.cross(_unit(bone), flex), axis)
            hinge_pairs[parent] = hinge_pairs[child] = pair
        out: list[torch.Tensor] = []
        for j in range(N_BODY_JOINTS):
            name = JOINT_NAMES[j]
            drive = self.variant.drives[name]
            if not drive.aims:
                out.append(out[PARENTS[j]])
                continue
            sx = [rest[J[to]] - rest[J[fr]] for fr, to, _, _ in drive.aims]
            bv = [ref[self.idx[to]] - ref[self.idx[fr]] for _, _, fr, to in drive.aims]
            if name in hinge_pairs:
                sx, bv = [sx[0], hinge_pairs[name][0]], [bv[0], hinge_pairs[name][1]]
            out.append(_t(_align(sx, bv)))
        return out

    def leg_length(self) -> float:
        """Source thigh + shin in metres (bone lengths, so the rest pose's leg splay is irrelevant)."""
        pts = self.variant.points
        return _leg_length(self.ref_pos * self.variant.unit_m, lambda name: self.idx[pts[name]])


# Hinges whose axis fixes the twist of the bones on both sides: (parent, child, the direction the
# child bone moves when the hinge flexes from SMPL-X's T-pose).
HINGES = (("left_shoulder", "left_elbow", np.array([0.0, 0.0, 1.0])),
          ("right_shoulder", "right_elbow", np.array([0.0, 0.0, 1.0])),
          ("left_hip", "left_knee", np.array([0.0, 0.0, -1.0])),
          ("right_hip", "right_knee", np.array([0.0, 0.0, -1.0])))
HINGE_MIN_BEND = np.radians(15)     # frames bent at least this much measure the axis …
HINGE_MIN_FRAMES = 30               # … and at least this many of them are needed
HINGE_MIN_CONSISTENCY = 0.8         # |mean axis| over bent frames: 1 = one fixed axis


def _hinge_axis(q_parent: torch.Tensor, q_child: torch.Tensor) -> np.ndarray | None:
    """The axis (world frame at the reference pose) about which the child turns relative to the
    parent, oriented so that the clip's usual bend is positive; None when the clip bends it too
    little or about no consistent axis."""
    aa = rotations.matrix_to_axis_angle(q_parent.transpose(-1, -2) @ q_child).numpy()
    angle = np.linalg.norm(aa, axis=-1)
    bent = angle > HINGE_MIN_BEND
    if bent.sum() < HINGE_MIN_FRAMES:
        return None
    units = aa[bent] / angle[bent, None]
    # Flexion has one sign, so the bent frames' unit axes agree; their mean gives the axis.
    mean = units.mean(axis=0)
    if np.linalg.norm(mean) < HINGE_MIN_CONSISTENCY:
        return None
    return _unit(mean)


def retarget_frames(bvh: bvh_io.Bvh, body: RestBody, variant: Variant | None = None):
    """Retarget every frame of ``bvh`` (rest frame included, source rate) onto ``body``.

    Returns (rotmats (T, 52, 3, 3) float64 local rotations, trans (T, 3) metres, scale = target /
    source thigh + shin, setup).
    """
    variant = variant or detect_variant(bvh)
    setup = _Setup(bvh, variant, body)
    pos, world = bvh_io.forward_kinematics(bvh)
    pos = pos @ setup.C.T * variant.unit_m               # (T, Jb, 3) metres, facing-corrected
    Q = setup.motion_since_ref(_t(world))
    try:
        A = torch.stack(setup.alignments(Q))             # (22, 3, 3)
    except ValueError as e:   # a zero-length bone in either rest skeleton
        raise RetargetError(f"{bvh.path}: cannot align the rest skeletons ({e})") from None
    W = Q @ A                                            # (T, 22, 3, 3) SMPL-X world rotations
    local = W.clone()
    for j in range(1, N_BODY_JOINTS):
        local[:, j] = W[:, PARENTS[j]].transpose(-1, -2) @ W[:, j]
    hands = relaxed_hands(body).expand(len(bvh), -1, -1, -1)
    rotmats = torch.cat([local, hands], dim=1)

    # Root translation: SMPL-X's hip midpoint follows the BVH's, scaled by the ratio of leg
    # lengths, so a step of the source's legs is a step of the target's legs (no skating).
    scale = body.leg_length / setup.leg_length()
    pts = variant.points
    mid_src = (pos[:, setup.idx[pts["left_hip"]]] + pos[:, setup.idx[pts["right_hip"]]]) / 2
    rest = body.joints
    mid_rest = (rest[J["left_hip"]] + rest[J["right_hip"]]) / 2
    pelvis = mid_src * scale - (W[:, 0] @ _t(mid_rest - rest[0])).numpy()
    trans = pelvis - rest[0]      # FK puts the pelvis at rest[0] + trans
    # Feet on the floor (y = 0): the source floors and ankle heights differ between variants and
    # clips (the Daz files were retargeted onto a fixed figure), so one vertical shift per clip
    # puts the lowest sole point, in its lowest decile of frames, on the floor.
    soles = sole_heights(W, smplx_joints(rotmats[:, :N_BODY_JOINTS], trans, body), body).min(-1)
    motion_soles = soles[variant.skip_frames:] if len(soles) > variant.skip_frames else soles
    setup.ground_shift = float(-np.percentile(motion_soles, GROUND_PERCENTILE))
    trans[:, 1] += setup.ground_shift
    return rotmats, trans, scale, setup


def retarget_bvh(bvh: bvh_io.Bvh, body: RestBody, variant: Variant | None = None,
                 frame_time: float | None = None, skip_frames: int | None = None,
                 target_leg_length: float | None = None, fps: float = FPS) -> Retargeted:
    """Retarget one CMU BVH clip to SMPL-X at ``fps``.

    frame_time: true seconds per source frame (default: the README override for the salsa files,
        else the file's own). skip_frames: leading frames to drop (default: the variant's rest
        frame and blend-in). target_leg_length: the leg length (hip-joint height above the soles at
        rest, m) of the body the translation is meant for. The motion is fitted to ``body``; a
        different target scales the translation by ``target_leg_length / body.hip_height``, the
        inverse of what ``body.body_model.BodyModel`` does when it poses its own body with
        motion authored for the canonical leg length (pass ``CANONICAL_LEG_LENGTH`` for corpus
        files). Default: ``body``'s own, no rescaling.
    """
    variant = variant or detect_variant(bvh)
    notes = []
    if frame_time is None:
        frame_time = source_frame_time(bvh.path, bvh.frame_time)
        if abs(frame_time - bvh.frame_time) > 1e-3 * bvh.frame_time:
            notes.append(f"frame time {bvh.frame_time:g} s overridden to {frame_time:g} s")
    if skip_frames is None:
        skip_frames = variant.skip_frames
    rotmats, trans, scale, setup = retarget_frames(bvh, body, variant)
    if target_leg_length is not None:
        factor = target_leg_length / body.hip_height
        trans, scale = trans * factor, scale * factor
    rotmats, trans = rotmats[skip_frames:], trans[skip_frames:]
    if len(trans) == 0:
        raise RetargetError(f"{bvh.path}: no motion frames left after skipping the first {skip_frames}")
    poses = rotations.matrix_to_axis_angle(rotmats).numpy().astype(np.float32)
    motion = Motion(poses=poses, trans=trans.astype(np.float32), fps=1.0 / frame_time)
    return Retargeted(motion=resample(motion, fps), variant=variant.code, fps_in=1.0 / frame_time,
                      frames_in=len(trans), scale=scale, ground_shift=setup.ground_shift, notes=notes)


def retarget_file(path: str | os.PathLike, body: RestBody, **kw) -> Retargeted:
    """Read and retarget one BVH file (keywords as :func:`retarget_bvh`)."""
    return retarget_bvh(bvh_io.read_bvh(path), body, **kw)


# ---------------------------------------------------------------------------------------------
# Mirror augmentation


def _mirror_order() -> list[int]:
    """For each of the 52 motion joints, the index of its mirror partner among the 52."""
    position = {j: i for i, j in enumerate(MOTION_JOINTS)}
    return [position[MIRROR[j]] for j in MOTION_JOINTS]


MIRROR_52 = tuple(_mirror_order())


def mirror_rotations(rotmats: torch.Tensor) -> torch.Tensor:
    """(..., 52, 3, 3) local rotations → the left/right mirror image: swap the sides and
    reflect across the body's x = 0 plane (``R ↦ M R M``, ``M = diag(−1, 1, 1)``)."""
    m = _M.to(rotmats.dtype)
    return m @ rotmats[..., list(MIRROR_52), :, :] @ m


def mirror_motion(motion: Motion) -> Motion:
    """The mirror image of a motion: sides swapped, x ↦ −x for rotations and translation.
    Exact for a body whose rest pose is symmetric about x = 0 (pelvis at x = 0)."""
    mats = rotations.axis_angle_to_matrix(torch.from_numpy(np.asarray(motion.poses, np.float64)))
    poses = rotations.matrix_to_axis_angle(mirror_rotations(mats)).numpy().astype(np.float32)
    trans = np.asarray(motion.trans, np.float32).copy()
    trans[:, 0] *= -1
    contacts = None if motion.contacts is None else motion.contacts[:, [1, 0, 3, 2]]
    return Motion(poses=poses, trans=trans, fps=motion.fps, up_axis=motion.up_axis,
                  gender=motion.gender, betas=motion.betas, contacts=contacts)


# ---------------------------------------------------------------------------------------------
# Checks


def sole_heights(world: torch.Tensor, joints: np.ndarray, body: RestBody) -> np.ndarray:
    """(T, K) heights of the body's sole points, from the world rotations (T, ≥22, 3, 3) and
    positions (T, ≥22, 3) of the joints that carry them."""
    carriers = list(body.sole_joints)
    offsets = _t(body.soles - body.joints[carriers])                     # (K, 3) at rest
    moved = (world[:, carriers] @ offsets[..., None])[..., 0].numpy()   # (T, K, 3)
    return joints[:, carriers, 1] + moved[..., 1]


def smplx_joints(rotmats: torch.Tensor, trans, body: RestBody, joints=None) -> np.ndarray:
    """(T, 52 | 22, 3, 3) local rotations + (T, 3) translation → (T, 55 | 22, 3) joint positions
    in metres; ``joints`` selects some of them."""
    rotmats = rotmats.double() if torch.is_tensor(rotmats) else _t(rotmats)
    if rotmats.shape[-3] == N_BODY_JOINTS:
        out = kinematics.forward_kinematics(rotmats, _t(body.joints[:N_BODY_JOINTS]), PARENTS, _t(trans))
    else:
        full = kinematics.rotations_52_to_55(rotmats)
        out = kinematics.forward_kinematics(full, _t(body.joints), PARENTS, _t(trans))
    out = out.numpy()
    return out if joints is None else out[..., joints, :]


def bone_direction_errors(bvh: bvh_io.Bvh, body: RestBody, frames=None,
                          variant: Variant | None = None) -> dict[str, float]:
    """Mean angle (degrees) between each :data:`CHECK_BONES` bone of the retargeted SMPL-X body
    (its own FK) and the same bone of the BVH's FK (axis-converted), over ``frames`` (default:
    all motion frames)."""
    variant = variant or detect_variant(bvh)
    rotmats, trans, _, setup = retarget_frames(bvh, body, variant)
    if frames is None:
        frames = np.arange(min(variant.skip_frames, len(bvh) - 1), len(bvh))
    frames = np.asarray(frames)
    sx = smplx_joints(rotmats[frames], trans[frames], body)
    pos, _ = bvh_io.forward_kinematics(bvh)
    pos = pos[frames] @ setup.C.T

    def point(name: str, smplx: bool) -> np.ndarray:
        parts = name.split("+")
        if smplx:
            return np.mean([sx[:, J[n]] for n in parts], axis=0)
        return np.mean([pos[:, setup.idx[variant.points.get(n, n)]] for n in parts], axis=0)

    out = {}
    for bone, a, b in CHECK_BONES:
        u = point(b, True) - point(a, True)
        v = point(b, False) - point(a, False)
        cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
        out[bone] = float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean())
    return out
