"""Motion → video: the one rendering path used by render.py, generate_dance.py and the web page."""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from body.body_model import BodyModel
from motion.formats import Motion, prepare_for_body
from renderer.scene import (HEIGHT, WIDTH, FloorPainter, MeshPainter, SkeletonPainter, camera_pose,
                            follow_path)
from renderer.video import VideoWriter

MODES = ("smplx", "skeleton")


def _timed(iterable, timings: dict, key: str):
    """Yield from ``iterable``, adding the time spent producing items to timings[key]."""
    it = iter(iterable)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
        yield item


def render_motion(motion: Motion, out_path: str | os.PathLike, body: BodyModel, audio=None,
                  mode: str = "smplx", overwrite: bool = False, platform: str | None = None,
                  progress: bool = True, desc: str | None = None, audio_start: float = 0.0,
                  on_frame: Callable[[int, int], None] | None = None, timings: dict | None = None) -> Path:
    """Render a motion to an MP4 (1200×1200, 30 fps, H.264) with optional audio.

    The body stands on a floor at the clip's sole level; the camera follows the pelvis. Frames are
    posed in chunks and streamed to ffmpeg. on_frame(done, total) reports progress; ``timings``
    (if given) receives seconds spent posing meshes ('meshes'), drawing ('render') and finishing
    the file ('mux'). Returns the output path; on error nothing is left there.
    """
    if mode not in MODES:
        raise ValueError(f"unknown render mode '{mode}'; choose one of {MODES}")
    timings = {} if timings is None else timings
    m = prepare_for_body(motion, body)
    joints = body.joints(m)
    floor_y = body.floor_from_soles(joints)
    joints[..., 1] -= floor_y
    follow = follow_path(joints[:, 0], m.fps)   # where the camera looks, smoothed
    pelvis = joints[:, 0][:, [0, 2]]             # where the shadow falls
    floor = FloorPainter()
    painter = MeshPainter(body.faces, platform) if mode == "smplx" else SkeletonPainter()
    if mode == "smplx":
        frames = (v for chunk in _timed(body.vertices(m), timings, "meshes") for v in chunk)
    else:
        frames = iter(joints)
    n = len(m)
    bar = tqdm(total=n, desc=desc or Path(out_path).name, unit="frame", disable=not progress, leave=False)
    t_start = time.perf_counter()
    # Three things overlap: OpenGL draws frame i (it releases the GIL) while a worker paints the
    # floor of frame i + 1 and another pipes frame i − 1 to ffmpeg (which encodes in its own process).
    with ThreadPoolExecutor(1) as floor_pool, ThreadPoolExecutor(1) as write_pool:
        try:
            video = VideoWriter(out_path, WIDTH, HEIGHT, n, fps=m.fps, audio=audio, audio_start=audio_start,
                                overwrite=overwrite)
            with video:
                next_floor = floor_pool.submit(floor.paint, follow[0], pelvis[0])
                written = None
                for i, points in enumerate(frames):
                    image = next_floor.result()
                    if i + 1 < n:
                        next_floor = floor_pool.submit(floor.paint, follow[i + 1], pelvis[i + 1])
                    if mode == "smplx":
                        points[:, 1] -= floor_y
                    image = painter.paint(points, camera_pose(follow[i]), image)
                    if written is not None:
                        written.result()
                    written = write_pool.submit(video.write, image)
                    bar.update()
                    if on_frame:
                        on_frame(i + 1, n)
                if written is not None:
                    written.result()
                t_mux = time.perf_counter()
                timings["render"] = t_mux - t_start - timings.get("meshes", 0.0)
            timings["mux"] = time.perf_counter() - t_mux
        finally:
            bar.close()
            painter.close()
    return Path(out_path)
