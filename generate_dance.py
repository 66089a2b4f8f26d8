"""Song → dance video: ``python generate_dance.py song.mp3`` → ``output/song_dance.mp4``."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from args import generate_parser

STAGES = ("features", "retrieval", "sampling", "beat_sync", "foot_lock", "hands", "meshes", "render", "mux")


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
    from atomic import refuse_existing
    from exporters import ExportError, parse_formats

    if args.output and len(args.songs) > 1:
        print("error: --output names one video; with several songs use --out_dir", file=sys.stderr)
        return 1
    try:
        edit = pipeline.edit_from_args(args)     # --edit MOTION: read and checked before any work
        settings = pipeline.settings_from_args(args, edit=edit)
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
            motion = [".npy", ".npz"] if args.save_motion else []
            refuse_existing([out] + [out.with_suffix(ext) for ext in motion + [f".{fmt}" for fmt in formats]],
                            args.overwrite)
            pipeline.check_writable(out.parent)
            targets.append((song, out))
        generator = pipeline.DanceGenerator(args.checkpoint, device=args.device, body=args.body_model)
    except (pipeline.GenerationError, ExportError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    note = pipeline.style_note(generator, settings, edit=edit is not None)
    if note:
        print(f"note: {note}")

    failed = 0
    for song, out in targets:
        bars = StageBars(song.name)
        t0 = time.perf_counter()
        try:
            files = pipeline.make_dance_files(generator, song, out, settings, mode=args.mode,
                                              save_motion=args.save_motion, exports=formats, ground=args.ground,
                                              overwrite=args.overwrite, platform=args.gl, progress=bars,
                                              edit=edit)
        except (pipeline.GenerationError, ValueError, RuntimeError, OSError) as e:
            bars.close()
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        bars.close()
        t = files.dance.timings
        summary = ", ".join(f"{k} {t[k]:.1f}s" for k in STAGES if k in t)
        print(f"{out}  ({files.dance.seconds:.1f} s of dance; {summary}; total {time.perf_counter() - t0:.1f}s)")
        if files.dance.beat_note:
            print(f"  note: {files.dance.beat_note}")
        if files.dance.hands is not None and files.dance.hands.note:
            print(f"  note: {files.dance.hands.note}")
        for p in files.motion:
            if p not in files.exports:
                print(f"  motion: {p}")
        for p in files.exports:
            print(f"  export: {p}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
