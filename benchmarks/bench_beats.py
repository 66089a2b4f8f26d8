"""Beat tracking against annotated beats: the old tracker (librosa's ``beat_track`` on the 30 fps onset
envelope, the official beat channel) beside ours (``audio.beats.track_beats``), on recorded and on
rendered songs, with ``mir_eval.beat`` (issue 20).

    python benchmarks/bench_beats.py [--seconds 30] [--music_dir ../shared/data/music] [--json OUT]

Songs:
- recorded: Debian's ``fretsonfire-songs-sectoid`` (fetched on first use, ``eval.real_songs``), 30 s
  excerpts from 20, 60 and 100 s, and the excerpt from 40 s time-stretched by ffmpeg's ``atempo`` to
  1.25× and 0.8× the tempo (169–188 BPM: the fast songs on which the old tracker heard 2/3 of the
  tempo). Beat grids from the charts' tempo maps (see ``eval.real_songs``).
- rendered: the first ``--seconds`` of every track in ``--music_dir`` with its JSON's beats.

Scores, per excerpt and on average: F-measure (±70 ms), CMLt and AMLt (``mir_eval.beat``, first 5 s
skipped as mir_eval does), all against the annotated grid; and F at the tracked metrical level (the
annotated grid halved or doubled to the level the tracker chose, when its beat period is within 15 %
of half or twice the annotated one; for a halved grid the better of its two phases). Also the time ours
takes per 30 s of song, as a ratio to ffmpeg decoding the same 30 s measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXCERPT_STARTS = (20.0, 60.0, 100.0)
STRETCHES = (1.25, 0.8)
LEVEL_TOLERANCE = 0.15


def stretched(y: np.ndarray, factor: float, sr: int) -> np.ndarray:
    """The audio played ``factor`` times faster at the same pitch (ffmpeg's atempo)."""
    proc = subprocess.run(["ffmpeg", "-v", "error", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "-",
                           "-af", f"atempo={factor}", "-f", "f32le", "-"], input=y.tobytes(),
                          capture_output=True, check=True)
    return np.frombuffer(proc.stdout, np.float32)


def recorded_excerpts(seconds: float):
    """(name, audio, annotated beat times) of the recorded songs' excerpts."""
    from audio.music import SAMPLE_RATE
    from eval.real_songs import real_songs

    for song in real_songs(SAMPLE_RATE):
        for start in EXCERPT_STARTS:
            if start + seconds <= len(song.audio) / SAMPLE_RATE:
                y, beats = song.excerpt(start, seconds)
                yield f"{song.name} @{start:.0f}s", y, beats
        for factor in STRETCHES:
            y, beats = song.excerpt(40.0, seconds * factor)
            yield f"{song.name} x{factor}", stretched(y, factor, SAMPLE_RATE), beats / factor


def rendered_excerpts(music_dir: Path, seconds: float):
    from audio.music import AUDIO_EXTENSIONS, load_audio

    for meta in sorted(music_dir.glob("*.json")):
        audio = [p for p in music_dir.glob(meta.stem + ".*") if p.suffix.lower() in AUDIO_EXTENSIONS]
        if audio:
            beats = np.asarray(json.loads(meta.read_text())["beat_times_s"])
            yield meta.stem, load_audio(audio[0], max_seconds=seconds), beats[beats < seconds]


def old_beats(y: np.ndarray) -> np.ndarray:
    """The official beat channel's beats (seconds): librosa beat_track on the 30 fps onset envelope."""
    import librosa

    from audio.music import BEAT_CHANNEL, FPS, SAMPLE_RATE, _features, n_frames

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        feats = _features(librosa, y, SAMPLE_RATE, n_frames(len(y)))
    return np.nonzero(feats[:, BEAT_CHANNEL] > 0.5)[0] / FPS


def at_level(reference: np.ndarray, estimated: np.ndarray) -> list[np.ndarray]:
    """The annotated grid at the estimate's metrical level (candidates; the caller takes the best)."""
    if len(reference) < 2 or len(estimated) < 2:
        return [reference]
    ratio = np.median(np.diff(estimated)) / np.median(np.diff(reference))
    if abs(ratio - 2) < 2 * LEVEL_TOLERANCE:
        return [reference[0::2], reference[1::2]]
    if abs(ratio - 0.5) < 0.5 * LEVEL_TOLERANCE:
        return [np.sort(np.concatenate([reference, reference[:-1] + np.diff(reference) / 2]))]
    return [reference]


def scores(reference: np.ndarray, estimated: np.ndarray) -> dict[str, float]:
    import mir_eval

    ref = mir_eval.beat.trim_beats(reference)
    est = mir_eval.beat.trim_beats(np.asarray(estimated, float))
    if len(ref) < 2 or len(est) < 2:
        return {"F": 0.0, "CMLt": 0.0, "AMLt": 0.0, "F_level": 0.0}
    _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
    level = max(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(r), est) for r in at_level(reference, estimated))
    return {"F": mir_eval.beat.f_measure(ref, est), "CMLt": cmlt, "AMLt": amlt, "F_level": level}


