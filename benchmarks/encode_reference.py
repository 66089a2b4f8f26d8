"""The yardstick of the speed benchmarks: ffmpeg alone encoding 900 frames of 1200×1200.

Times differ a lot between machines, so ``bench_render.py`` and ``bench_generate.py`` report their
times as a ratio to this encode, measured in the same run: the same H.264 settings as our videos
(``renderer.video.VideoWriter``: libx264 veryfast, CRF 20, yuv420p), the frames piped in from memory,
no audio. The frames are real ones: the first 30 of the video just rendered, cycled, so the encoder
sees the content it sees when we render.
"""
from __future__ import annotations

import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from renderer.video import VideoWriter

FRAMES = 900


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children (ffmpeg) so far. On a busy
    machine wall times swing with the other load; CPU time much less."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def reference_encode(video: str | Path, frames: int = FRAMES, distinct: int = 30) -> tuple[float, float]:
    """(wall, CPU) seconds ffmpeg takes to encode ``frames`` frames the size of ``video``'s (its first
    ``distinct`` frames, cycled), the frames piped from this process as the renderer pipes them."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(video)], capture_output=True, text=True, check=True)
    width, height = (int(x) for x in probe.stdout.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-frames:v", str(distinct), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    images = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    with tempfile.TemporaryDirectory() as d:
        t0, c0 = time.perf_counter(), cpu_seconds()
        with VideoWriter(Path(d) / "reference.mp4", width, height, frames) as writer:
            for i in range(frames):
                writer.write(images[i % len(images)])
        return time.perf_counter() - t0, cpu_seconds() - c0
