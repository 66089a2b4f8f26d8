"""Rendering benchmark: seconds per frame and wall time for 900 frames (30 s) at 1200×1200.

    python benchmarks/bench_render.py [--frames 900] [--mode smplx]

Renders the bundled demo clip, looped to the requested length, with the demo song, through the same
``render_motion`` that render.py uses (posing, painting, H.264 encoding and the audio mux included).
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from body.body_model import BodyModel
from motion.formats import Motion, load_motion
from renderer.render_motion import render_motion

ROOT = Path(__file__).resolve().parent.parent


def looped(motion: Motion, frames: int) -> Motion:
    idx = np.arange(frames) % len(motion)
    return Motion(poses=motion.poses[idx], trans=motion.trans[idx])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=900)
    p.add_argument("--mode", default="smplx", choices=("smplx", "skeleton"))
    a = p.parse_args()
    motion = looped(load_motion(ROOT / "assets" / "motion" / "demo_dance.npy"), a.frames)
    t0 = time.perf_counter()
    body = BodyModel()
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        render_motion(motion, Path(d) / "bench.mp4", body, audio=ROOT / "assets" / "music" / "soldiers_joy_house.mp3",
                      mode=a.mode, progress=True)
    t2 = time.perf_counter()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}")
    print(f"body: {body.name}, {body.n_vertices} vertices; load {t1 - t0:.2f} s")
    print(f"{a.mode}: {a.frames} frames at 1200x1200 in {t2 - t1:.1f} s "
          f"({(t2 - t1) / a.frames * 1000:.1f} ms/frame, render + encode + mux)")


if __name__ == "__main__":
    main()
