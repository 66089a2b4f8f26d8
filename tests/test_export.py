"""Exports for animation tools: BVH, glTF binary and AMASS-style npz re-import to the same joints."""
import re

import numpy as np
import pygltflib
import pytest
import torch

import export
from body import rotations as R
from body.body_model import DEFAULT_BODY, BodyModel
from body.skeleton import FOOT_JOINTS, JOINT_NAMES, MOTION_JOINTS, N_JOINTS, N_MOTION_JOINTS, PARENTS
from motion import bvh as bvh_reader
from exporters.bvh import continuous_euler, euler_zxy_to_matrix, matrix_to_euler_zxy
from exporters import ExportError, export_motion, floor_lift, parse_formats
from motion.formats import Motion, load_motion, motion_from_vector, prepare_for_body, to_z_up

MM = 1e-3   # metres


@pytest.fixture(scope="module")
def body():
    return BodyModel(DEFAULT_BODY)


@pytest.fixture(scope="module")
def demo():
    """20 frames of the bundled dance."""
    return motion_from_vector(np.load("assets/motion/demo_dance.npy")[:20])


@pytest.fixture(scope="module")
def hard():
    """Moderate random poses with a knee through 90° (ZXY gimbal lock), a 180° body turn and a
    half-turn wrist, at 60 fps, to be resampled to 30."""
    n = 24
    rng = np.random.default_rng(3)
    poses = (rng.normal(size=(n, N_MOTION_JOINTS, 3)) * 0.35).astype(np.float32)
    poses[:, 4] = np.stack([np.linspace(0.2, 2.4, n), np.zeros(n), np.zeros(n)], 1)   # left knee about x
    poses[n // 2, 5] = [np.pi / 2, 0, 0]                                                # right knee exactly 90°
    poses[:, 0] = np.stack([np.zeros(n), np.linspace(0, 1.2 * np.pi, n), np.zeros(n)], 1)
    poses[:, 20] = [0, 0, np.pi * 0.999]
    trans = np.cumsum(rng.normal(size=(n, 3)) * 0.02, 0).astype(np.float32)
    return Motion(poses=poses, trans=trans, fps=60.0)


def reference_joints(body, motion, ground=True):
    """The joints an export of ``motion`` should hold: the body's, lifted onto the floor (``ground``,
    the exports' default) or in the body model's own frame."""
    prepared = prepare_for_body(motion, body)
    joints = body.joints(prepared).astype(np.float64)
    if ground:
        joints[..., 1] += floor_lift(prepared, body)
    return joints


# ---------------------------------------------------------------------------------------------
# Euler angles


def test_euler_zxy_inverts_and_matches_the_bvh_reader_convention():
    rng = np.random.default_rng(0)
    mats = R.axis_angle_to_matrix(torch.from_numpy(rng.normal(size=(500, 3)) * 1.5)).numpy()
    locks = euler_zxy_to_matrix(np.array([[0.3, np.pi / 2, -0.4], [-1.0, -np.pi / 2, 2.0], [0.5, np.pi / 2 - 1e-9, 0.2]]))
    mats = np.concatenate([mats, locks])
    back = euler_zxy_to_matrix(matrix_to_euler_zxy(mats))
    assert np.abs(back - mats).max() < 1e-9
    # euler_zxy_to_matrix is R = Rz·Rx·Ry, the product the BVH reader forms for "Zrotation Xrotation Yrotation".
    z, x, y = 0.3, -0.7, 1.1
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    assert np.allclose(euler_zxy_to_matrix(np.array([z, x, y])), rz @ rx @ ry)


def test_continuous_euler_has_no_jumps_through_gimbal_lock_and_full_turns():
    t = np.linspace(0, 1, 200)
    angles = np.stack([4 * np.pi * t, 1.4 * np.pi * t - 0.2, 0.5 * np.sin(6 * t)], 1)   # x passes ±90°
    mats = euler_zxy_to_matrix(angles)
    smooth = continuous_euler(matrix_to_euler_zxy(mats))
    assert np.abs(np.diff(smooth, axis=0)).max() < 0.2
    assert np.abs(euler_zxy_to_matrix(smooth) - mats).max() < 1e-9


# ---------------------------------------------------------------------------------------------
# BVH


def check_bvh_grammar(text: str):
    """Parse a BVH strictly by its grammar; returns (joints: [(name, n_channels)], end sites, frames).

    HIERARCHY ROOT name { OFFSET x y z CHANNELS 6 … (JOINT … | End Site { OFFSET x y z })+ }
    MOTION / Frames: N / Frame Time: t / N lines of Σ channels numbers."""
    head, motion = re.split(r"^MOTION\s*$", text, maxsplit=1, flags=re.M)
    tokens = head.split()
    pos = 0
    joints, end_sites = [], 0
    number = re.compile(r"^-?\d+\.\d+$")
    channel_names = {"Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation"}

    def take(expected=None):
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        assert expected is None or tok == expected, f"expected {expected!r}, found {tok!r} (token {pos})"
        return tok

    def offset():
        take("OFFSET")
        for _ in range(3):
            assert number.match(take())

    def block(kind):
        nonlocal end_sites
        name = take()
        take("{")
        offset()
        take("CHANNELS")
        n = int(take())
        assert n == (6 if kind == "ROOT" else 3)
        chans = [take() for _ in range(n)]
        assert set(chans) <= channel_names and len(set(chans)) == n
        joints.append((name, n))
        children = 0
        while tokens[pos] != "}":
            word = take()
            if word == "JOINT":
                block("JOINT")
            else:
                assert word == "End" and take() == "Site"
                take("{")
                offset()
                take("}")
                end_sites += 1
            children += 1
        take("}")
        assert children >= 1, f"{name} has neither children nor an End Site"

    take("HIERARCHY")
    take("ROOT")
    block("ROOT")
    assert pos == len(tokens)
    lines = [l for l in motion.strip().splitlines()]
    frames = int(re.fullmatch(r"Frames:\s*(\d+)", lines[0]).group(1))
    assert re.fullmatch(r"Frame Time:\s*0\.0333333", lines[1])
    rows = lines[2:]
    assert len(rows) == frames
    n_channels = sum(n for _, n in joints)
    assert all(len(r.split()) == n_channels for r in rows)
    return joints, end_sites, frames


@pytest.mark.parametrize("clip", ["demo", "hard"])
def test_bvh_round_trip_gives_the_same_joints(body, clip, request, tmp_path):
    motion = request.getfixturevalue(clip)
    path = export_motion(motion, tmp_path / "a.bvh", "bvh", body)
    ref = reference_joints(body, motion)
    clip_bvh = bvh_reader.read_bvh(path)
    assert clip_bvh.fps == pytest.approx(30, rel=1e-5) and len(clip_bvh) == len(ref)
    positions, _ = bvh_reader.forward_kinematics(clip_bvh)
    idx = [clip_bvh.index(JOINT_NAMES[j]) for j in MOTION_JOINTS]
    got = positions[:, idx] / 100.0                                      # centimetres → metres
    assert np.abs(got - ref[:, list(MOTION_JOINTS)]).max() < MM
    # Offsets are the body's rest skeleton.
    rest = clip_bvh.rest_positions()[idx] / 100.0
    expected = body.rest_joints.numpy()[list(MOTION_JOINTS)] - body.rest_joints.numpy()[0]
    assert np.abs(rest - expected).max() < 1e-6


def test_bvh_header_follows_the_grammar(body, demo, tmp_path):
    text = export_motion(demo, tmp_path / "a.bvh", "bvh", body).read_text()
    joints, end_sites, frames = check_bvh_grammar(text)
    assert [name for name, _ in joints][0] == "pelvis" and sorted(n for n, _ in joints) == sorted(
        JOINT_NAMES[j] for j in MOTION_JOINTS)
    assert end_sites == 13 and frames == 20           # head, 2 feet, 10 finger tips
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    # End sites reach beyond their joint, in the direction of the last bone (finger tips, toes, head top).
    clip = bvh_reader.read_bvh(tmp_path / "a.bvh")
    head_top = clip.offsets[clip.index("head_end")]
    assert 5 < head_top[1] < 30 and abs(head_top[0]) < 3


def test_exports_stand_on_the_floor_by_default_and_keep_the_body_frame_on_request(body, demo, tmp_path):
    plain = bvh_reader.read_bvh(export_motion(demo, tmp_path / "a.bvh", "bvh", body, ground=False))
    grounded = bvh_reader.read_bvh(export_motion(demo, tmp_path / "b.bvh", "bvh", body))
    shift = grounded.root_positions - plain.root_positions
    assert np.allclose(shift[:, [0, 2]], 0) and np.ptp(shift[:, 1]) < 1e-4 and abs(shift[0, 1]) > 10
    positions, _ = bvh_reader.forward_kinematics(grounded)
    feet = positions[:, [grounded.index(JOINT_NAMES[j]) for j in FOOT_JOINTS], 1] / 100.0
    soles = (feet - body.foot_joint_height).min(1)
    assert abs(np.percentile(soles, 5)) < 1e-3


# ---------------------------------------------------------------------------------------------
# AMASS-style npz


def test_npz_is_what_the_blender_addon_reads_and_round_trips(body, hard, tmp_path):
    path = export_motion(hard, tmp_path / "a.npz", "npz", body)
    z = np.load(path)
    for key in ("poses", "trans", "betas", "gender", "mocap_frame_rate"):   # the add-on's required keys
        assert key in z.files
    n = len(prepare_for_body(hard, body))
    assert z["poses"].shape == (n, 165) and z["trans"].shape == (n, 3)
    assert int(z["mocap_frame_rate"]) == 30 and str(z["gender"]) == "neutral"
    assert str(z["surface_model_type"]) == "smplx" and str(z["up_axis"]) == "z"
    # z up: the body stands along +z (AMASS), so the add-on's default "AMASS" format stands it up in Blender.
    back = load_motion(path)
    assert back.up_axis == "z"
    assert np.abs(reference_joints(body, back, ground=False) - reference_joints(body, hard, ground=False)).max() < MM


def test_to_z_up_inverts_to_y_up_exactly(demo):
    from motion.formats import to_y_up

    pelvis = np.array([0.01, -0.35, 0.02], np.float32)     # any pelvis: SMPL-X's sits off the origin
    there = to_z_up(demo, pelvis)
    back = to_y_up(there, pelvis)
    assert np.abs(back.trans - demo.trans).max() < 1e-5
    mats = lambda m: R.axis_angle_to_matrix(torch.from_numpy(m.poses))
    assert torch.allclose(mats(back), mats(demo), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# glTF binary


def accessor_array(gltf, blob, index):
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_INT: np.uint32,
             pygltflib.UNSIGNED_SHORT: np.uint16, pygltflib.UNSIGNED_BYTE: np.uint8}[acc.componentType]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    start = view.byteOffset + acc.byteOffset
    size = acc.count * width * np.dtype(dtype).itemsize
    assert acc.byteOffset + size <= view.byteLength and view.byteOffset + view.byteLength <= len(blob)
    assert start % np.dtype(dtype).itemsize == 0
    return np.frombuffer(blob[start:start + size], dtype).reshape(acc.count, width)


def quat_xyzw_to_matrix(q):
    return R.quaternion_to_matrix(torch.from_numpy(np.asarray(q, np.float64)[..., [3, 0, 1, 2]])).numpy()


def glb_joint_positions(gltf, blob):
    """(T, joints, 3) world positions of the skin's joints from node rest transforms and the animation."""
    skin = gltf.skins[0]
    anim = gltf.animations[0]
    n_nodes = len(gltf.nodes)
    parent = [-1] * n_nodes
    for i, node in enumerate(gltf.nodes):
        for c in node.children or []:
            parent[c] = i
    times = accessor_array(gltf, blob, anim.samplers[0].input)[:, 0]
    n = len(times)
    trans = np.array([np.tile(node.translation or [0, 0, 0], (n, 1)) for node in gltf.nodes], np.float64)
    rot = np.array([np.tile(node.rotation or [0, 0, 0, 1], (n, 1)) for node in gltf.nodes], np.float64)
    for ch in anim.channels:
        values = accessor_array(gltf, blob, anim.samplers[ch.sampler].output)
        (rot if ch.target.path == "rotation" else trans)[ch.target.node] = values
    rot_m = quat_xyzw_to_matrix(rot)                         # (nodes, T, 3, 3)
    world_r, world_t = [None] * n_nodes, [None] * n_nodes

    def world(i):
        if world_t[i] is None:
            if parent[i] < 0:
                world_r[i], world_t[i] = rot_m[i], trans[i]
            else:
                pr, pt = world(parent[i])
                world_r[i], world_t[i] = pr @ rot_m[i], pt + (pr @ trans[i][..., None])[..., 0]
        return world_r[i], world_t[i]

    return np.stack([world(j)[1] for j in skin.joints], 1), times


@pytest.fixture(scope="module")
def glb(body, hard, tmp_path_factory):
    path = export_motion(hard, tmp_path_factory.mktemp("glb") / "hard.glb", "glb", body)
    gltf = pygltflib.GLTF2().load(str(path))
    return gltf, gltf.binary_blob()


def test_glb_is_consistent(body, hard, glb):
    gltf, blob = glb
    assert gltf.asset.version == "2.0" and "Apache" in gltf.asset.copyright
    assert len(gltf.buffers) == 1 and gltf.buffers[0].byteLength == len(blob)
    for i in range(len(gltf.accessors)):
        accessor_array(gltf, blob, i)                     # every accessor lies inside its view and buffer
    prim = gltf.meshes[0].primitives[0]
    v = accessor_array(gltf, blob, prim.attributes.POSITION)
    pos_acc = gltf.accessors[prim.attributes.POSITION]
    assert np.allclose(pos_acc.min, v.min(0)) and np.allclose(pos_acc.max, v.max(0))
    assert len(v) == body.n_vertices
    normals = accessor_array(gltf, blob, prim.attributes.NORMAL)
    joints = accessor_array(gltf, blob, prim.attributes.JOINTS_0)
    weights = accessor_array(gltf, blob, prim.attributes.WEIGHTS_0)
    assert len(normals) == len(joints) == len(weights) == len(v)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    assert joints.max() < N_JOINTS and np.allclose(weights.sum(1), 1, atol=1e-6) and weights.min() >= 0
    faces = accessor_array(gltf, blob, prim.indices)
    assert len(faces) == 3 * len(body.faces) and faces.max() < len(v)
    # Skin: 55 joints named as SMPL-X, rest world transform × inverse bind matrix = identity.
    skin = gltf.skins[0]
    assert len(skin.joints) == N_JOINTS and [gltf.nodes[j].name for j in skin.joints] == list(JOINT_NAMES)
    assert [next((p for p, n in enumerate(gltf.nodes) if j in (n.children or [])), -1)
            for j in skin.joints] == list(PARENTS)
    ibm = accessor_array(gltf, blob, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    rest = body.rest_joints.numpy()
    assert np.allclose(ibm[:, :3, 3], -rest, atol=1e-6) and np.allclose(ibm[:, :3, :3], np.eye(3))
    # Animation: 30 fps keys over the whole clip, rotation for every joint, translation for the root.
    anim = gltf.animations[0]
    t = accessor_array(gltf, blob, anim.samplers[0].input)[:, 0]
    n = len(t)
    assert n == len(prepare_for_body(hard, body)) and np.allclose(np.diff(t), 1 / 30) and t[0] == 0
    assert gltf.accessors[anim.samplers[0].input].max[0] == pytest.approx((n - 1) / 30)   # n frames last n/30 s
    paths = sorted((c.target.node, c.target.path) for c in anim.channels)
    assert paths == sorted([(j, "rotation") for j in range(N_JOINTS)] + [(0, "translation")])
    assert all(s.interpolation == "LINEAR" for s in anim.samplers)
    for s in anim.samplers:
        assert gltf.accessors[s.output].count == n
    q = accessor_array(gltf, blob, anim.samplers[1].output)
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)


def test_glb_reimports_with_the_same_joints(body, hard, glb):
    gltf, blob = glb
    got, _ = glb_joint_positions(gltf, blob)
    assert np.abs(got - reference_joints(body, hard)).max() < MM


def test_glb_mesh_follows_the_body(body, demo, tmp_path):
    """Skinning the exported mesh (4 weights, no pose correctives) stays close to smplx's mesh."""
    gltf = pygltflib.GLTF2().load(str(export_motion(demo, tmp_path / "d.glb", "glb", body, ground=False)))
    blob = gltf.binary_blob()
    prim = gltf.meshes[0].primitives[0]
    v = accessor_array(gltf, blob, prim.attributes.POSITION).astype(np.float64)
    joints = accessor_array(gltf, blob, prim.attributes.JOINTS_0).astype(int)
    weights = accessor_array(gltf, blob, prim.attributes.WEIGHTS_0).astype(np.float64)
    frame = 10
    rot = R.axis_angle_to_matrix(torch.from_numpy(prepare_for_body(demo, body).poses[frame]).double()).numpy()
    from body.kinematics import rotations_52_to_55
    from motion.bvh import world_rotations
    world_r = world_rotations(rotations_52_to_55(torch.from_numpy(rot)), PARENTS).numpy()
    world_t = reference_joints(body, demo, ground=False)[frame]
    rest = body.rest_joints.numpy()
    per_joint = np.einsum("vjab,vjb->vja", world_r[joints], (v[:, None] - rest[joints])) + world_t[joints]
    skinned = (weights[..., None] * per_joint).sum(1)
    smplx_v = next(body.vertices(prepare_for_body(demo, body).slice(frame, frame + 1)))[0]
    err = np.linalg.norm(skinned - smplx_v, axis=1)
    assert np.median(err) < 1e-3 and err.max() < 0.03     # pose correctives and the 5th+ weights move ≤ 1 cm


# ---------------------------------------------------------------------------------------------
# Entry points


def test_parse_formats():
    assert parse_formats("glb, BVH,glb,.npz") == ["glb", "bvh", "npz"]
    with pytest.raises(ExportError, match="fbx"):
        parse_formats("bvh,fbx")


def test_export_cli_writes_beside_the_motion_and_protects_files(demo, tmp_path, capsys):
    from motion.formats import save_amass_npz

    src = save_amass_npz(demo, tmp_path / "clip.npz")
    assert export.main([str(src), "--format", "bvh,npz"]) == 0
    assert (tmp_path / "clip.bvh").is_file() and str(np.load(tmp_path / "clip_amass.npz")["up_axis"]) == "z"
    assert np.load(src)["up_axis"] == "y"                                  # the input is untouched
    assert export.main([str(src), "--format", "bvh"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert export.main([str(src), "--format", "bvh,glb", "--out", str(tmp_path / "x.bvh")]) == 1
    assert export.main([str(src), "--format", "glb", "--out", str(tmp_path / "x.glb")]) == 0
    assert (tmp_path / "x.glb").read_bytes()[:4] == b"glTF"
    assert export.main([str(tmp_path / "missing.npy"), "--format", "bvh"]) == 1
    assert "missing.npy" in capsys.readouterr().err


@pytest.mark.slow
def test_generate_dance_exports_beside_the_video(tmp_path, capsys):
    import soundfile as sf

    import generate_dance
    from model.checkpoint import save_checkpoint
    from model.network import ModelConfig, SeqModel

    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, SeqModel(ModelConfig.tiny()))
    sr = 22050
    t = np.arange(int(1.5 * sr)) / sr
    sf.write(tmp_path / "tone.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    rc = generate_dance.main([str(tmp_path / "tone.wav"), "--checkpoint", str(ckpt), "--steps", "2",
                              "--duration", "1", "--out_dir", str(tmp_path), "--mode", "skeleton",
                              "--export", "bvh,glb,npz"])
    assert rc == 0, capsys.readouterr().err
    for ext in ("mp4", "bvh", "glb", "npz"):
        assert (tmp_path / f"tone_dance.{ext}").is_file()
    assert bvh_reader.read_bvh(tmp_path / "tone_dance.bvh").frames_declared == 30
    assert "export:" in capsys.readouterr().out
    assert generate_dance.main([str(tmp_path / "tone.wav"), "--checkpoint", str(ckpt), "--export", "fbx"]) == 1
