#!/usr/bin/env python
"""Build the open, beat-synchronous training set (CMU dance mocap time-warped onto the project's
annotated music) in the FineDance layout. Method and limits: ``dataset/open_corpus.py``.

    python data/code/build_open_corpus.py --out /tmp/open_corpus

Writes OUT/motion/NAME.npy (T, 315), OUT/music_wav/NAME.wav (15360 Hz 16-bit, the mono segment on two identical channels),
OUT/music_npy/NAME.npy (T, 35), OUT/label_json/NAME.json, OUT/manifest.csv, OUT/splits.json and
OUT/summary.json (pair counts, minutes, beat alignment before/after warping and chance).
``--reference`` writes music_npy as FineDance's official pre_music.py computes it from each music_wav file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from dataset import open_corpus as oc

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder (outside the repository)")
    p.add_argument("--cmu_dir", type=Path, default=oc.DEFAULT_CMU_DIR, help="folder of CMU dance .bvh files")
    p.add_argument("--music_dir", type=Path, default=oc.DEFAULT_MUSIC_DIR,
                   help="folder of music tracks, each with a beat annotation .json beside it")
    p.add_argument("--body_model", type=Path, default=None,
                   help="SMPL-X .npz (or its folder) to retarget onto; default: SMPL-X if installed, else ours")
    p.add_argument("--tracks_per_clip", type=int, default=2,
                   help="training tracks per motion clip (and as many again for its mirror)")
    p.add_argument("--test_tracks_per_clip", type=int, default=2, help="held-out tracks per held-out clip")
    p.add_argument("--held_out_tracks", nargs="*", default=list(oc.HELD_OUT_TRACKS), help="track ids kept for test")
    p.add_argument("--held_out_clips", nargs="*", default=list(oc.HELD_OUT_CLIPS), help="CMU ids kept for test")
    p.add_argument("--slope", type=float, nargs=2, default=list(oc.SLOPE_LIMITS), metavar=("MIN", "MAX"),
                   help="allowed time-scale of each warp segment (music frames per motion frame)")
    p.add_argument("--min_frames", type=int, default=oc.MIN_FRAMES, help="shortest pair kept")
    p.add_argument("--only_clips", nargs="*", default=None, help="restrict to these CMU ids (quick builds)")
    p.add_argument("--only_tracks", nargs="*", default=None, help="restrict to these track ids (quick builds)")
    p.add_argument("--overwrite", action="store_true", help="replace a corpus already in --out")
    p.add_argument("--reference", action="store_true",
                   help="write music_npy as FineDance's official pre_music.py computes it from each music_wav "
                        "file, for training by the official recipe: the 16-bit WAV read back by librosa, the "
                        "beat tracker started at librosa's tempo at 22,050 Hz (default: our features of the "
                        "decoded segment; see README, 'Two modes')")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is fastest on a busy machine: the work is many small arrays)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    if args.out.resolve().is_relative_to(ROOT):
        print(f"warning: building inside the repository ({args.out}); the corpus is data, keep it out of git",
              file=sys.stderr)
    try:
        summary = oc.build(args.out, args.cmu_dir, args.music_dir, args.body_model, args.tracks_per_clip,
                           args.test_tracks_per_clip, tuple(args.held_out_tracks), tuple(args.held_out_clips),
                           tuple(args.slope), args.min_frames,
                           tuple(args.only_clips) if args.only_clips is not None else None,
                           tuple(args.only_tracks) if args.only_tracks is not None else None,
                           args.overwrite, reference=args.reference)
    except oc.CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    print(f"corpus written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
