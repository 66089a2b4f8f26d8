"""Does a model dance to the beat of songs it never heard? Beat alignment on held-out tracks.

    python -m eval.heldout_songs [--checkpoint FILE] [--seconds 20] [--tracks d01,d05,…]
                                 [--music_dir ../shared/data/music] [--seed 0] [--json OUT]

For every track (default: the open corpus's held-out tracks, ``dataset.open_corpus.HELD_OUT_TRACKS``;
none of them is in any training pair) the model dances the first ``--seconds`` of the song once
(``pipeline.DanceGenerator.dance`` without beat sync), and that same dance is then beat-synced
(``DanceGenerator.beat_synced``, what ``generate_dance.py`` does by default). Both are scored with
the clean protocol's BAS (``eval.metrics.bas``: motion beats of the 22 body joints, chance level,
gain = BAS − chance) against two beat sets:

- ``annotated``: the track's exact beats (``beat_times_s`` of the JSON beside the audio, from the
  MIDI it was rendered from) — independent of anything the model or beat sync saw;
- ``librosa``: the beat channel of the song's features — what the model was conditioned on and
  what beat sync aims at (and what ``evaluate.py`` scores against).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BEAT_SETS = ("annotated", "librosa")


@dataclass
class TrackResult:
    track: str
    frames: int
    scores: dict[str, dict[str, tuple[float, float]]]   # {"raw"|"synced": {beat set: (bas, chance)}}


def find_track(music_dir: Path, track: str) -> tuple[Path, Path]:
    """The audio file and beat JSON of a track id such as 'd05' in ``music_dir``."""
    from audio.music import AUDIO_EXTENSIONS

    audio = sorted(p for p in music_dir.glob(f"{track}_*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not audio:
        raise FileNotFoundError(f"{music_dir}: no audio file for track {track}")
    beats = audio[0].with_suffix(".json")
    if not beats.is_file():
        raise FileNotFoundError(f"{beats}: missing (the track's annotated beats)")
    return audio[0], beats


def annotated_beats(path: Path) -> np.ndarray:
    """Beat frames (30 fps) from a track JSON's ``beat_times_s``."""
    from body.skeleton import FPS

    return np.asarray(json.loads(path.read_text())["beat_times_s"], np.float64) * FPS


def score_track(generator, audio: Path, beats_json: Path, seconds: float, seed: int) -> TrackResult:
    import pipeline
    from sync.beats import body_joints, music_beats_from_features
    from eval.metrics import bas

    raw = generator.dance(audio, pipeline.Settings(duration=seconds, seed=seed, beat_sync=False))
    synced = generator.beat_synced(raw)
    beat_sets = {"annotated": annotated_beats(beats_json), "librosa": music_beats_from_features(raw.features)}
    scores = {}
    for label, dance in (("raw", raw), ("synced", synced)):
        joints = body_joints(dance.vector, generator.rest_joints)
        scores[label] = {}
        for k, beats in beat_sets.items():
            alignment = bas(joints, beats)
            scores[label][k] = (alignment.bas, alignment.chance)
    return TrackResult(audio.name.split("_")[0], len(raw.vector), scores)


def summarize(results: list[TrackResult]) -> dict:
    """Mean BAS, chance and gain over tracks, per dance kind and beat set."""
    out = {}
    for label in ("raw", "synced"):
        for k in BEAT_SETS:
            pairs = np.array([r.scores[label][k] for r in results], np.float64)
            b, c = np.nanmean(pairs[:, 0]), np.nanmean(pairs[:, 1])
            out[f"{label}/{k}"] = {"bas": float(b), "chance": float(c), "gain": float(b - c)}
    return out


def main(argv=None) -> int:
    from dataset.open_corpus import DEFAULT_MUSIC_DIR, HELD_OUT_TRACKS

    from args import heldout_songs_parser

    a = heldout_songs_parser().parse_args(argv)
    import pipeline

    music_dir = Path(a.music_dir) if a.music_dir else DEFAULT_MUSIC_DIR
    track_ids = a.tracks.split(",") if a.tracks else HELD_OUT_TRACKS
    try:
        tracks = [find_track(music_dir, t.strip()) for t in track_ids if t.strip()]
        generator = pipeline.DanceGenerator(a.checkpoint, device=a.device)
    except (FileNotFoundError, pipeline.GenerationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    results = []
    print(f"{'track':6} {'frames':>6}  " + "  ".join(f"{lab + ' ' + k:>26}" for lab in ("raw", "synced")
                                                    for k in BEAT_SETS))
    for audio, beats_json in tracks:
        r = score_track(generator, audio, beats_json, a.seconds, a.seed)
        results.append(r)
        cells = [f"{s[0]:.3f} / {s[1]:.3f} ({s[0] - s[1]:+.3f})" for lab in ("raw", "synced")
                 for s in (r.scores[lab][k] for k in BEAT_SETS)]
        print(f"{r.track:6} {r.frames:6d}  " + "  ".join(f"{c:>26}" for c in cells), flush=True)
    summary = summarize(results)
    print("mean BAS / chance (gain):")
    for key, v in summary.items():
        print(f"  {key:18} {v['bas']:.3f} / {v['chance']:.3f} ({v['gain']:+.3f})")
    if a.json:
        Path(a.json).write_text(json.dumps({"checkpoint": str(generator.checkpoint), "seconds": a.seconds,
                                            "seed": a.seed, "summary": summary,
                                            "tracks": [vars(r) for r in results]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
