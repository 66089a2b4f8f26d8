"""Evaluate generated dances: ``python evaluate.py --pred DIR --gt DIR [--music DIR] [--out DIR]``.

Writes DIR/metrics.json, DIR/metrics.md, DIR/features.npz, DIR/kinetic_features.png and DIR/beats_NAME.png (see
``eval/report.py`` for what is computed and ``eval/protocol.py`` for the conventions).
"""
from __future__ import annotations

import sys
from pathlib import Path


def main(argv=None) -> int:
    from args import evaluate_parser

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
