"""Generate the test set: ``python generate_all.py --motion_save_dir DIR --save_motions``.

Dances for every test slice (``data/code/slice_music_motion.py``'s output, the default
``--data_dir data/test_slices``), every test song of a FineDance-layout root, or every audio file of a
folder; one model, resumable, deterministic. ``accelerate launch generate_all.py …`` shares the jobs
among processes/GPUs. Output format and job rules: ``eval/batch.py``. Then:
``python evaluate.py --pred DIR --gt data/test_slices``.
"""
from __future__ import annotations

import sys
import time



def main(argv=None) -> int:
    from args import generate_all_parser

    args = generate_all_parser().parse_args(argv)
    import pipeline
    from eval import batch
    from eval.protocol import FPS, MAX_FRAMES

    if not args.save_motions:
        print("error: nothing to do: pass --save_motions (motions are generate_all.py's only output)", file=sys.stderr)
        return 2
    try:
        settings = pipeline.settings_from_args(args, auto_duration=MAX_FRAMES / FPS)
        jobs = batch.list_jobs(args.data_dir, args.samples_per_song, args.seed, args.finedance_split)
        out = pipeline.check_writable(args.motion_save_dir)
    except (batch.JobListError, pipeline.GenerationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    # Several processes on CPUs (accelerate launch --cpu, torchrun without GPUs) share jobs over gloo.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available())
    if state.is_main_process:
        batch.write_manifest(out, jobs, {"data_dir": str(args.data_dir), "checkpoint": args.checkpoint,
                                         "duration": settings.duration, "steps": args.steps, "guidance": args.guidance,
                                         "beat_sync": args.beat_sync, "foot_lock": args.foot_lock,
                                         "retrieval": args.retrieval, "hand_motion": args.hand_motion,
                                         "reference": args.reference, "style": settings.style,
                                         "split": args.finedance_split,
                                         "seed": args.seed, "samples_per_song": args.samples_per_song})
    mine = batch.shard(jobs, state.process_index, state.num_processes)
    todo = [j for j in mine if not batch.is_done(out, j)]
    skipped = len(mine) - len(todo)
    failed = 0
    if todo:
        if args.device != "auto" or state.num_processes == 1:
            device = args.device                     # one process: cuda, mps or cpu, as generate_dance.py
        else:
            device = str(state.device)               # this process's own GPU (or the CPU)
        try:
            generator = pipeline.DanceGenerator(args.checkpoint, device=device, body=args.body_model)
        except pipeline.GenerationError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        from tqdm import tqdm

        bar = tqdm(todo, desc=f"generate [{state.process_index + 1}/{state.num_processes}]", unit="dance",
                   disable=not sys.stderr.isatty())
        for job in bar:
            t0 = time.perf_counter()
            try:
                path = batch.run_job(generator, job, settings, out)
            except (pipeline.GenerationError, ValueError, RuntimeError, OSError) as e:
                print(f"error: {job.name}: {e}", file=sys.stderr)
                failed += 1
                continue
            bar.write(f"{path}  ({time.perf_counter() - t0:.1f}s)")
    print(f"process {state.process_index + 1}/{state.num_processes}: {len(todo) - failed} generated, "
          f"{skipped} already done, {failed} failed (of {len(jobs)} jobs in {out})")
    state.wait_for_everyone()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
