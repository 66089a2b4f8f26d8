"""Reading and writing every supported motion format, and clear errors for bad files."""
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from body import rotations as R
from motion.formats import (Motion, MotionFormatError, load_motion, motion_from_vector, motion_to_vector,
                               resample, save_amass_npz, save_finedance_npy, save_motion, to_y_up)


def random_motion(n=40, seed=0, contacts=False):
    rng = np.random.default_rng(seed)
    poses = (rng.normal(size=(n, 52, 3)) * 0.6).astype(np.float32)
    trans = rng.normal(size=(n, 3)).astype(np.float32)
    c = (rng.random((n, 4)) > 0.5).astype(np.float32) if contacts else None
    return Motion(poses=poses, trans=trans, contacts=c)


def same_rotations(a, b, atol=1e-5):
    ma = R.axis_angle_to_matrix(torch.from_numpy(np.asarray(a, np.float64)))
    mb = R.axis_angle_to_matrix(torch.from_numpy(np.asarray(b, np.float64)))
    return torch.allclose(ma, mb, atol=atol)


@pytest.mark.parametrize("contacts", [False, True])
def test_finedance_npy_round_trip(tmp_path, contacts):
    m = random_motion(contacts=contacts)
    path = save_finedance_npy(m, tmp_path / "a.npy")
    raw = np.load(path)
    assert raw.shape == (40, 319 if contacts else 315) and raw.dtype == np.float32
    back = load_motion(path)
    assert same_rotations(back.poses, m.poses)
    np.testing.assert_allclose(back.trans, m.trans, atol=1e-6)
    if contacts:
        np.testing.assert_array_equal(back.contacts, m.contacts)


def test_319_layout_matches_spec():
    m = random_motion(contacts=True)
    v = motion_to_vector(m)
    np.testing.assert_array_equal(v[:, 0:4], m.contacts)
    np.testing.assert_allclose(v[:, 4:7], m.trans)
    pelvis = R.rotation_6d_to_matrix(torch.from_numpy(v[:, 7:13]))
    assert torch.allclose(pelvis, R.axis_angle_to_matrix(torch.from_numpy(m.poses[:, 0])), atol=1e-5)
    right_hand_last = R.rotation_6d_to_matrix(torch.from_numpy(v[:, 313:319]))
    assert torch.allclose(right_hand_last, R.axis_angle_to_matrix(torch.from_numpy(m.poses[:, 51])), atol=1e-5)


def test_amass_npz_round_trip_keeps_metadata(tmp_path):
    m = replace(random_motion(), fps=60.0, gender="female", betas=np.arange(10, dtype=np.float32))
    path = save_amass_npz(m, tmp_path / "a.npz")
    z = np.load(path)
    assert z["poses"].shape == (40, 165) and z["trans"].shape == (40, 3)
    assert float(z["mocap_frame_rate"]) == 60.0 and str(z["up_axis"]) == "y"
    back = load_motion(path)
    assert back.fps == 60.0 and back.gender == "female" and back.up_axis == "y"
    np.testing.assert_array_equal(back.betas, m.betas)
    assert same_rotations(back.poses, m.poses)


@pytest.mark.parametrize("dim", [72, 156])
def test_edge_pkl(tmp_path, dim):
    rng = np.random.default_rng(1)
    poses = rng.normal(size=(20, dim)) * 0.3
    trans = rng.normal(size=(20, 3))
    with open(tmp_path / "a.pkl", "wb") as f:
        pickle.dump({"smpl_poses": poses, "smpl_trans": trans * 2.0, "smpl_scaling": np.array([2.0])}, f)
    m = load_motion(tmp_path / "a.pkl")
    assert m.poses.shape == (20, 52, 3)
    np.testing.assert_allclose(m.trans, trans, atol=1e-5)
    np.testing.assert_allclose(m.poses[:, :22].reshape(20, -1), poses[:, :66], atol=1e-6)
    if dim == 72:  # SMPL's own two hand joints are dropped; fingers rest flat
        assert np.all(m.poses[:, 22:] == 0)