def ffmpeg_decode_seconds(y: np.ndarray, sr: int) -> float:
    """Wall time of ffmpeg encoding then decoding these samples as FLAC (the yardstick)."""
    t0 = time.perf_counter()
    flac = subprocess.run(["ffmpeg", "-v", "error", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "-",
                           "-f", "flac", "-"], input=y.tobytes(), capture_output=True, check=True).stdout
    subprocess.run(["ffmpeg", "-v", "error", "-i", "-", "-f", "f32le", "-"], input=flac, capture_output=True,
                   check=True)
    return time.perf_counter() - t0


def run(sets, seconds: float) -> dict:
    from audio.beats import track_beats
    from audio.music import SAMPLE_RATE

    out, timing = {}, []
    track_beats(np.zeros(SAMPLE_RATE, np.float32))          # imports and numba compiled before timing
    for label, excerpts in sets:
        rows = []
        for name, y, beats in excerpts:
            t0 = time.perf_counter()
            track = track_beats(y)
            spent = time.perf_counter() - t0
            timing.append((spent, ffmpeg_decode_seconds(y, SAMPLE_RATE), len(y) / SAMPLE_RATE))
            row = {"song": name, "annotated_bpm": float(60 / np.median(np.diff(beats))) if len(beats) > 1 else 0.0,
                   "old": scores(beats, old_beats(y)), "new": scores(beats, track.times),
                   "new_bpm": track.bpm, "unsteady": float(1 - track.steady.mean())}
            rows.append(row)
            print(f"{label:8s} {name:32s} {row['annotated_bpm']:6.1f} BPM | old F {row['old']['F']:.2f} "
                  f"CMLt {row['old']['CMLt']:.2f} AMLt {row['old']['AMLt']:.2f} | new F {row['new']['F']:.2f} "
                  f"CMLt {row['new']['CMLt']:.2f} AMLt {row['new']['AMLt']:.2f} F@level {row['new']['F_level']:.2f} "
                  f"({track.bpm:5.1f} BPM, no steady beat {row['unsteady']:.0%})", flush=True)
        mean = {k: {m: float(np.mean([r[k][m] for r in rows])) for m in rows[0][k]} for k in ("old", "new")}
        print(f"{label:8s} {'MEAN of ' + str(len(rows)):32s}        | old F {mean['old']['F']:.3f} CMLt "
              f"{mean['old']['CMLt']:.3f} AMLt {mean['old']['AMLt']:.3f} | new F {mean['new']['F']:.3f} CMLt "
              f"{mean['new']['CMLt']:.3f} AMLt {mean['new']['AMLt']:.3f} F@level {mean['new']['F_level']:.3f}")
        out[label] = {"rows": rows, "mean": mean}
    spent, reference, audio = (np.sum([t[i] for t in timing]) for i in range(3))
    per30 = spent / audio * 30
    print(f"tracking: {per30:.2f} s per 30 s of song ({spent / reference:.1f}x ffmpeg FLAC encode+decode of the "
          f"same audio, {reference / audio * 30:.2f} s per 30 s); {platform.processor() or platform.machine()}, "
          f"{__import__('os').cpu_count()} CPUs")
    out["tracking_seconds_per_30s"] = per30
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--music_dir", type=Path, default=ROOT.parent / "shared" / "data" / "music")
    ap.add_argument("--sets", default="recorded,rendered")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    sets = []
    if "recorded" in args.sets:
        sets.append(("recorded", list(recorded_excerpts(args.seconds))))
    if "rendered" in args.sets and args.music_dir.is_dir():
        sets.append(("rendered", list(rendered_excerpts(args.music_dir, args.seconds))))
    result = run(sets, args.seconds)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
