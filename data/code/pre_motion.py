#!/usr/bin/env python
"""Motion preprocessing: FineDance (T, 315) motion → (T, 319) with foot contacts in front (SPEC §3).

    python data/code/pre_motion.py --root data/finedance [--out DIR] [--body_model PATH] [--force]

Contacts come from ``dataset.finedance.foot_contacts`` (the function the dataset loader and the
diffusion losses use): SMPL-X joints 7, 8, 10, 11 by forward kinematics on the body's rest joints,
contact when the joint moves less than 0.01 m to the next frame, the last frame a contact. The body
is the default one (SMPL-X if installed, else ours) unless ``--body_model``.

By default the files in ROOT/motion are rewritten in place (a (T, 319) file still holds the whole
(T, 315) motion, and the dataset loader reads either width); ``--out`` writes elsewhere instead.
Files that are already (T, 319) are left alone unless ``--force`` recomputes their contacts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from body.skeleton import MOTION_DIM, MOTION_DIM_315
from motion.layout import MOTION_319
from atomic import atomic_write
from dataset.finedance import DatasetError, default_rest_joints, with_contacts

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--root", type=Path, default=ROOT / "data" / "finedance", help="FineDance root (holds motion/)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: ROOT/motion, in place)")
    p.add_argument("--body_model", type=Path, default=None, help="SMPL-X .npz (or folder) for the rest joints")
    p.add_argument("--force", action="store_true", help="recompute contacts of files that already have them")
    return p.parse_args(argv)


def convert_folder(src: Path, out: Path, rest_joints, force: bool = False, progress: bool = True) -> dict:
    """Convert every .npy of ``src`` into ``out``; returns counts. Raises DatasetError naming a bad file."""
    files = sorted(src.glob("*.npy"))
    if not files:
        raise DatasetError(f"{src}: no .npy motion files")
    counts = {"converted": 0, "kept": 0}
    for path in tqdm(files, desc="foot contacts", unit="file", disable=not progress):
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as e:
            raise DatasetError(f"{path}: not a readable .npy array ({e})") from None
        if a.ndim != 2 or a.shape[1] not in (MOTION_DIM_315, MOTION_DIM):
            raise DatasetError(f"{path}: shape {a.shape}; expected (T, {MOTION_DIM_315}) or (T, {MOTION_DIM})")
        if not np.isfinite(a).all():
            raise DatasetError(f"{path}: contains NaN or infinite values")
        if a.shape[1] == MOTION_DIM and not force:
            if out.resolve() != src.resolve():
                atomic_write(out / path.name, lambda f: np.save(f, a.astype(np.float32)))
            counts["kept"] += 1
            continue
        motion315 = a[:, MOTION_319.motion] if a.shape[1] == MOTION_DIM else a
        atomic_write(out / path.name, lambda f: np.save(f, with_contacts(motion315, rest_joints)))
        counts["converted"] += 1
    return counts


def main(argv=None) -> int:
    args = parse_args(argv)
    src = args.root / "motion"
    if not src.is_dir():
        print(f"error: {src} not found (pass --root, the folder that holds motion/)", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else src
    try:
        counts = convert_folder(src, out, default_rest_joints(args.body_model), args.force)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{counts['converted']} file(s) converted to (T, {MOTION_DIM}), {counts['kept']} already had contacts; "
          f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
