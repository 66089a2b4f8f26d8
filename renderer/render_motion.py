"""Motion → video: the one rendering path used by render.py, generate_dance.py and the web page."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from body.body_model import BodyModel
from dataset.motion_io import Motion
from renderer.scene import HEIGHT, WIDTH, MeshPainter, SkeletonPainter, camera_path, floor_height
from renderer.video import VideoWriter

MODES = ("smplx", "skeleton")


def render_motion(motion: Motion, out_path: str | os.PathLike, body: BodyModel, audio=None,
                  mode: str = "smplx", overwrite: bool = False, platform: str | None = None,
                  progress: bool = True, desc: str | None = None, audio_start: float = 0.0) -> Path:
    """Render a motion to an MP4 (1200×1200, 30 fps, H.264) with optional audio.

    The body stands on a floor at the clip's sole level; the camera follows the pelvis. Frames are
    posed in chunks and streamed to ffmpeg. Returns the output path; on error nothing is left there.
    """
    if mode not in MODES:
        raise ValueError(f"unknown render mode '{mode}'; choose one of {MODES}")
    m = body.prepare(motion)
    joints = body.joints(m)
    floor = floor_height(joints, body.foot_joint_height)
    joints[..., 1] -= floor
    cams = camera_path(joints[:, 0], m.fps)
    follow = joints[:, 0][:, [0, 2]]
    painter = MeshPainter(body.faces, platform) if mode == "smplx" else SkeletonPainter()
    bar = tqdm(total=len(m), desc=desc or Path(out_path).name, unit="frame", disable=not progress, leave=False)
    try:
        with VideoWriter(out_path, WIDTH, HEIGHT, len(m), fps=m.fps, audio=audio,
                         audio_start=audio_start, overwrite=overwrite) as video:
            if mode == "smplx":
                i = 0
                for chunk in body.vertices(m):
                    for verts in chunk:
                        verts[:, 1] -= floor
                        video.write(painter.paint(verts, cams[i], follow[i], follow[i]))
                        i += 1
                        bar.update()
            else:
                for i in range(len(m)):
                    video.write(painter.paint(joints[i], cams[i], follow[i], follow[i]))
                    bar.update()
    finally:
        bar.close()
        painter.close()
    return Path(out_path)
