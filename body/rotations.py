"""Rotation conversions, batched over any leading dimensions, in torch.

Conventions (SPEC §3):
- matrices act on column vectors: ``v' = R @ v``;
- the 6-D representation is the first two ROWS of the matrix, flattened (PyTorch3D's choice);
  a matrix is recovered from it by Gram–Schmidt on those rows;
- quaternions are ``(w, x, y, z)``; functions that return quaternions give ``w >= 0``;
- axis-angle vectors are ``axis * angle`` (radians).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_EPS = 1e-8


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) → (..., 3, 3). Rows are the Gram–Schmidt orthonormalised input rows."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) → (..., 6): the first two rows."""
    return matrix[..., :2, :].reshape(*matrix.shape[:-2], 6)


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) → (..., 3, 3) cross-product matrix."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack((o, -z, y, z, o, -x, -y, x, o), dim=-1).reshape(*v.shape[:-1], 3, 3)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) → (..., 3, 3) by Rodrigues' formula, exact near zero angle."""
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1)
    theta = theta2.clamp_min(_EPS).sqrt()
    small = theta2 < 1e-6
    # sin(θ)/θ and (1 − cos θ)/θ², with Taylor series where θ is tiny.
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta.pow(2))
    k = _skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def rotation_between(a, b) -> np.ndarray:
    """(3, 3) float64: the smallest rotation taking direction ``a`` onto direction ``b`` (each (3,), any
    length > 0). Opposite directions turn by π about an axis perpendicular to ``a``."""
    a = np.asarray(a, np.float64) / np.linalg.norm(a)
    b = np.asarray(b, np.float64) / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = float(np.linalg.norm(axis)), float(np.dot(a, b))
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return axis_angle_to_matrix(torch.from_numpy(perp / np.linalg.norm(perp) * np.pi)).numpy()
    return axis_angle_to_matrix(torch.from_numpy(axis / s * np.arctan2(s, c))).numpy()


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) → (..., 4) unit quaternion (w, x, y, z), w ≥ 0.

    Uses the largest of the four candidate denominators for each matrix, so it is stable for
    every rotation, including 180° turns.
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4·q_i² for each component; the largest one gives a well-conditioned division.
    four_sq = torch.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                           1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1)
    root = four_sq.clamp_min(0).sqrt()  # 2·|q_i|
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s21, s02, s10 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    # Candidate quaternions, each scaled by 2·q_i (one row per choice of pivot).
    cands = torch.stack((
        torch.stack((root[..., 0] ** 2, d21, d02, d10), -1),
        torch.stack((d21, root[..., 1] ** 2, s10, s02), -1),
        torch.stack((d02, s10, root[..., 2] ** 2, s21), -1),
        torch.stack((d10, s02, s21, root[..., 3] ** 2), -1),
    ), dim=-2)
    pivot = four_sq.argmax(-1)
    chosen = torch.gather(cands, -2, pivot[..., None, None].expand(*pivot.shape, 1, 4)).squeeze(-2)
    q = F.normalize(chosen, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_matrix(quat: torch.Tensor) -> torch.Tensor:
    """(..., 4) (w, x, y, z), any norm > 0 → (..., 3, 3)."""
    w, x, y, z = F.normalize(quat, dim=-1).unbind(-1)
    return torch.stack((
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ), dim=-1).reshape(*quat.shape[:-1], 3, 3)


def quaternion_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """(..., 4) → (..., 3), angle in [0, π]."""
    q = F.normalize(quat, dim=-1)
    q = torch.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    sin_half = v.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    small = sin_half < 1e-6
    # angle / sin(angle/2) → 2 + angle²/24 … as the angle → 0
    scale = torch.where(small, 2 + angle.pow(2) / 12, angle / sin_half.clamp_min(_EPS))
    return v * scale


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) → (..., 4) (w, x, y, z)."""
    angle = axis_angle.norm(dim=-1, keepdim=True)
    half = angle / 2
    small = angle < 1e-6
    s = torch.where(small, 0.5 - angle.pow(2) / 48, torch.sin(half) / angle.clamp_min(_EPS))
    return torch.cat((torch.cos(half), axis_angle * s), dim=-1)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) → (..., 3)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rotation_6d_to_axis_angle(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) → (..., 3)."""
    return matrix_to_axis_angle(rotation_6d_to_matrix(d6))


def axis_angle_to_rotation_6d(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) → (..., 6)."""
    return matrix_to_rotation_6d(axis_angle_to_matrix(axis_angle))


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a ⊗ b of (..., 4) quaternions (w, x, y, z)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack((aw * bw - ax * bx - ay * by - az * bz,
                        aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw), dim=-1)


def quaternion_slerp(q0: torch.Tensor, q1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation along the shorter arc. q0, q1: (..., 4); t broadcasts to (...)."""
    t = torch.as_tensor(t, dtype=q0.dtype, device=q0.device)
    q0, q1 = F.normalize(q0, dim=-1), F.normalize(q1, dim=-1)
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    t = t[..., None] if t.dim() else t
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    near = sin_omega < 1e-4
    w0 = torch.where(near, 1 - t, torch.sin((1 - t) * omega) / sin_omega.clamp_min(_EPS))
    w1 = torch.where(near, t, torch.sin(t * omega) / sin_omega.clamp_min(_EPS))
    return F.normalize(w0 * q0 + w1 * q1, dim=-1)
