"""Sampling benchmark: a 30 s song (14 windows × 50 DDIM steps, guidance 2) with the OFFICIAL-size network.

    python benchmarks/bench_sampling.py [--checkpoint train-2000.pt] [--dtype bf16|fp32] [--steps 50]

Random weights unless a checkpoint is given (speed does not depend on the weights). Prints the time per
step, the total, the peak memory, and how far bf16 is from fp32: the guided x0 prediction of both for the
same inputs at several diffusion steps (relative RMS error and max abs error).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import torch

from audio.music import song_features
from model.checkpoint import load_model
from model.diffusion import GaussianDiffusion, song_windows
from model.network import ModelConfig, SeqModel

ROOT = Path(__file__).resolve().parent.parent

SONG = ROOT / "assets" / "music" / "soldiers_joy_house.mp3"


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def build(checkpoint, dtype):
    if checkpoint:
        return load_model(checkpoint, dtype=dtype)
    torch.manual_seed(0)
    return SeqModel(ModelConfig.official()).eval().to(dtype)


@torch.inference_mode()
def compare_precision(checkpoint, music):
    """Guided x0 predictions of fp32 and bf16 models for identical inputs."""
    fp32, bf16 = build(checkpoint, torch.float32), build(checkpoint, torch.bfloat16)
    windows = song_windows(music, 120, 60)[:4]
    g = torch.Generator().manual_seed(1)
    rows = []
    for t in (999, 499, 99, 19):
        x = torch.randn(windows.shape[0], 120, 319, generator=g)
        a = fp32.denoise(x, t, fp32.encode_condition(windows), 2.0)
        b = bf16.denoise(x, t, bf16.encode_condition(windows), 2.0).float()
        rel = ((a - b).pow(2).mean() / a.pow(2).mean()).sqrt().item()
        rows.append((t, rel, (a - b).abs().max().item(), a.abs().max().item()))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--dtype", default="bf16", choices=("bf16", "fp32"))
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--skip_precision", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    features, _ = song_features(SONG, max_seconds=34)
    music = torch.from_numpy(features)
    model = build(a.checkpoint, dtype)
    diffusion = GaussianDiffusion()
    step_times = []
    last = [time.perf_counter()]

    def tick(done, total):
        now = time.perf_counter()
        step_times.append(now - last[0])
        last[0] = now

    t0 = time.perf_counter()
    last[0] = t0
    motion = diffusion.sample_long(model, music, n_frames=900, steps=a.steps, guidance_weight=2.0, generator=0,
                                   progress=tick)
    total = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    print(f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"model: {n_params:,} parameters, {a.dtype}; song: {motion.shape[0]} frames = 14 windows, {a.steps} steps, "
          f"guidance 2 (guided and unguided halves in one batch)")
    print(f"time per step: mean {sum(step_times) / len(step_times):.3f} s, first {step_times[0]:.3f} s, "
          f"max {max(step_times):.3f} s")
    print(f"total sampling: {total:.1f} s; peak memory (RSS): {peak_rss_gb():.2f} GB")
    if not a.skip_precision:
        print("bf16 vs fp32, guided x0 prediction for the same inputs (4 windows):")
        for t, rel, err, scale in compare_precision(a.checkpoint, music):
            print(f"  t={t:4d}: relative RMS error {rel:.4f}, max abs error {err:.4f} (max |x0| {scale:.2f})")


if __name__ == "__main__":
    main()
