"""BVH reading and CMU → SMPL-X retargeting, on short real clips of each skeleton variant."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from body import rotations as R
from body.skeleton import JOINT_NAMES, MIRROR, MOTION_DIM_315, N_BODY_JOINTS, PARENTS
from dataset import retarget as rt
from motion.bvh import BvhError, forward_kinematics, read_bvh
from motion.formats import Motion
from tests.conftest import SHARED_DATA, needs_shared_data

REPO = Path(__file__).resolve().parents[1]
CMU = SHARED_DATA / "cmu_dance"
needs_cmu = needs_shared_data("cmu_dance")

# One real clip per skeleton variant: (file, variant, joints, end sites, channels).
CLIPS = [("05_02_modern.bvh", "mb", 31, 7, 96),
         ("94_01_indian.bvh", "max", 31, 7, 96),
         ("60_01_salsa.bvh", "daz", 43, 14, 132)]
N_FRAMES = 61   # about half a second at 120 fps: enough to exercise everything, fast to read
J = {n: i for i, n in enumerate(JOINT_NAMES)}


def synthetic_rest_body() -> rt.RestBody:
    """A plausible SMPL-X-layout T-pose (metres, y up, facing +z, +x = left, floor at y = 0),
    built from rough adult proportions; symmetric about x = 0."""
    pts = {"pelvis": (0, 0.95, 0), "spine1": (0, 1.06, -0.015), "spine2": (0, 1.19, -0.01),
           "spine3": (0, 1.25, 0.0), "neck": (0, 1.46, -0.02), "head": (0, 1.56, 0.0), "jaw": (0, 1.53, 0.04)}
    left = {"hip": (0.085, 0.90, -0.005), "knee": (0.10, 0.50, 0.005), "ankle": (0.11, 0.08, -0.035),
            "foot": (0.12, 0.02, 0.09), "collar": (0.075, 1.37, -0.01), "shoulder": (0.18, 1.40, -0.03),
            "elbow": (0.44, 1.39, -0.04), "wrist": (0.69, 1.39, -0.03), "eye": (0.032, 1.62, 0.08)}
    pts.update({f"left_{k}": v for k, v in left.items()})
    for finger, (x, z) in {"index": (0.785, 0.03), "middle": (0.795, 0.005), "ring": (0.79, -0.018),
                           "pinky": (0.775, -0.04)}.items():
        for k in range(3):
            pts[f"left_{finger}{k + 1}"] = (x + 0.035 * k, 1.385, z)
    for k, p in enumerate([(0.72, 1.375, 0.03), (0.75, 1.37, 0.055), (0.775, 1.365, 0.07)]):
        pts[f"left_thumb{k + 1}"] = p
    for name in [n for n in pts if n.startswith("left_")]:
        x, y, z = pts[name]
        pts["right_" + name[5:]] = (-x, y, z)
    return rt.RestBody(np.array([pts[n] for n in JOINT_NAMES], np.float64), floor_y=0.0)


@pytest.fixture(scope="module")
def body():
    return synthetic_rest_body()


@pytest.fixture(scope="module")
def clips():
    if not CMU.is_dir():
        pytest.skip(f"CMU dance corpus not found at {CMU}")
    return {variant: read_bvh(CMU / name, max_frames=N_FRAMES) for name, variant, *_ in CLIPS}


def angles_deg(mats: torch.Tensor) -> np.ndarray:
    return np.degrees(R.matrix_to_axis_angle(mats).norm(dim=-1).numpy())


# ---------------------------------------------------------------------------------------------
# The BVH reader


@needs_cmu
@pytest.mark.parametrize("name,variant,n_joints,n_ends,n_channels", CLIPS)
def test_reads_each_real_variant(clips, name, variant, n_joints, n_ends, n_channels):
    b = clips[variant]
    assert len(b) == N_FRAMES and b.frames_declared > N_FRAMES
    assert b.n_joints == n_joints and int(b.end_site.sum()) == n_ends
    assert sum(len(c) for c in b.channels) == n_channels
    assert abs(b.frame_time - 1 / 120) < 1e-6
    assert all(p < j for j, p in enumerate(b.parents))
    rot = b.rotations
    assert np.allclose(rot @ np.swapaxes(rot, -1, -2), np.eye(3), atol=1e-9)
    assert rt.detect_variant(b).code == variant
    # FK puts the head end site well above the feet in the rest skeleton.
    rest = b.rest_positions()
    assert rest[:, 1].max() - rest[:, 1].min() > 100 * (0.01 if variant == "daz" else rt.CMU_UNIT_M)


def _write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode())
    return path


TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 2 0 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 0 0 0 10 20 30
0 0 0 90 0 0 0 0 0
"""


