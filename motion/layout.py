"""The motion vectors by name: ``[contacts 4 | root translation 3 | 52 joints × 6-D rotation]`` (SPEC §3).

The model reads and writes (T, 319) vectors: the foot contacts of the left ankle, right ankle, left
foot and right foot (1 = planted), the root translation (metres, y up) and the local rotation of each
of the 52 motion joints (SMPL-H order: 22 body, 15 left hand, 15 right hand) as 6-D (the first two
rows of its matrix). FineDance's files hold the same without the contacts: (T, 315). Every module
cuts vectors with :data:`MOTION_319` / :data:`MOTION_315` (or :func:`layout_of`) instead of counting
channels; the sizes come from ``body/skeleton.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from body.skeleton import MOTION_DIM, MOTION_DIM_315, N_CONTACTS, N_MOTION_JOINTS, ROT6D, TRANS_DIM


@dataclass(frozen=True)
class VectorLayout:
    """Where each part of a motion vector lies along its last axis (numpy arrays or torch tensors)."""

    n_contacts: int    # N_CONTACTS (the model's 319-d vector) or 0 (FineDance's 315-d files)

    @property
    def dim(self) -> int:
        return self.n_contacts + TRANS_DIM + N_MOTION_JOINTS * ROT6D

    @property
    def contacts(self) -> slice:
        return slice(0, self.n_contacts)

    @property
    def translation(self) -> slice:
        return slice(self.n_contacts, self.n_contacts + TRANS_DIM)

    @property
    def motion(self) -> slice:
        """Translation and rotations: the 315 channels both layouts share."""
        return slice(self.n_contacts, self.dim)

    @property
    def rotations(self) -> slice:
        return slice(self.n_contacts + TRANS_DIM, self.dim)

    def rot6d(self, vector, n_joints: int = N_MOTION_JOINTS):
        """(..., dim) → (..., n_joints, 6): the first ``n_joints`` joints' 6-D rotations (all 52 by default)."""
        start = self.rotations.start
        return vector[..., start:start + n_joints * ROT6D].reshape(*vector.shape[:-1], n_joints, ROT6D)


MOTION_319 = VectorLayout(N_CONTACTS)   # the model's vector
MOTION_315 = VectorLayout(0)            # FineDance's motion files

assert MOTION_319.dim == MOTION_DIM and MOTION_315.dim == MOTION_DIM_315


def layout_of(vector) -> VectorLayout:
    """The layout of a (..., 319) or (..., 315) vector; ValueError for any other width."""
    width = vector.shape[-1]
    for layout in (MOTION_319, MOTION_315):
        if width == layout.dim:
            return layout
    raise ValueError(f"a motion vector is (..., {MOTION_DIM}) or (..., {MOTION_DIM_315}), got {tuple(vector.shape)}")
