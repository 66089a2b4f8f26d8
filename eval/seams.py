"""Seams of long-song sampling: how much the joins between 4 s windows show.

    python -m eval.seams --pred DIR [--body_model FILE]

A dance made of windows every 60 frames is cross-faded over each overlap (frames 60·i … 60·i + 59,
i ≥ 1). Where two windows disagree, the fade adds their difference over 59 frames to the velocity,
and the acceleration jumps where a fade begins and ends. The **seam ratio** is the mean joint
acceleration (22 body joints, m/frame²) on the frames at fade edges (60·i and 60·i + 59, and the frame
on each side) over the mean on all frames: 1 = the joins do not show, higher = they do.

Only meaningful for dances that were not re-timed (no beat sync, which moves the joins) and whose
windows start at frame 0 every 60 frames (both samplers here).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

STRIDE = 60


def seam_ratio(joints: np.ndarray, stride: int = STRIDE) -> float:
    """(T, J, 3) joint positions → mean acceleration at fade edges / mean acceleration (NaN if no seam)."""
    acc = np.linalg.norm(joints[2:] - 2 * joints[1:-1] + joints[:-2], axis=-1).mean(-1)   # (T − 2,) at frames 1..T−2
    edges = set()
    for start in range(stride, len(joints) - stride, stride):
        for edge in (start, start + stride - 1):
            edges.update(f - 1 for f in (edge - 1, edge, edge + 1) if 1 <= f <= len(joints) - 2)
    if not edges or acc.mean() == 0:
        return float("nan")
    return float(acc[sorted(edges)].mean() / acc.mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.seams", description=__doc__.splitlines()[0])
    p.add_argument("--pred", required=True, help="folder of generated (T, 319) .npy dances")
    p.add_argument("--body_model", default=None)
    a = p.parse_args(argv)
    from body.body_model import BodyModel
    from sync.beats import body_joints

    rest = BodyModel(a.body_model).rest_joints
    ratios = {}
    for path in sorted(Path(a.pred).glob("*.npy")):
        ratios[path.stem] = seam_ratio(body_joints(np.load(path), rest))
    if not ratios:
        print(f"error: {a.pred}: no .npy dances", file=sys.stderr)
        return 1
    for name, r in ratios.items():
        print(f"{name}: {r:.3f}")
    values = [r for r in ratios.values() if np.isfinite(r)]
    print(f"mean seam ratio over {len(values)} dances: {np.mean(values):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