def test_reader_crlf_rotation_order_and_fk(tmp_path):
    b = read_bvh(_write(tmp_path / "tiny.bvh", TINY, "\r\n"))
    assert b.names == ["Hips", "Arm", "Arm_end"] and b.parents == [-1, 0, 1]
    assert list(b.end_site) == [False, False, True] and b.frame_time == 0.5
    # "Zrotation Xrotation Yrotation" is R = Rz·Rx·Ry (intrinsic z, x, y).
    expected = Rotation.from_euler("ZXY", [10, 20, 30], degrees=True).as_matrix()
    np.testing.assert_allclose(b.rotations[0, 1], expected, atol=1e-12)
    pos, world = forward_kinematics(b)
    np.testing.assert_allclose(pos[0, 2], [1 + 1, 2, 3] + expected @ [2, 0, 0], atol=1e-12)
    # Frame 1: the root turns 90° about z, so the arm points along +y.
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [0, 1, 0], [0, 3, 0]], atol=1e-12)
    np.testing.assert_allclose(b.root_positions[0], [1, 2, 3])


@pytest.mark.parametrize("broken,message", [
    (TINY.replace("1 2 3 0 0 0 10 20 30", "1 2 3 0 0 0 10 20"), "8 values, expected 9"),
    (TINY.replace("Frames: 2", "Frames: 3"), "only 2 motion lines"),
    (TINY.replace("OFFSET 1 0 0", "OFFSET 1 x 0"), "expected a number"),
    (TINY.replace("MOTION", ""), "no MOTION section"),
    (TINY.replace("Xrotation Yrotation\n", "Xrotation Wrotation\n"), "unknown channel"),
])
def test_reader_errors_name_the_file(tmp_path, broken, message):
    path = _write(tmp_path / "broken.bvh", broken)
    with pytest.raises(BvhError, match=message) as err:
        read_bvh(path)
    assert "broken.bvh" in str(err.value)


def test_unknown_skeleton_is_refused(tmp_path, body):
    b = read_bvh(_write(tmp_path / "tiny.bvh", TINY))
    with pytest.raises(rt.RetargetError, match="none of the CMU variants"):
        rt.retarget_bvh(b, body)


# ---------------------------------------------------------------------------------------------
# Retargeting


@needs_cmu
@pytest.mark.parametrize("variant", ["mb", "daz"])
def test_rest_frame_maps_to_near_identity(clips, body, variant):
    rotmats, trans, _, _ = rt.retarget_frames(clips[variant], body)
    rest = angles_deg(rotmats[0, :N_BODY_JOINTS])
    report = dict(zip(JOINT_NAMES, rest.round(1)))
    # Pelvis, legs and spine: the two T-poses agree up to small bone-direction offsets.
    legs_spine = [J[n] for n in ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee",
                                 "spine1", "spine2", "spine3", "left_ankle", "right_ankle")]
    assert rest[legs_spine].max() < 15 and rest.mean() < 20, report
    # Arms: besides the collar slope, the only turn is the twist that puts SMPL-X's elbow crease
    # on the BVH's elbow hinge (30° in these rigs), so bones still point as at rest.
    assert rest.max() < 50, report
    joints = rt.smplx_joints(rotmats[:1], trans[:1], body)[0]
    bones = np.array([joints[j] - joints[p] for j, p in enumerate(PARENTS[:N_BODY_JOINTS]) if p >= 0])
    rest_bones = np.array([body.joints[j] - body.joints[p] for j, p in enumerate(PARENTS[:N_BODY_JOINTS]) if p >= 0])
    cos = (bones * rest_bones).sum(-1) / (np.linalg.norm(bones, axis=-1) * np.linalg.norm(rest_bones, axis=-1))
    swing = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    assert swing.mean() < 10 and swing.max() < 40, swing.round(1)   # the collars differ most
    for side, sign in (("left", 1), ("right", -1)):   # still a T-pose: arms out, level
        arm = joints[J[f"{side}_wrist"]] - joints[J[f"{side}_shoulder"]]
        assert sign * arm[0] > 0.45 and abs(arm[1]) < 0.1


