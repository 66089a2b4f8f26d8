"""Evaluate generated dances: ``python evaluate.py --pred DIR --gt DIR [--music DIR] [--out DIR]``.

Writes DIR/metrics.json, DIR/metrics.md, DIR/features.npz, DIR/kinetic_features.png and DIR/beats_NAME.png (see
``eval/report.py`` for what is computed and ``eval/protocol.py`` for the conventions).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def evaluate_parser() -> argparse.ArgumentParser:
    from args import _add_body

    p = argparse.ArgumentParser(
        prog="evaluate.py", description="FID_k/g, Div_k/g, BAS (with chance level), FSR and PFC of generated dances "
        "against ground truth, on the 22 body joints of the first 1024 frames (SPEC §8).")
    io = p.add_argument_group("input and output")
    io.add_argument("--pred", required=True, metavar="DIR", help="folder of generated motion files (.npy, .pkl, .npz)")
    io.add_argument("--gt", required=True, metavar="DIR",
                    help="folder of ground-truth motion files, or a FineDance-layout root (motion/, music_npy/)")
    io.add_argument("--music", default=None, metavar="DIR",
                    help="music of the generated dances: NAME.npy (T, 35) features or NAME.<audio> for each "
                         "NAME.* in --pred (default: PRED/music/ as generate_all.py writes it, PRED/music_npy/, "
                         "PRED/music_wav/, and beside a FineDance motion/ folder its music_npy/, music_wav/)")
    io.add_argument("--gt_music", default=None, metavar="DIR",
                    help="music of the ground truth (default: beside it, e.g. a FineDance root's music_npy/)")
    io.add_argument("--out", default=None, metavar="DIR", help="where results go (default: PRED/evaluation_PROTOCOL)")
    ev = p.add_argument_group("protocol")
    ev.add_argument("--protocol", choices=("clean", "reference"), default="clean",
                    help="clean: our fixed conventions; reference: the public scripts' (kinetic frame time 1/60, "
                         "the acceleration precedence bug, whole-song beats) for numbers comparable to papers")
    ev.add_argument("--max_frames", type=int, default=1024, help="frames evaluated from the start of each dance")
    ev.add_argument("--plot_song", default=None, metavar="NAME",
                    help="generated dance (file stem) for the beat-alignment plot (default: the first with music)")
    _add_body(p)
    return p


def main(argv=None) -> int:
    args = evaluate_parser().parse_args(argv)
    from eval.data import EvalInputError
    from eval.report import evaluate, markdown, write_report

    out = Path(args.out) if args.out else Path(args.pred) / f"evaluation_{args.protocol}"
    try:
        report = evaluate(args.pred, args.gt, music=args.music, gt_music=args.gt_music, protocol=args.protocol,
                          body_model=args.body_model, max_frames=args.max_frames, plot_song=args.plot_song)
        written = write_report(report, out)
    except EvalInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(report).split("\n## Per dance")[0].rstrip())
    print("\nwritten: " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
