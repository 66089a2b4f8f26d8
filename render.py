"""Render saved motions to video: ``python render.py --modir eval/motions --mode smplx``."""
from __future__ import annotations

import sys
from pathlib import Path

from args import render_parser


def main(argv=None) -> int:
    args = render_parser().parse_args(argv)
    from renderer.batch import render_files  # after parsing, so --help is instant

    try:
        result = render_files(Path(args.modir), out_dir=args.out_dir, music=args.music, mode=args.mode,
                              body_model=args.body_model, platform=args.gl, overwrite=args.overwrite)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{len(result.written)} rendered, {len(result.failed)} failed")
    for f, why in result.failed:
        print(f"failed: {why}", file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
