"""Rotation conversions (SPEC §3 conventions) and forward kinematics on a hand-checkable chain."""
import math

import torch

from body import rotations as R
from body.kinematics import forward_kinematics, joints_from_6d, motion_joint_parents
from body.skeleton import MOTION_JOINTS, PARENTS


def random_rotations(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return R.quaternion_to_matrix(q)


def is_rotation(m, tol=1e-9):
    eye = torch.eye(3, dtype=m.dtype).expand_as(m)
    return torch.allclose(m @ m.transpose(-1, -2), eye, atol=tol) and torch.allclose(
        torch.linalg.det(m), torch.ones(m.shape[:-2], dtype=m.dtype), atol=tol)


def test_round_trips_on_random_rotations():
    m = random_rotations(2000)
    assert is_rotation(m)
    assert torch.allclose(R.rotation_6d_to_matrix(R.matrix_to_rotation_6d(m)), m, atol=1e-12)
    assert torch.allclose(R.axis_angle_to_matrix(R.matrix_to_axis_angle(m)), m, atol=1e-10)
    assert torch.allclose(R.quaternion_to_matrix(R.matrix_to_quaternion(m)), m, atol=1e-12)
    aa = R.matrix_to_axis_angle(m)
    assert torch.allclose(R.quaternion_to_axis_angle(R.axis_angle_to_quaternion(aa)), aa, atol=1e-10)


def test_6d_is_first_two_rows():
    m = random_rotations(5)
    d6 = R.matrix_to_rotation_6d(m)
    assert torch.equal(d6[:, :3], m[:, 0]) and torch.equal(d6[:, 3:], m[:, 1])


def test_6d_gram_schmidt_orthonormalises_noisy_input():
    m = random_rotations(100)
    noisy = R.matrix_to_rotation_6d(m) * 1.7 + 0.01 * torch.randn(100, 6, dtype=torch.float64)
    out = R.rotation_6d_to_matrix(noisy)
    assert is_rotation(out)
    # the first row keeps the direction of the first input row
    assert torch.allclose(out[:, 0], torch.nn.functional.normalize(noisy[:, :3], dim=-1))


def test_axis_angle_matches_known_rotation_and_edge_angles():
    # +90° about z turns +x into +y (column-vector convention)
    m = R.axis_angle_to_matrix(torch.tensor([0, 0, math.pi / 2], dtype=torch.float64))
    assert torch.allclose(m @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                          torch.tensor([0, 1.0, 0], dtype=torch.float64), atol=1e-12)
    for v in ([0, 0, 0], [1e-9, 0, 0], [math.pi, 0, 0], [0, math.pi - 1e-7, 0], [2.0, -2.0, 0.5]):
        a = torch.tensor(v, dtype=torch.float64)
        back = R.axis_angle_to_matrix(R.matrix_to_axis_angle(R.axis_angle_to_matrix(a)))
        assert torch.allclose(back, R.axis_angle_to_matrix(a), atol=1e-9), v


def test_batched_over_leading_dims_and_float32():
    m = random_rotations(24).reshape(2, 3, 4, 3, 3).float()
    assert R.matrix_to_rotation_6d(m).shape == (2, 3, 4, 6)
    assert R.matrix_to_axis_angle(m).shape == (2, 3, 4, 3)
    assert R.matrix_to_quaternion(m).shape == (2, 3, 4, 4)
    assert torch.allclose(R.axis_angle_to_matrix(R.matrix_to_axis_angle(m)), m, atol=1e-5)


def test_slerp_halfway_and_shorter_arc():
    q0 = R.axis_angle_to_quaternion(torch.zeros(3, dtype=torch.float64))
    q1 = R.axis_angle_to_quaternion(torch.tensor([0, 1.2, 0], dtype=torch.float64))
    mid = R.quaternion_to_axis_angle(R.quaternion_slerp(q0, q1, 0.5))
    assert torch.allclose(mid, torch.tensor([0, 0.6, 0], dtype=torch.float64), atol=1e-12)
    # −q1 is the same rotation: slerp must still take the short way
    mid2 = R.quaternion_to_axis_angle(R.quaternion_slerp(q0, -q1, 0.5))
    assert torch.allclose(mid2, mid, atol=1e-12)


def test_forward_kinematics_two_bone_chain_by_hand():
    rest = torch.tensor([[0, 0, 0], [1, 0, 0], [2, 0, 0]], dtype=torch.float64)
    rot = torch.eye(3, dtype=torch.float64).repeat(3, 1, 1)
    rot[1] = R.axis_angle_to_matrix(torch.tensor([0, 0, math.pi / 2], dtype=torch.float64))
    j = forward_kinematics(rot, rest, parents=(-1, 0, 1), trans=torch.tensor([0, 0, 5.0], dtype=torch.float64))
    expected = torch.tensor([[0, 0, 5], [1, 0, 5], [1, 1, 5]], dtype=torch.float64)
    assert torch.allclose(j, expected, atol=1e-12)


def test_motion_joint_parents_follow_the_tree():
    parents = motion_joint_parents()
    assert len(parents) == 52 and parents[0] == -1
    for i, p in enumerate(parents):
        if p >= 0:
            assert MOTION_JOINTS[p] == PARENTS[MOTION_JOINTS[i]]


def test_joints_from_6d_identity_pose_is_rest_pose():
    rest = torch.randn(55, 3, dtype=torch.float64)
    ident = R.matrix_to_rotation_6d(torch.eye(3, dtype=torch.float64).expand(4, 52, 3, 3))
    j = joints_from_6d(ident, torch.zeros(4, 3, dtype=torch.float64), rest)
    assert torch.allclose(j, rest[list(MOTION_JOINTS)].expand(4, 52, 3), atol=1e-12)
