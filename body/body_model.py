"""The body that wears the motion: SMPL-X when the user has it, our Anny-based body otherwise.

Both are SMPL-X-format ``.npz`` files evaluated by the same ``smplx.SMPLX`` code, so the rest of
the project never asks which one it has. Look-up order (first found wins):

1. an explicit path (``--body_model PATH``: a file, or a folder holding ``SMPLX_NEUTRAL.npz``);
2. ``assets/smpl_model/smplx/SMPLX_NEUTRAL.npz`` (where FineDance users keep the real model);
3. ``assets/body/anny_smplx_neutral.npz`` (ours, free; see assets/body/README.md).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from body.kinematics import forward_kinematics
from body.skeleton import FOOT_JOINTS, N_JOINTS

ROOT = Path(__file__).resolve().parent.parent
SMPLX_BODY = ROOT / "assets" / "smpl_model" / "smplx" / "SMPLX_NEUTRAL.npz"
DEFAULT_BODY = ROOT / "assets" / "body" / "anny_smplx_neutral.npz"

# Motion data (FineDance, and the corpus we build) is authored for an adult of average
# proportions; a body with longer or shorter legs scales the root translation by the ratio of leg
# lengths so that its feet do not skate. 0.90 m ≈ hip-joint height of a 1.70 m adult
# (anthropometric rule of thumb: 0.53 × stature), not a number taken from SMPL-X.
CANONICAL_LEG_LENGTH = 0.90

_REQUIRED_KEYS = ("v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs", "posedirs")


class BodyModelError(ValueError):
    """The body model file is missing or unusable. The message names the file."""


def find_body_model(path: str | os.PathLike | None = None) -> Path:
    """Resolve which body model file to use (see the module docstring)."""
    if path is not None:
        p = Path(path)
        if p.is_dir():
            p = p / "SMPLX_NEUTRAL.npz"
        if not p.is_file():
            raise BodyModelError(f"{p}: body model file not found")
        if p.suffix.lower() != ".npz":
            raise BodyModelError(f"{p}: only SMPL-X .npz body files are supported (the .pkl form needs chumpy)")
        return p
    for candidate in (SMPLX_BODY, DEFAULT_BODY):
        if candidate.is_file():
            return candidate
    raise BodyModelError(f"{DEFAULT_BODY}: the default body file is missing; regenerate it with "
                         "`python data/code/bake_default_body.py` or pass --body_model")


class BodyModel:
    """Poses a body file with ``smplx.SMPLX`` and exposes what the renderer and metrics need.

    ``joints`` and ``vertices`` take a motion already in this body's frame
    (``motion.formats.prepare_for_body``): anything with ``poses`` (T, 52, 3) axis-angle, ``trans``
    (T, 3) metres, ``slice`` and ``smplx_params``, i.e. a ``motion.formats.Motion``.

    faces: (F, 3) int32; rest_joints: (55, 3) metres, y up; leg_length: metres from the hip joints to
    the soles in the rest pose; translation_scale: factor applied to motion translation.
    """

    def __init__(self, path: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
        import smplx  # imported here: it is slow to import and not every caller needs it

        self.path = find_body_model(path)
        try:
            data = np.load(self.path, allow_pickle=True)
            missing = [k for k in _REQUIRED_KEYS if k not in data.files]
        except Exception as e:
            raise BodyModelError(f"{self.path}: not a readable .npz body file ({e})") from None
        if missing:
            raise BodyModelError(f"{self.path}: not an SMPL-X body file (missing {', '.join(missing)})")
        self.is_ours = "source" in data.files
        self.name = "SMPL-X" if not self.is_ours else f"{str(data['source'])} (SMPL-X format)"
        self.device = torch.device(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # smplx warns about shape-space sizes of our file
            self.model = smplx.SMPLX(str(self.path), ext="npz", use_pca=False, flat_hand_mean=True,
                                     batch_size=1, num_betas=10, num_expression_coeffs=10,
                                     use_face_contour=False).to(self.device).eval()
        self.faces = np.asarray(self.model.faces, dtype=np.int32)
        v = self.model.v_template.detach()
        self.rest_joints = (self.model.J_regressor.detach() @ v).cpu()[:N_JOINTS]
        self.sole_height = float(v[:, 1].min())
        hips = self.rest_joints[1:3, 1].mean().item()
        self.leg_length = hips - self.sole_height
        # Height of each foot joint above the sole at rest, to find the floor from joints alone.
        self.foot_joint_height = (self.rest_joints[list(FOOT_JOINTS), 1] - self.sole_height).numpy()
        self.translation_scale = 1.0 if not self.is_ours else self.leg_length / CANONICAL_LEG_LENGTH

    @property
    def n_vertices(self) -> int:
        return int(self.model.v_template.shape[0])

    def floor_from_soles(self, joints: np.ndarray) -> float:
        """Floor y for a clip posed on this body: the soles' low level over time (the 5th percentile
        of each frame's lowest sole). joints: (T, 55, 3) metres, y up."""
        soles = joints[:, list(FOOT_JOINTS), 1] - self.foot_joint_height[None]
        per_frame = soles.min(axis=1)
        return float(np.percentile(per_frame, 5))

    def joints(self, motion) -> np.ndarray:
        """(T, 55, 3) joint positions by forward kinematics (cheap: no mesh). Motion must be prepared."""
        from body import rotations
        from body.kinematics import rotations_52_to_55

        rot = rotations_52_to_55(rotations.axis_angle_to_matrix(torch.from_numpy(motion.poses)))
        # smplx rotates about the rest pelvis and adds transl on top.
        j = forward_kinematics(rot, self.rest_joints, trans=torch.from_numpy(motion.trans))
        return j.numpy()

    @torch.inference_mode()
    def vertices(self, motion, chunk: int = 64) -> Iterator[np.ndarray]:
        """Yield (n, V, 3) float32 vertex arrays for consecutive chunks of a prepared motion."""
        for start in range(0, len(motion), chunk):
            part = motion.slice(start, start + chunk)
            n = len(part)
            params = {k: v.to(self.device) for k, v in part.smplx_params().items()}
            zeros3 = torch.zeros(n, 3, device=self.device)
            out = self.model(**params, betas=torch.zeros(n, 10, device=self.device),
                             expression=torch.zeros(n, 10, device=self.device),
                             jaw_pose=zeros3, leye_pose=zeros3, reye_pose=zeros3, return_verts=True)
            yield out.vertices.float().cpu().numpy()
