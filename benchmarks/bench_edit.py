"""What editing costs compared with plain generation (issue 13), measured in the same run.

    python benchmarks/bench_edit.py                   # the default model, the demo song and demo motion
    python benchmarks/bench_edit.py --steps 20 --checkpoint train-2000.pt

Times ``DanceGenerator.dance`` (features, retrieval, sampling, beat sync, foot lock; rendering costs the
same for any dance of the same length and is left out) for plain dances and for each use of editing on
the 10 s demo motion, and prints each time with its ratio to the plain dance of the same length, the
seam (the largest joint step across the edges of kept spans, against the dance's median step) and the
machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import pipeline
from body.kinematics import joints_from_6d
from motion.layout import MOTION_319

ROOT = Path(__file__).resolve().parent.parent
SONG = ROOT / "assets" / "music" / "soldiers_joy_house.mp3"
MOTION = ROOT / "assets" / "motion" / "demo_dance.npy"


def steps(generator, vector) -> np.ndarray:
    """(T, 319) → (T − 1,) the largest joint displacement from each frame to the next (metres)."""
    v = torch.from_numpy(vector)
    j = joints_from_6d(MOTION_319.rot6d(v), v[:, MOTION_319.translation], generator.rest_joints).numpy()
    return np.linalg.norm(np.diff(j, axis=0), axis=-1).max(axis=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the checkpoint's)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each case; the fastest counts")
    a = p.parse_args()
    generator = pipeline.DanceGenerator(a.checkpoint)
    seconds = pipeline.load_edit(pipeline.EditRequest(MOTION)).seconds
    cases = [   # (name, dance seconds, settings changes, edit)
        ("plain (retrieval on)", seconds, {}, None),
        ("plain (--no_retrieval)", seconds, {"retrieval": False}, None),
        ("re-dance 3-6 s (--keep 0-3,6-10)", seconds, {}, pipeline.EditRequest(MOTION, "0-3,6-10")),
        ("keep the legs (--keep_parts lower)", seconds, {}, pipeline.EditRequest(MOTION, parts="lower")),
        ("follow a path (--keep_parts root)", seconds, {}, pipeline.EditRequest(MOTION, parts="root")),
        ("plain, 20 s (--no_retrieval)", 2 * seconds, {"retrieval": False}, None),
        ("continue to 20 s (--duration 20)", 2 * seconds, {}, pipeline.EditRequest(MOTION)),
    ]
    generator.dance(SONG, pipeline.Settings(duration=2.0, steps=2))      # warm-up: first-call costs
    plain = {}
    print(f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), {platform.system()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {generator.device}")
    print(f"model: {generator.n_params:,} parameters ({generator.dtype}), {generator.checkpoint.name}; "
          f"song {SONG.name}, motion {MOTION.name} ({seconds:.0f} s)")
    for name, length, changes, edit in cases:
        settings = pipeline.Settings(duration=length, steps=a.steps, **changes)
        best, dance = float("inf"), None
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            run = generator.dance(SONG, settings, edit=edit)
            took = time.perf_counter() - t0
            if took < best:
                best, dance = took, run
        if edit is None and not settings.retrieval:
            plain[length] = best
        ratio = f"{best / plain[length]:.2f}× plain --no_retrieval" if length in plain else ""
        seam = ""
        if dance.kept is not None:
            s = steps(generator, dance.vector)
            frames = dance.kept.any(axis=1)
            edges = [e for e in np.nonzero(np.diff(frames.astype(int)))[0] + 1]
            if edges:
                seam = (f"; seam {max(s[max(0, e - 2):e + 1].max() for e in edges) * 100:.1f} cm, steps: median "
                        f"{np.median(s) * 100:.1f}, 95th percentile {np.percentile(s, 95) * 100:.1f}, "
                        f"largest {s.max() * 100:.1f} cm")
        parts = ", ".join(f"{k} {v:.2f}" for k, v in dance.timings.items())
        print(f"{name:<38} {dance.seconds:4.0f} s of dance: {best:6.2f} s {ratio} ({parts}){seam}")


if __name__ == "__main__":
    main()
