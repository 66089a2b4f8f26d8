"""Motion for artists: one function writes a dance as BVH, glTF binary or AMASS-style npz.

``export.py`` (command line), ``generate_dance.py --export`` and the web page all call
:func:`export_motion`. Each format in short (details in the writers' modules):

=======  ==================================================================================
bvh      52-joint skeleton (body + hands) with this body's proportions, centimetres, y up,
         30 fps, ZXY Euler channels (``exporters/bvh.py``)
glb      the body as a skinned mesh (55 joints) with one 30 fps animation; metres, y up
         (``exporters/gltf.py``)
npz      AMASS-style SMPL-X parameters, **z up** and 30 fps, for the SMPL-X Blender add-on's
         "Add Animation" (Format: AMASS) and for AMASS tools (``save_amass_npz``)
=======  ==================================================================================

The motion passed in is as read by ``load_motion`` or made by the generator, before
``prepare_for_body``: any frame rate, y or z up, translation not yet scaled to the body.
BVH and glb are posed on ``body`` (its rest joints and, for our body, its leg-length translation
scale) and, by default, grounded: lifted as a whole so the soles rest on y = 0 over the clip, as in
the videos (``ground=False``: the body model's own frame, pelvis rest height above the origin, where
the feet stand about 0.9 m below y = 0). Their joints equal ``body.joints(prepare_for_body(motion,
body))`` plus that constant lift (:func:`floor_lift`); the npz holds SMPL-X parameters
(translation unscaled, turned z up about this body's rest pelvis) and, read back with ``load_motion``
and prepared for the same body, gives the same joints.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from body import rotations
from body.kinematics import rotations_52_to_55
from body.skeleton import FPS, MOTION_JOINTS
from motion.formats import Motion, prepare_for_body, resample, save_amass_npz, to_y_up

EXPORT_FORMATS = ("bvh", "glb", "npz")
# AMASS's frame, which the SMPL-X Blender add-on's default "AMASS" format expects. smplx rotates a
# body about its rest pelvis, not the origin, so turning a motion z-up corrects the translation with
# the rest pelvis of the body in use: exact on that body; on a body whose rest pelvis p' differs
# from p, the whole dance is displaced by the constant (C − I)(p' − p), C the z-up → y-up turn
# (tens of centimetres between our body and SMPL-X). "y" would be exact on any body.
NPZ_UP_AXIS = "z"


class ExportError(ValueError):
    """A format or output path that cannot be exported to. The message names the file."""


def parse_formats(text: str) -> list[str]:
    """'bvh,glb' → ['bvh', 'glb'] (order kept, duplicates dropped); raises ExportError on unknown names."""
    formats = []
    for name in str(text).replace(" ", "").lower().split(","):
        if not name:
            continue
        name = name.lstrip(".")
        if name not in EXPORT_FORMATS:
            raise ExportError(f"unknown export format '{name}'; choose from {', '.join(EXPORT_FORMATS)}")
        if name not in formats:
            formats.append(name)
    if not formats:
        raise ExportError(f"no export format given; choose from {', '.join(EXPORT_FORMATS)}")
    return formats


def export_motion(motion: Motion, path: str | os.PathLike, fmt: str | None, body, ground: bool = True) -> Path:
    """Write ``motion`` to ``path`` as 'bvh', 'glb' or 'npz' (None: from the path's extension).

    body: the :class:`body.body_model.BodyModel` to pose (BVH and glb take its skeleton and mesh;
    the npz its rest pelvis, for the exact change to z up). ground (default): move BVH and glb
    vertically so the soles rest on y = 0 over the clip, as in the rendered videos; False: the body
    model's own frame (the npz is never moved).
    Writes atomically; returns the path.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"{path}: cannot export as '{fmt}'; choose from {', '.join(EXPORT_FORMATS)}")
    if len(motion) == 0:
        raise ExportError(f"{path}: the motion has no frames")
    if fmt == "npz":
        pelvis = body.rest_joints[0].numpy()
        m = resample(to_y_up(motion, pelvis), FPS)
        return save_amass_npz(m, path, up_axis=NPZ_UP_AXIS, pelvis_rest=pelvis)

    m = prepare_for_body(motion, body)
    rest = body.rest_joints.numpy().astype(np.float64)
    local = rotations.axis_angle_to_matrix(torch.from_numpy(m.poses).double())           # (T, 52, 3, 3)
    root = rest[0] + m.trans.astype(np.float64)                                           # pelvis, (T, 3)
    if ground:
        root = root + [0.0, floor_lift(m, body), 0.0]
    if fmt == "bvh":
        from exporters.bvh import end_site_offsets, write_bvh
        from body.kinematics import motion_joint_parents

        idx = list(MOTION_JOINTS)
        ends = end_site_offsets(rest, _weights(body), _template(body), motion_joint_parents(), idx)
        return write_bvh(path, local.numpy(), root, rest[idx], ends, fps=m.fps)

    from exporters.gltf import write_glb

    quats = rotations.matrix_to_quaternion(rotations_52_to_55(local)).numpy()               # (T, 55, 4)
    return write_glb(path, _template(body), body.faces, _weights(body), rest, quats, root, fps=m.fps,
                     name=path.stem, copyright=body_license(body),
                     extras={"fps": m.fps, "units": "metres", "up": "+y", "front": "+z", "body": body.name})


def floor_lift(prepared: Motion, body) -> float:
    """Metres a motion prepared for ``body`` is lifted by when grounded: minus the floor its soles
    stand on over the clip (``BodyModel.floor_from_soles``, as the video's floor)."""
    return -body.floor_from_soles(body.joints(prepared))


def export_all(motion: Motion, stem: str | os.PathLike, formats, body, ground: bool = True) -> list[Path]:
    """Write STEM.<fmt> for each format; returns the paths."""
    stem = Path(stem)
    return [export_motion(motion, stem.with_name(f"{stem.name}.{fmt}"), fmt, body, ground=ground)
            for fmt in formats]


def body_license(body) -> str:
    """The licence line that travels with an exported mesh."""
    if not body.is_ours:
        return ("Mesh and skin weights from the SMPL-X body model (https://smpl-x.is.tue.mpg.de); "
                "use is governed by the SMPL-X model license.")
    try:
        with np.load(body.path) as data:
            return str(data["license"]) if "license" in data.files else f"{body.name}: see assets/body/README.md"
    except (OSError, ValueError):
        return f"{body.name}: see assets/body/README.md"


def _template(body) -> np.ndarray:
    return body.model.v_template.detach().cpu().numpy().astype(np.float64)


def _weights(body) -> np.ndarray:
    return body.model.lbs_weights.detach().cpu().numpy()
