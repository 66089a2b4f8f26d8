"""Foot skating with and without foot locking, on a model's dances and on real motion.

    python -m eval.foot_lock_report [--checkpoint FILE] [--tracks d05,d09,d14] [--seconds 20] [--seed 0]
                                    [--clips 05_20,94_15,60_15,61_15] [--json OUT]

For every track the model dances the first ``--seconds`` of the song as ``generate_dance.py`` does
but without foot locking (``pipeline.DanceGenerator.dance``, beat sync on, ``foot_lock=False``), and
``sync.foot_lock.lock_feet`` is applied to that same dance; the held-out CMU clips (retargeted as
the open corpus does, ``dataset.open_corpus.load_clips``, not mirrored) are the ground truth and are
locked the same way. Both versions are scored with the clean protocol's FSR and PFC
(``eval.metrics.foot_skating``, ``eval.metrics.pfc``) on the 22 body joints, and the script reports
the mean over dances of each, the share of frames the lock planted, and how long it took.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def score(vector: np.ndarray, rest_joints) -> dict[str, float]:
    """FSR and PFC of a motion vector, as it is and foot-locked."""
    from sync.beats import body_joints
    from eval.metrics import foot_skating, pfc
    from sync.foot_lock import lock_feet

    t0 = time.perf_counter()
    lock = lock_feet(vector, rest_joints)
    seconds = time.perf_counter() - t0
    raw, locked = body_joints(vector, rest_joints), body_joints(lock.vector, rest_joints)
    return {"frames": len(vector), "fsr": foot_skating(raw).ratio, "fsr_locked": foot_skating(locked).ratio,
            "pfc": pfc(raw), "pfc_locked": pfc(locked), "planted": float(lock.contacts.mean()),
            "root_drop_max": float(lock.root_drop.max()), "seconds": seconds}


def main(argv=None) -> int:
    from dataset.open_corpus import DEFAULT_CMU_DIR, DEFAULT_MUSIC_DIR, HELD_OUT_CLIPS

    from args import foot_lock_report_parser

    a = foot_lock_report_parser().parse_args(argv)
    import pipeline
    from eval.heldout_songs import find_track

    rows: dict[str, dict[str, dict]] = {"model": {}, "ground truth": {}}
    tracks = [t.strip() for t in a.tracks.split(",") if t.strip()]
    clips = tuple(c.strip() for c in (a.clips if a.clips is not None else ",".join(HELD_OUT_CLIPS)).split(",")
                  if c.strip())
    try:
        generator = pipeline.DanceGenerator(a.checkpoint, device=a.device)
        songs = [find_track(Path(a.music_dir or DEFAULT_MUSIC_DIR), t)[0] for t in tracks]
    except (FileNotFoundError, pipeline.GenerationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rest = generator.rest_joints
    header = f"{'set':13} {'dance':16} {'frames':>6}  {'FSR':>6} {'locked':>6}  {'PFC':>6} {'locked':>6}  planted  drop"

    def show(kind, name, r):
        print(f"{kind:13} {name:16} {r['frames']:6d}  {r['fsr']:6.3f} {r['fsr_locked']:6.3f}  {r['pfc']:6.3f} "
              f"{r['pfc_locked']:6.3f}  {r['planted']:7.2f}  {r['root_drop_max']:.3f}", flush=True)

    print(header)
    for track, song in zip(tracks, songs):
        dance = generator.dance(song, pipeline.Settings(duration=a.seconds, seed=a.seed, foot_lock=False))
        rows["model"][track] = r = score(dance.vector, rest)
        show("model", track, r)
    if clips:
        from dataset.open_corpus import load_clips

        for clip in load_clips(a.cmu_dir or DEFAULT_CMU_DIR, mirror=False, only=clips, progress=False):
            rows["ground truth"][clip.name] = r = score(clip.motion, rest)
            show("ground truth", clip.name, r)
    summary = {}
    for kind, results in rows.items():
        if results:
            keys = ("fsr", "fsr_locked", "pfc", "pfc_locked", "planted", "seconds")
            summary[kind] = {k: float(np.nanmean([r[k] for r in results.values()])) for k in keys}
            s = summary[kind]
            print(f"mean {kind}: FSR {s['fsr']:.3f} → {s['fsr_locked']:.3f}, PFC {s['pfc']:.3f} → "
                  f"{s['pfc_locked']:.3f} ({len(results)} dances; lock {1000 * s['seconds']:.0f} ms each)")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "dances": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
