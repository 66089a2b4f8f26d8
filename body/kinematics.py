"""Forward kinematics over the SMPL-X joint tree (SPEC §3).

A pose is a set of local joint rotations; each joint's world transform is its parent's world
transform times (local rotation, offset from the parent in the rest pose). This is the same
rigid chain smplx evaluates, without the mesh, so joint positions can be computed cheaply for
losses, foot contacts and metrics.
"""
from __future__ import annotations

from typing import Sequence

import torch

from body import rotations
from body.skeleton import N_MOTION_JOINTS, PARENTS, MOTION_JOINTS


def forward_kinematics(rotmats: torch.Tensor, rest_joints: torch.Tensor,
                       parents: Sequence[int] = PARENTS, trans: torch.Tensor | None = None,
                       ) -> torch.Tensor:
    """World joint positions.

    rotmats: (..., J, 3, 3) local rotations (joint 0 = global orientation).
    rest_joints: (J, 3) or (..., J, 3) rest-pose joint positions in metres.
    parents: parent index per joint (−1 for the root); parents[j] < j.
    trans: (..., 3) root translation added to every joint (smplx's ``transl``).
    Returns (..., J, 3).
    """
    n_joints = rotmats.shape[-3]
    parents = list(parents)[:n_joints]
    rest = rest_joints.to(rotmats.dtype)
    offsets = rest.clone()
    offsets[..., 1:, :] = rest[..., 1:, :] - rest[..., parents[1:], :]
    world_rot: list[torch.Tensor] = []
    world_pos: list[torch.Tensor] = []
    for j in range(n_joints):
        p = parents[j]
        if p < 0:
            world_rot.append(rotmats[..., j, :, :])
            world_pos.append(offsets[..., j, :].expand(*rotmats.shape[:-3], 3))
        else:
            world_rot.append(world_rot[p] @ rotmats[..., j, :, :])
            world_pos.append(world_pos[p] + (world_rot[p] @ offsets[..., j, :, None])[..., 0])
    joints = torch.stack(world_pos, dim=-2)
    if trans is not None:
        joints = joints + trans[..., None, :]
    return joints


def motion_joint_parents() -> tuple[int, ...]:
    """Parents of the 52 motion joints, as indices into those 52 (SMPL-H order)."""
    position = {j: i for i, j in enumerate(MOTION_JOINTS)}
    return tuple(-1 if PARENTS[j] < 0 else position[PARENTS[j]] for j in MOTION_JOINTS)


def rotations_52_to_55(rotmats: torch.Tensor) -> torch.Tensor:
    """(..., 52, 3, 3) motion joints → (..., 55, 3, 3) with identity jaw and eyes."""
    eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
    full = eye.expand(*rotmats.shape[:-3], len(PARENTS), 3, 3).clone()
    full[..., list(MOTION_JOINTS), :, :] = rotmats
    return full


def joints_from_6d(rot6d: torch.Tensor, trans: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """Joint positions from the motion formats' rotations.

    rot6d: (..., J, 6) with J = 52 (motion joints) or 22 (body only); trans: (..., 3);
    rest_joints: (55, 3) rest joints of the body model. Returns (..., J, 3) for the same J joints.
    """
    n = rot6d.shape[-2]
    rotmats = rotations.rotation_6d_to_matrix(rot6d)
    if n == N_MOTION_JOINTS:
        idx = list(MOTION_JOINTS)
        return forward_kinematics(rotmats, rest_joints[..., idx, :], motion_joint_parents(), trans)
    return forward_kinematics(rotmats, rest_joints[..., :n, :], PARENTS[:n], trans)
