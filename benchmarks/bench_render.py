"""Rendering benchmark: seconds per frame and wall time for 900 frames (30 s) at 1200×1200.

    python benchmarks/bench_render.py [--frames 900] [--mode smplx]

Renders the bundled demo clip, looped to the requested length, with the demo song, through the same
``render_motion`` that render.py uses (posing, painting, H.264 encoding and the audio mux included),
then times ffmpeg alone encoding 900 frames of the same size (``encode_reference.py``) and prints the
ratio, which carries from machine to machine better than seconds do (target: at most 3).
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
from encode_reference import FRAMES, cpu_seconds, reference_encode
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
    t1, c1 = time.perf_counter(), cpu_seconds()
    timings = {}
    with tempfile.TemporaryDirectory() as d:
        render_motion(motion, Path(d) / "bench.mp4", body, audio=ROOT / "assets" / "music" / "soldiers_joy_house.mp3",
                      mode=a.mode, progress=True, timings=timings)
        t2, c2 = time.perf_counter(), cpu_seconds()
        encode, encode_cpu = reference_encode(Path(d) / "bench.mp4")
    cpu = platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}")
    print(f"body: {body.name}, {body.n_vertices} vertices; load {t1 - t0:.2f} s")
    print(f"{a.mode}: {a.frames} frames at 1200x1200 in {t2 - t1:.1f} s "
          f"({(t2 - t1) / a.frames * 1000:.1f} ms/frame, render + encode + mux: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + ")")
    per_900, cpu_900 = (t2 - t1) / a.frames * FRAMES, (c2 - c1) / a.frames * FRAMES
    print(f"ffmpeg alone encodes {FRAMES} frames of 1200x1200 in {encode:.1f} s ({encode_cpu:.1f} CPU-s); render + "
          f"encode + mux of {FRAMES} frames takes {per_900 / encode:.2f}x that (target: at most 3x), "
          f"{cpu_900 / encode_cpu:.2f}x its CPU time ({cpu_900:.1f} CPU-s)")


if __name__ == "__main__":
    main()
