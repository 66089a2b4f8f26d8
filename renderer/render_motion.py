"""Motion → video: the one rendering path used by render.py, generate_dance.py and the web page."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from body.body_model import BodyModel
from dataset.motion_io import Motion
from renderer.scene import (HEIGHT, WIDTH, FloorPainter, MeshPainter, SkeletonPainter, camera_pose, floor_height,
                            follow_path)
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
    floor_y = floor_height(joints, body.foot_joint_height)
    joints[..., 1] -= floor_y
    follow = follow_path(joints[:, 0], m.fps)   # where the camera looks, smoothed
    pelvis = joints[:, 0][:, [0, 2]]             # where the shadow falls
    floor = FloorPainter()
    painter = MeshPainter(body.faces, platform) if mode == "smplx" else SkeletonPainter()
    if mode == "smplx":
        frames = (v for chunk in body.vertices(m) for v in chunk)
    else:
        frames = iter(joints)
    bar = tqdm(total=len(m), desc=desc or Path(out_path).name, unit="frame", disable=not progress, leave=False)
    # Three things overlap: OpenGL draws frame i (it releases the GIL) while a worker paints the
    # floor of frame i + 1 and another pipes frame i − 1 to ffmpeg (which encodes in its own process).
    with ThreadPoolExecutor(1) as floor_pool, ThreadPoolExecutor(1) as write_pool:
        try:
            with VideoWriter(out_path, WIDTH, HEIGHT, len(m), fps=m.fps, audio=audio,
                             audio_start=audio_start, overwrite=overwrite) as video:
                next_floor = floor_pool.submit(floor.paint, follow[0], pelvis[0])
                written = None
                for i, points in enumerate(frames):
                    image = next_floor.result()
                    if i + 1 < len(m):
                        next_floor = floor_pool.submit(floor.paint, follow[i + 1], pelvis[i + 1])
                    if mode == "smplx":
                        points[:, 1] -= floor_y
                    image = painter.paint(points, camera_pose(follow[i]), image)
                    if written is not None:
                        written.result()
                    written = write_pool.submit(video.write, image)
                    bar.update()
                if written is not None:
                    written.result()
        finally:
            bar.close()
            painter.close()
    return Path(out_path)
