"""End-to-end benchmark of generate_dance.py's path: the 30 s demo song → 1200×1200 video.

    python benchmarks/bench_generate.py                 # the default model
    python benchmarks/bench_generate.py --official      # the official-size network (random weights)
    python benchmarks/bench_generate.py --checkpoint train-2000.pt

Prints the wall time of each stage (features, sampling, meshes, render, mux), the total, the peak memory
and the machine, and the total as a ratio to ffmpeg alone encoding 900 frames of the same size in the
same run (``encode_reference.py``; target for 30 s of dance: at most 5). Uses pipeline.py exactly as the
command line does.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import pipeline
from body.body_model import BodyModel
from encode_reference import FRAMES, reference_encode

ROOT = Path(__file__).resolve().parent.parent

SONG = ROOT / "assets" / "music" / "soldiers_joy_house.mp3"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--official", action="store_true", help="official-size network with random weights")
    p.add_argument("--duration", type=float, default=30.0)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = a.checkpoint
        if a.official:
            import torch

            from model.checkpoint import save_checkpoint
            from model.network import ModelConfig, SeqModel

            torch.manual_seed(0)
            checkpoint = Path(tmp) / "official_random.pt"
            save_checkpoint(checkpoint, SeqModel(ModelConfig.official()))
        t0 = time.perf_counter()
        generator = pipeline.DanceGenerator(checkpoint)
        body = BodyModel()
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        dance = generator.dance(SONG, pipeline.Settings(duration=a.duration))
        pipeline.render_dance(dance, Path(tmp) / "bench.mp4", body, progress=False)
        total = time.perf_counter() - t0
        encode, _ = reference_encode(Path(tmp) / "bench.mp4")
    t = dance.timings
    print(f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), {platform.system()}")
    print(f"model: {generator.n_params:,} parameters ({generator.dtype}), {generator.checkpoint.name}; "
          f"load {t_load:.1f} s (model + body, not counted below)")
    print(f"{dance.seconds:.0f} s of dance: " + ", ".join(f"{k} {t[k]:.1f} s" for k in
                                                         ("features", "sampling", "meshes", "render", "mux")))
    print(f"total {total:.1f} s; peak memory (RSS) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GB")
    print(f"ffmpeg alone encodes {FRAMES} frames of 1200x1200 in {encode:.1f} s; this dance took {total / encode:.2f}x "
          f"that (target for 30 s of dance: at most 5x)")


if __name__ == "__main__":
    main()