@needs_cmu
@pytest.mark.parametrize("variant", ["mb", "max", "daz"])
def test_retargeted_body_stands_on_the_floor_in_metres(clips, body, variant):
    result = rt.retarget_bvh(clips[variant], body)
    m = result.motion
    assert m.fps == 30 and m.poses.shape[1:] == (52, 3)
    mats = R.axis_angle_to_matrix(torch.from_numpy(m.poses.astype(np.float64)))
    joints = rt.smplx_joints(mats, m.trans, body)
    pelvis_y, head_y = joints[:, J["pelvis"], 1], joints[:, J["head"], 1]
    feet_y = joints[:, [J["left_ankle"], J["right_ankle"], J["left_foot"], J["right_foot"]], 1]
    assert 0.75 < np.median(pelvis_y) < 1.1 and pelvis_y.max() < 1.1  # metres, not cm or CMU units
    assert (head_y - pelvis_y).min() > 0.4                             # upright, head up
    assert feet_y.min() > -0.03 and np.median(feet_y.min(axis=1)) < 0.08   # on the floor
    # The correction that grounds the feet is small: units and leg scaling are right.
    assert abs(result.ground_shift) < 0.1 and 0.85 < result.scale < 1.2
    # The body faces where the BVH body faces: SMPL-X's forward axis, turned by the root,
    # agrees with the BVH's hips-and-shoulders forward (in the converted frame).
    b = clips[variant]
    v = rt.detect_variant(b)
    pos, _ = forward_kinematics(b)
    bvh_joint = lambda key: pos[:, b.index(v.points[key])]
    left = bvh_joint("left_hip") - bvh_joint("right_hip") + bvh_joint("left_shoulder") - bvh_joint("right_shoulder")
    bvh_forward = np.cross(left, [0, 1, 0])
    smplx_forward = (R.axis_angle_to_matrix(torch.from_numpy(m.poses[:, 0].astype(np.float64))).numpy()
                     @ [0, 0, 1.0])
    step = round(result.fps_in / m.fps)
    f_bvh = bvh_forward[v.skip_frames:][::step]
    k = min(len(f_bvh), len(m))
    f_bvh, smplx_forward = f_bvh[:k], smplx_forward[:k]
    cos = (f_bvh[:, [0, 2]] * smplx_forward[:, [0, 2]]).sum(-1) / (
        np.linalg.norm(f_bvh[:, [0, 2]], axis=-1) * np.linalg.norm(smplx_forward[:, [0, 2]], axis=-1))
    assert cos.min() > 0.8


@needs_cmu
@pytest.mark.parametrize("variant", ["mb", "max", "daz"])
def test_bone_directions_agree_with_the_bvh(clips, body, variant):
    errors = rt.bone_direction_errors(clips[variant], body)
    limbs = [v for k, v in errors.items() if k.startswith(("left", "right"))]
    assert max(limbs) < 1.0, errors        # limbs follow their BVH bones exactly
    assert max(errors.values()) < 10, errors   # torso and neck approximately


@needs_cmu
def test_salsa_runs_at_60_fps_not_the_declared_120(clips, body):
    assert rt.source_frame_time("60_01_salsa.bvh", 1 / 120) == pytest.approx(1 / 60)
    assert rt.source_frame_time("61_15_salsa.bvh", 1 / 120) == pytest.approx(1 / 60)
    assert rt.source_frame_time("05_02_modern.bvh", 1 / 120) == pytest.approx(1 / 120)
    result = rt.retarget_bvh(clips["daz"], body)
    assert result.fps_in == pytest.approx(60) and result.notes
    # 53 motion frames (rest frame and blend-in dropped) at 60 fps span 52/60 s = 26 output frames
    # after the first; read at the declared 120 fps they would give 14.
    assert result.frames_in == N_FRAMES - 8 and len(result.motion) == 27


@needs_cmu
def test_daz_blend_in_from_the_rest_frame_is_dropped(clips, body):
    """Daz files ease from the rest frame into the motion over their first frames; kept, they
    would start the clip with a 60°+ jump."""
    def first_step(motion):
        m = R.axis_angle_to_matrix(torch.from_numpy(motion.poses[:2, :N_BODY_JOINTS].astype(np.float64)))
        return angles_deg(m[1].transpose(-1, -2) @ m[0]).max()
    b = clips["daz"]
    assert first_step(rt.retarget_bvh(b, body, skip_frames=1).motion) > 30
    assert first_step(rt.retarget_bvh(b, body).motion) < 10


@needs_cmu
def test_resampling_keeps_duration_and_picks_source_frames(clips, body):
    b = clips["mb"]
    result = rt.retarget_bvh(b, body)
    m = result.motion
    in_seconds = result.frames_in / result.fps_in
    assert result.fps_in == 120 and abs(len(m) / m.fps - in_seconds) <= 1 / m.fps
    # 120 → 30 fps: output frame k is source frame 4k (after the dropped rest frame).
    rotmats, trans, _, _ = rt.retarget_frames(b, body)
    src = rotmats[1:][::4]
    k = len(src)   # the last output frame may sit past the last source frame (then it repeats it)
    assert k >= len(m) - 1
    out = R.axis_angle_to_matrix(torch.from_numpy(m.poses[:k].astype(np.float64)))
    assert torch.allclose(out, src[:len(out)], atol=1e-5)
    np.testing.assert_allclose(m.trans[:k], trans[1:][::4][:len(out)], atol=1e-5)
    # A general ratio (120 → 50 fps) interpolates between frames and keeps the duration too.
    m50 = rt.retarget_bvh(b, body, fps=50).motion
    assert len(m50) == 26 and abs(len(m50) / 50 - in_seconds) <= 1 / 50 + 1e-9


