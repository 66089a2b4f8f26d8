#!/usr/bin/env python
"""Build the retrieval bank (``retrieval/bank.py``): the open corpus's training clips — CMU dance
mocap retargeted onto the body, unwarped, originals only (mirrors are made when drawn), held-out
clips left out — with their kinematic beats.

    python data/code/build_retrieval_bank.py --out assets/retrieval/bank.npz
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from dataset import open_corpus as oc
from retrieval.bank import DEFAULT_BANK, Bank

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_BANK)
    p.add_argument("--cmu_dir", type=Path, default=oc.DEFAULT_CMU_DIR, help="folder of CMU dance .bvh files")
    p.add_argument("--body_model", type=Path, default=None, help="SMPL-X .npz to retarget onto; default: ours")
    p.add_argument("--held_out_clips", nargs="*", default=list(oc.HELD_OUT_CLIPS), help="CMU ids left out")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        clips = oc.load_clips(args.cmu_dir, args.body_model, mirror=False)
    except oc.CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    clips = [c for c in clips if c.cmu_id not in set(args.held_out_clips)]
    bank = Bank(tuple(c.name for c in clips), tuple(c.style for c in clips), tuple(c.motion for c in clips),
                tuple(c.beats.astype(float) for c in clips))
    path = bank.save(args.out)
    frames = sum(len(m) for m in bank.motions)
    print(f"{len(bank)} clips, {frames} frames ({frames / 30 / 60:.1f} min), {path.stat().st_size / 1e6:.1f} MB → {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
