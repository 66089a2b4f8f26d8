"""Figures of an evaluation (matplotlib, Agg backend; files are PNG at 110 dpi).

- :func:`feature_distributions`: the three kinetic quantities per joint (median and interquartile
  band over dances, generated vs. ground truth, log scale) and the mean of each geometric relation.
- :func:`beat_timeline`: one dance's mean joint speed (raw and σ = 5 smoothed), its motion beats
  (speed minima) and the music beats it is scored against.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from body.skeleton import JOINT_NAMES, N_BODY_JOINTS

COLORS = {"generated": "#d95f02", "ground truth": "#1b9e77"}
KINETIC_TITLES = ("horizontal kinetic energy (m²/s²)", "vertical kinetic energy (m²/s²)",
                  "energy expenditure (m/s²)")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _band(ax, x, values: np.ndarray, label: str):
    color = COLORS.get(label, None)
    lo, mid, hi = np.percentile(values, [25, 50, 75], axis=0)
    ax.plot(x, mid, "o-", ms=3, lw=1.2, color=color, label=f"{label} (median, n={len(values)})")
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)


def feature_distributions(pred_kinetic, gt_kinetic, pred_geometric, gt_geometric, path: str | os.PathLike,
                          title: str = "") -> Path:
    """Kinetic (n, 66) and geometric (n, 32) features of both sets → one PNG with four panels."""
    from eval.features import GEOMETRIC_FEATURES

    plt = _pyplot()
    fig, axes = plt.subplots(4, 1, figsize=(12, 13))
    x = np.arange(N_BODY_JOINTS)
    for q, ax in enumerate(axes[:3]):
        for label, feats in (("ground truth", gt_kinetic), ("generated", pred_kinetic)):
            values = np.asarray(feats).reshape(len(feats), N_BODY_JOINTS, 3)[:, :, q]
            _band(ax, x, np.maximum(values, 1e-6), label)
        ax.set_yscale("log")
        ax.set_title(KINETIC_TITLES[q], fontsize=10)
        ax.set_xticks(x, [JOINT_NAMES[i] for i in x], rotation=40, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    g = np.arange(len(GEOMETRIC_FEATURES))
    width = 0.4
    for k, (label, feats) in enumerate((("ground truth", gt_geometric), ("generated", pred_geometric))):
        axes[3].bar(g + (k - 0.5) * width, np.asarray(feats).mean(axis=0), width, color=COLORS[label], label=label)
    names = [f"{i}:{kind} {'/'.join(j[:2] if kind != 'fast' else j)}"
             for i, (kind, j, _) in enumerate(GEOMETRIC_FEATURES)]
    axes[3].set_xticks(g, names, rotation=60, ha="right", fontsize=6)
    axes[3].set_ylabel("fraction of frames")
    axes[3].set_title("geometric relations (mean over dances)", fontsize=10)
    axes[3].legend(fontsize=8)
    fig.suptitle(f"Feature distributions, generated vs. ground truth {('— ' + title) if title else ''}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def beat_timeline(timeline: dict, path: str | os.PathLike, fps: int = 30) -> Path:
    """One dance's speed curve, motion beats and music beats → PNG. ``timeline`` as built by
    ``eval.report``: name, speed (T,), smoothed (T,), motion_beats, music_beats, bas, chance."""
    plt = _pyplot()
    speed, smooth = np.asarray(timeline["speed"]) * fps, np.asarray(timeline["smoothed"]) * fps
    t = np.arange(len(speed)) / fps
    fig, ax = plt.subplots(figsize=(14, 4))
    for i, b in enumerate(np.asarray(timeline["music_beats"], float)):
        ax.axvline(b / fps, color="#7570b3", lw=0.8, alpha=0.6, label="music beats" if i == 0 else None)
    ax.plot(t, speed, color="0.7", lw=0.8, label="mean joint speed")
    ax.plot(t, smooth, color="#1b9e77", lw=1.5, label="smoothed (σ = 5 frames)")
    mb = np.asarray(timeline["motion_beats"], int)
    if mb.size:
        ax.plot(mb / fps, smooth[mb], "v", color="#d95f02", ms=6, label="motion beats (speed minima)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("speed (m/s)")
    ax.set_xlim(0, max(t[-1], 1 / fps))
    ax.set_title(f"{timeline['name']}: BAS {timeline['bas']:.3f} (chance {timeline['chance']:.3f})", fontsize=10)
    ax.legend(loc="upper right", fontsize=8, ncol=4)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