def test_relaxed_hands_curl_gently_and_mirror(body):
    hands = rt.relaxed_hands(body)
    a = angles_deg(hands)
    assert hands.shape == (30, 3, 3) and 3 < a.mean() < 25 and a.max() < 30
    assert torch.allclose(rt.mirror_rotations(torch.cat([torch.eye(3).expand(22, 3, 3), hands])),
                          torch.cat([torch.eye(3).expand(22, 3, 3), hands]), atol=1e-12)
    # Fingers bend towards the palm (down, −y, in the T-pose).
    rot = torch.eye(3, dtype=torch.float64).expand(1, 52, 3, 3).clone()
    rot[0, N_BODY_JOINTS:] = hands
    curled = rt.smplx_joints(rot, np.zeros((1, 3)), body)[0]
    flat = body.joints
    for tip in ("left_index3", "right_middle3", "left_pinky3"):
        assert curled[J[tip], 1] < flat[J[tip], 1] - 0.01
    assert torch.allclose(rt.relaxed_hands(body, curl=0.0), torch.eye(3, dtype=torch.float64).expand(30, 3, 3))


def test_mirror_reflects_the_body_and_twice_is_identity(body):
    rng = np.random.default_rng(0)
    m = Motion(poses=(rng.normal(size=(8, 52, 3)) * 0.5).astype(np.float32),
               trans=rng.normal(size=(8, 3)).astype(np.float32))
    twice = rt.mirror_motion(rt.mirror_motion(m))
    a = R.axis_angle_to_matrix(torch.from_numpy(m.poses.astype(np.float64)))
    b = R.axis_angle_to_matrix(torch.from_numpy(twice.poses.astype(np.float64)))
    assert torch.allclose(a, b, atol=1e-5) and np.allclose(twice.trans, m.trans)
    # Once: every joint lands at the reflection (x ↦ −x) of its left/right partner.
    mirrored = rt.mirror_motion(m)
    j0 = rt.smplx_joints(a, m.trans, body)
    j1 = rt.smplx_joints(R.axis_angle_to_matrix(torch.from_numpy(mirrored.poses.astype(np.float64))),
                         mirrored.trans, body)
    expected = j0[:, list(MIRROR)] * [-1, 1, 1]
    np.testing.assert_allclose(j1, expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# The command-line converter


@needs_cmu
def test_cli_writes_finedance_arrays_and_manifest(tmp_path, body):
    src = tmp_path / "in"
    src.mkdir()
    # A short real clip of each skeleton naming, cut to keep the test fast.
    for name, *_ in CLIPS:
        lines = (CMU / name).read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip() == "MOTION")
        motion = [line for line in lines[at + 3:] if line.strip()][:N_FRAMES]
        header = lines[:at + 1] + [f"Frames: {len(motion)}", lines[at + 2]]
        (src / name).write_text("\n".join(header + motion) + "\n")
    # A minimal body file: its "vertices" are the joints themselves plus a sole point.
    v = np.concatenate([body.joints, [[0.0, body.floor_y, 0.0]]])
    reg = np.eye(len(body.joints), len(v))
    np.savez(tmp_path / "body.npz", v_template=v, J_regressor=reg)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(REPO / "data" / "code" / "retarget_cmu.py"), str(src),
                          "--out", str(out), "--body", str(tmp_path / "body.npz"), "--mirror"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = (out / "manifest.csv").read_text().splitlines()
    assert lines[0].startswith("file,source,variant,fps_in,fps_out,frames")
    assert len(lines) == 1 + 2 * len(CLIPS)
    salsa = next(line for line in lines if line.startswith("60_01_salsa.npy"))
    assert ",daz,60,30," in salsa
    arr = np.load(out / "05_02_modern.npy")
    assert arr.dtype == np.float32 and arr.shape == (16, MOTION_DIM_315)  # 60 frames at 120 → 30 fps
    # Rows of the 6-D rotations are unit vectors (first two rows of rotation matrices).
    rows = arr[:, 3:].reshape(len(arr), 52, 2, 3)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=-1), 1, atol=1e-5)
