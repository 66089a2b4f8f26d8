"""Song → dance video: ``python generate_dance.py song.mp3`` → ``output/song_dance.mp4``."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from args import generate_parser

STAGES = ("features", "sampling", "beat_sync", "meshes", "render", "mux")


class StageBars:
    """One tqdm bar per stage, created when the stage reports first."""

    def __init__(self, song: str):
        self.song, self.bars = song, {}

    def __call__(self, stage: str, done: int, total: int):
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=f"{stage:>8} {self.song}", unit="step", leave=False)
        bar.n = done
        bar.refresh()

    def close(self):
        for bar in self.bars.values():
            bar.close()


def main(argv=None) -> int:
    args = generate_parser().parse_args(argv)
    import pipeline
    from body.body_model import BodyModel, BodyModelError
    from exporters import ExportError, export_all, parse_formats
    from model.checkpoint import CheckpointError

    if args.output and len(args.songs) > 1:
        print("error: --output names one video; with several songs use --out_dir", file=sys.stderr)
        return 1
    try:
        settings = pipeline.Settings(duration=pipeline.parse_duration(args.duration), seed=args.seed,
                                     steps=args.steps, guidance=args.guidance, beat_sync=args.beat_sync)
        formats = parse_formats(args.export) if args.export else []
        targets = []
        for song in map(Path, args.songs):
            if not song.is_file():
                raise pipeline.GenerationError(f"{song}: no such file")
            out = Path(args.output) if args.output else Path(args.out_dir) / f"{song.stem}_dance.mp4"
            if out.suffix.lower() != ".mp4":
                raise pipeline.GenerationError(f"{out}: the video must be an .mp4 file")
            if song.exists() and out.resolve() == song.resolve():
                raise pipeline.GenerationError(f"{out}: would overwrite the song itself")
            if out.exists() and not args.overwrite:
                raise pipeline.GenerationError(f"{out}: exists; pass --overwrite to replace it")
            for export in (out.with_suffix(f".{fmt}") for fmt in formats):
                if export.exists() and not args.overwrite:
                    raise pipeline.GenerationError(f"{export}: exists; pass --overwrite to replace it")
            pipeline.check_writable(out.parent)
            targets.append((song, out))
        generator = pipeline.DanceGenerator(args.checkpoint, device=args.device, body_model=args.body_model)
        body = BodyModel(args.body_model)
    except (pipeline.GenerationError, CheckpointError, BodyModelError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    failed = 0
    for song, out in targets:
        bars = StageBars(song.name)
        t0 = time.perf_counter()
        try:
            dance = generator.dance(song, settings, progress=bars)
            pipeline.render_dance(dance, out, body, mode=args.mode, overwrite=args.overwrite, platform=args.gl,
                                  on_frame=lambda done, total: bars("render", done, total), progress=False)
            saved = pipeline.save_dance_motion(dance, out.with_suffix("")) if args.save_motion else []
            # --export npz writes the z-up .npz over --save_motion's y-up one; both read back the same.
            exported = export_all(dance.motion, out.with_suffix(""), formats, body, ground=args.ground)
        except (pipeline.GenerationError, ValueError, RuntimeError, OSError) as e:
            bars.close()
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        bars.close()
        t = dance.timings
        summary = ", ".join(f"{k} {t[k]:.1f}s" for k in STAGES if k in t)
        print(f"{out}  ({dance.seconds:.1f} s of dance; {summary}; total {time.perf_counter() - t0:.1f}s)")
        for p in saved:
            if p not in exported:
                print(f"  motion: {p}")
        for p in exported:
            print(f"  export: {p}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
