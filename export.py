"""Motion file → animation tools: ``python export.py dance.npy --format bvh,glb`` → dance.bvh, dance.glb."""
from __future__ import annotations

import sys
from pathlib import Path

from args import export_parser


def output_paths(motion: Path, formats: list[str], out: str | None) -> list[Path]:
    """Where each format goes: --out, else beside the motion with its stem (never over the input)."""
    if out is not None:
        return [Path(out)]
    paths = []
    for fmt in formats:
        path = motion.with_name(f"{motion.stem}.{fmt}")
        if path.resolve() == motion.resolve():
            path = motion.with_name(f"{motion.stem}_amass.{fmt}")
        paths.append(path)
    return paths


def main(argv=None) -> int:
    args = export_parser().parse_args(argv)
    from atomic import refuse_existing
    from body.body_model import BodyModel, BodyModelError
    from exporters import ExportError, export_motion, parse_formats
    from motion.formats import MotionFormatError, load_motion

    motion_path = Path(args.motion)
    try:
        formats = parse_formats(args.export)
        if args.out is not None and len(formats) > 1:
            raise ExportError(f"--out names one file, but {len(formats)} formats were asked for; "
                              "drop --out to write them beside the motion")
        targets = output_paths(motion_path, formats, args.out)
        for path in targets:
            if path.resolve() == motion_path.resolve():
                raise ExportError(f"{path}: would overwrite the input motion")
        refuse_existing(targets, args.overwrite)
        motion = load_motion(motion_path)
        body = BodyModel(args.body_model)
        for fmt, path in zip(formats, targets):
            export_motion(motion, path, fmt, body, ground=args.ground)
            print(f"{path}  ({fmt}, {motion.duration:.1f} s, body: {body.name})")
    except (ExportError, MotionFormatError, BodyModelError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