def test_amass_z_up_is_converted_exactly(tmp_path):
    """A z-up file and its y-up twin give the same joints once the pelvis offset is applied."""
    from body.kinematics import forward_kinematics, rotations_52_to_55

    rest = torch.randn(55, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    m = random_motion(10)
    c = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], np.float64)  # z-up → y-up

    def joints(motion):
        rot = rotations_52_to_55(R.axis_angle_to_matrix(torch.from_numpy(motion.poses.astype(np.float64))))
        return forward_kinematics(rot, rest, trans=torch.from_numpy(motion.trans.astype(np.float64))).numpy()

    zup = replace(m, up_axis="z")
    yup = to_y_up(zup, rest[0].numpy())
    np.testing.assert_allclose(joints(yup), joints(zup) @ c.T, atol=1e-4)


def test_resample_halves_frames_and_keeps_endpoints():
    m = replace(random_motion(61), fps=60.0)
    r = resample(m, 30)
    assert len(r) == 31 and r.fps == 30
    np.testing.assert_allclose(r.trans[0], m.trans[0])
    np.testing.assert_allclose(r.trans[-1], m.trans[-1], atol=1e-6)
    assert same_rotations(r.poses[5], m.poses[10])


def test_save_motion_refuses_unknown_extension(tmp_path):
    with pytest.raises(MotionFormatError, match="x.bvh"):
        save_motion(random_motion(), tmp_path / "x.bvh")


@pytest.mark.parametrize("name, content, message", [
    ("empty.npy", b"", "empty"),
    ("garbage.npy", b"not numpy at all", "not a readable .npy"),
    ("garbage.pkl", b"\x80\x04garbage", "not a readable pickle"),
    ("garbage.npz", b"PK\x03\x04broken", "not a readable .npz"),
    ("motion.txt", b"1 2 3", "unknown motion format"),
])
def test_bad_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MotionFormatError, match=message) as e:
        load_motion(path)
    assert name in str(e.value)


@pytest.mark.parametrize("array, message", [
    (np.zeros((10, 300), np.float32), "shape"),
    (np.zeros((10,), np.float32), "2 dimensions"),
    (np.zeros((0, 315), np.float32), "no frames"),
    (np.full((10, 315), np.nan, np.float32), "NaN"),
])
def test_bad_npy_contents(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(MotionFormatError, match=message):
        load_motion(tmp_path / "bad.npy")


def test_bad_npz_and_pkl_contents(tmp_path):
    np.savez(tmp_path / "a.npz", poses=np.zeros((5, 100)), trans=np.zeros((5, 3)))
    with pytest.raises(MotionFormatError, match="100 values per frame"):
        load_motion(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", poses=np.zeros((5, 156)), trans=np.zeros((4, 3)))
    with pytest.raises(MotionFormatError, match="5 frames of poses but 4"):
        load_motion(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", foo=np.zeros(3))
    with pytest.raises(MotionFormatError, match="'poses' and 'trans'"):
        load_motion(tmp_path / "c.npz")
    with open(tmp_path / "d.pkl", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(MotionFormatError, match="smpl_poses"):
        load_motion(tmp_path / "d.pkl")
    with pytest.raises(MotionFormatError, match="no such file"):
        load_motion(tmp_path / "missing.npy")


def test_failed_write_leaves_nothing(tmp_path):
    bad = Motion(poses=np.zeros((3, 52, 3), np.float32), trans=np.zeros((3, 3), np.float32), betas=object())
    with pytest.raises(Exception):
        save_amass_npz(bad, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_vector_from_torch_and_numpy_agree():
    v = motion_to_vector(random_motion(contacts=True))
    a, b = motion_from_vector(v), motion_from_vector(torch.from_numpy(v))
    np.testing.assert_array_equal(a.poses, b.poses)
