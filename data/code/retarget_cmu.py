#!/usr/bin/env python
"""Retarget a folder of CMU dance BVH files to FineDance-layout SMPL-X motion (SPEC §3).

Every ``*.bvh`` in the input folder becomes ``<name>.npy``, a (T, 315) float32 array at 30 fps
(root translation in metres, then 52 joints × 6-D rotation), in the output folder, with a
``manifest.csv`` describing each clip. See ``dataset/retarget.py`` for the method. The motion is
fitted to the rest skeleton of ``--body`` and its translation stored for the canonical leg length,
the convention of the project's motion files (``body/body_model.py``).

    python data/code/retarget_cmu.py --out /tmp/cmu_smplx [INPUT_DIR] [--mirror]

INPUT_DIR defaults to the shared CMU corpus beside the repository (``../shared/data/cmu_dance``).
Files that fail are reported at the end and make the exit status 1; the others are still written.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from tqdm import tqdm

from body.body_model import CANONICAL_LEG_LENGTH
from dataset import retarget
from motion.bvh import BvhError
from motion.formats import save_finedance_npy

ROOT = Path(__file__).resolve().parents[2]

DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "cmu_dance"
DEFAULT_BODY = ROOT / "assets" / "body" / "anny_smplx_neutral.npz"
MANIFEST_FIELDS = ("file", "source", "variant", "fps_in", "fps_out", "frames_in", "frames", "seconds",
                   "translation_scale", "ground_shift_m", "mirrored", "notes")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", nargs="?", type=Path, default=DEFAULT_INPUT, help="folder of .bvh files")
    p.add_argument("--out", type=Path, required=True, help="output folder for .npy files and manifest.csv")
    p.add_argument("--body", type=Path, default=DEFAULT_BODY,
                   help="SMPL-X-style body model .npz (v_template, J_regressor) giving the rest skeleton")
    p.add_argument("--target-leg-length", type=float, default=CANONICAL_LEG_LENGTH,
                   help="hip-joint height (m) of the body the translation is stored for; the project's "
                        "bodies rescale it to their own legs when posed (body/body_model.py)")
    p.add_argument("--mirror", action="store_true", help="also write a left/right mirrored copy <name>_mirror.npy")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.input.is_dir():
        print(f"error: input folder {args.input} does not exist", file=sys.stderr)
        return 2
    files = sorted(args.input.glob("*.bvh"))
    if not files:
        print(f"error: no .bvh files in {args.input}", file=sys.stderr)
        return 2
    if not args.body.is_file():
        print(f"error: body model {args.body} not found; bake it (data/code/bake_default_body.py) "
              "or pass --body", file=sys.stderr)
        return 2
    body = retarget.RestBody.from_model_file(args.body)
    args.out.mkdir(parents=True, exist_ok=True)

    rows, failed = [], []
    for path in tqdm(files, desc="retargeting", unit="file"):
        try:
            result = retarget.retarget_file(path, body, target_leg_length=args.target_leg_length)
        except (BvhError, retarget.RetargetError, KeyError) as e:
            failed.append(f"{path.name}: {e}")
            continue
        versions = [(path.stem, result.motion, False)]
        if args.mirror:
            versions.append((f"{path.stem}_mirror", retarget.mirror_motion(result.motion), True))
        for stem, motion, mirrored in versions:
            save_finedance_npy(motion, args.out / f"{stem}.npy")
            rows.append({"file": f"{stem}.npy", "source": path.name, "variant": result.variant,
                         "fps_in": f"{result.fps_in:g}", "fps_out": f"{motion.fps:g}",
                         "frames_in": result.frames_in, "frames": len(motion),
                         "seconds": f"{len(motion) / motion.fps:.2f}",
                         "translation_scale": f"{result.scale:.4f}",
                         "ground_shift_m": f"{result.ground_shift:+.3f}",
                         "mirrored": int(mirrored), "notes": "; ".join(result.notes)})

    with open(args.out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    seconds = sum(float(r["seconds"]) for r in rows if not r["mirrored"])
    print(f"{len(rows)} files written to {args.out} ({seconds / 60:.2f} min of distinct motion); "
          f"manifest: {args.out / 'manifest.csv'}")
    if failed:
        print(f"{len(failed)} file(s) failed:", *failed, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
