"""Memory benchmark: peak RSS and time of whole-song sampling against song length (issue 14).

    python benchmarks/memory.py [--minutes 1,5,10,20] [--models default,official] [--steps 2] [--chunk N]

Each (model, length) runs in a fresh process, so its peak RSS (``ru_maxrss``) is that case's alone:
model loading, the music windows, the sampler's state and the network's activations and caches.
Models: ``default`` = assets/checkpoints/default.pt in float32 (what ``generate_dance.py`` uses on a
CPU); ``official`` = the official-size network (``ModelConfig.official()``, 94 M parameters) with
random weights in bf16 (memory and speed do not depend on the weights). The music features are
SYNTHETIC (seeded Gaussian features with a beat every 15 frames): the benchmark measures the sampler
and the network, not feature extraction. ``--steps`` DDIM steps (default 2, to keep 20 minutes
affordable on a small CPU; memory does not depend on the number of steps, time grows linearly, so
the time for 50 steps is about 25× the printed one). ``--chunk 100000`` gives the old one-batch
behaviour for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def run_case(model_name: str, minutes: float, steps: int, chunk: int | None) -> dict:
    """One case, in this process: → {'model', 'minutes', 'peak_gb', 'loaded_gb', 'seconds', ...}."""
    import torch

    from model.diffusion import GaussianDiffusion
    from model.network import ModelConfig, SeqModel

    if model_name == "default":
        from model.checkpoint import load_checkpoint

        model = load_checkpoint(ROOT / "assets" / "checkpoints" / "default.pt", map_location="cpu").model
        model = model.float().eval()
    else:
        torch.manual_seed(0)
        model = SeqModel(ModelConfig.official()).eval().to(torch.bfloat16)
    loaded = peak_rss_gb()
    frames = int(minutes * 60 * 30)
    g = torch.Generator().manual_seed(0)
    music = torch.randn(frames, 35, generator=g)
    music[:, 33:] = 0
    music[::15, 34] = 1                              # a beat every 15 frames (120 BPM)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = GaussianDiffusion().sample_long(model, music, steps=steps, generator=0, chunk=chunk)
    seconds = time.perf_counter() - t0
    assert out.shape == (frames, 319) and torch.isfinite(out).all()
    return {"model": model_name, "minutes": minutes, "frames": frames, "steps": steps,
            "chunk": chunk, "loaded_gb": round(loaded, 3), "peak_gb": round(peak_rss_gb(), 3),
            "seconds": round(seconds, 1)}


def machine() -> str:
    import torch

    mem = ""
    try:
        kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 ** 2:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{mem}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s) (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", default="1,5,10,20")
    p.add_argument("--models", default="default,official")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--chunk", type=int, default=None, help="windows per network call (default: the sampler's)")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)     # MODEL:MINUTES, run in this process
    a = p.parse_args()
    if a.case:
        model_name, minutes = a.case.split(":")
        print(json.dumps(run_case(model_name, float(minutes), a.steps, a.chunk)))
        return 0
    print(f"machine: {machine()}")
    print(f"{'model':>8} {'minutes':>7} {'windows':>7} {'loaded GB':>9} {'peak GB':>8} {'time s':>7}  ({a.steps} steps)")
    for model_name in a.models.split(","):
        for minutes in a.minutes.split(","):
            cmd = [sys.executable, __file__, "--case", f"{model_name}:{minutes}", "--steps", str(a.steps)]
            if a.chunk:
                cmd += ["--chunk", str(a.chunk)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            if proc.returncode != 0:
                print(f"{model_name:>8} {minutes:>7}  failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            windows = 1 + -(-max(0, r["frames"] - 120) // 60)
            print(f"{model_name:>8} {minutes:>7} {windows:>7} {r['loaded_gb']:>9.2f} {r['peak_gb']:>8.2f} "
                  f"{r['seconds']:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
