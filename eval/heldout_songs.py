"""Does a model dance to the beat of songs it never heard? Beat alignment on held-out tracks.

    python -m eval.heldout_songs [--checkpoint FILE] [--seconds 20] [--tracks d01,d05,…]
                                 [--music_dir ../shared/data/music] [--seed 0] [--json OUT]
    python -m eval.heldout_songs --baseline random_clip --train_root data/open_corpus [...]

For every track (default: the open corpus's held-out tracks, ``dataset.open_corpus.HELD_OUT_TRACKS``;
none of them is in any training pair) the first ``--seconds`` of the song are danced twice: ``raw``,
the network by itself (``pipeline.DanceGenerator.dance`` without retrieval, beat sync or foot lock),
and ``synced``, what ``generate_dance.py`` makes by default (retrieval, beat sync, foot lock). Both are scored with
the clean protocol's BAS (``eval.metrics.bas``: motion beats of the 22 body joints, chance level,
gain = BAS − chance) against two beat sets:

- ``annotated``: the track's exact beats (``beat_times_s`` of the JSON beside the audio, from the
  MIDI it was rendered from) — independent of anything the model or beat sync saw;
- ``heard``: the beat channel of the song's features — the beats the product heard: what the model
  was conditioned on and what beat sync aims at (and what ``evaluate.py`` scores against). In our mode
  they come from ``audio.beats.track_beats``; before issue 20 they were librosa's (tables that say
  "librosa beats" predate it).

Besides BAS it reports phase locking (``eval.metrics.phase_locking``): where within the beat the
motion beats fall, pooled over all tracks — R = 1 when they always fall at the same point of the
beat, ≈ 0 when their timing is unrelated to it.

``--baseline random_clip``: instead of a model's dance, a real clip of ``--train_root``'s train
split drawn at random (``numpy.random.default_rng(seed)``, in track order), scored as drawn (raw)
and after the same beat sync (synced): the bar a model must clear.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BEAT_SETS = ("annotated", "heard")


@dataclass
class TrackResult:
    track: str
    frames: int
    scores: dict[str, dict[str, tuple[float, float]]]   # {"raw"|"synced": {beat set: (bas, chance)}}
    phases: dict[str, dict[str, list[float]]]           # {"raw"|"synced": {beat set: motion-beat phases}}


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


def model_dances(generator, audio: Path, seconds: float, seed: int,
                 guidance: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw, synced, features): the network's dance of the song's first ``seconds`` by itself (no
    retrieval, beat sync or foot lock), the product's default output for the same song and seed
    (``pipeline.Settings()``: retrieval, beat sync, foot lock), and the song's (T, 35) features."""
    import pipeline

    raw = generator.dance(audio, pipeline.Settings(duration=seconds, seed=seed, guidance=guidance, retrieval=False,
                                                   beat_sync=False, foot_lock=False))
    product = generator.dance(audio, pipeline.Settings(duration=seconds, seed=seed, guidance=guidance))
    return raw.vector, product.vector, raw.features


def clip_dances(train_root: Path, rng: np.random.Generator, rest_joints, audio: Path,
                seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw, synced, features) for the random-clip baseline: a training clip drawn at random, as
    drawn and re-timed by the product's beat sync."""
    from body.skeleton import FPS
    from audio.music import seconds_to_read, song_features
    from dataset.finedance import with_contacts
    from eval.baselines import beat_synced_clip, draw_clip

    features, song_seconds = song_features(audio, max_seconds=seconds_to_read(seconds))
    n = min(int(round(seconds * FPS)), int(round(song_seconds * FPS)), len(features))
    _, _, clip = draw_clip(train_root, n, rng)
    n = len(clip)
    raw = with_contacts(clip, rest_joints)
    synced, _ = beat_synced_clip(raw, features[:n], rest_joints=rest_joints)
    return raw, synced, features[:n]


def score_track(dances: tuple[np.ndarray, np.ndarray, np.ndarray], rest_joints, audio: Path,
                beats_json: Path) -> TrackResult:
    """BAS (and motion-beat phases) of a (raw, synced, features) triple against both beat sets."""
    from sync.beats import body_joints, music_beats_from_features
    from eval.metrics import bas, beat_phases

    raw, synced, features = dances
    beat_sets = {"annotated": annotated_beats(beats_json), "heard": music_beats_from_features(features)}
    scores, phases = {}, {}
    for label, vector in (("raw", raw), ("synced", synced)):
        joints = body_joints(vector, rest_joints)
        scores[label], phases[label] = {}, {}
        for k, beats in beat_sets.items():
            alignment = bas(joints, beats)
            scores[label][k] = (alignment.bas, alignment.chance)
            phases[label][k] = beat_phases(joints, beats[beats < len(joints)]).tolist()
    return TrackResult(audio.name.split("_")[0], len(raw), scores, phases)


def summarize(results: list[TrackResult]) -> dict:
    """Mean BAS, chance and gain over tracks, and the phase locking (R, mean phase) of all the
    tracks' motion beats pooled, per dance kind and beat set."""
    from eval.metrics import phase_locking

    out = {}
    for label in ("raw", "synced"):
        for k in BEAT_SETS:
            pairs = np.array([r.scores[label][k] for r in results], np.float64)
            b, c = np.nanmean(pairs[:, 0]), np.nanmean(pairs[:, 1])
            r_value, phase = phase_locking(np.concatenate([r.phases[label][k] for r in results]))
            out[f"{label}/{k}"] = {"bas": float(b), "chance": float(c), "gain": float(b - c),
                                   "phase_locking_r": r_value, "mean_phase": phase}
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
        rest_joints = generator.rest_joints
    except (FileNotFoundError, pipeline.GenerationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(a.seed)
    if a.baseline:
        print(f"baseline: random clips of {a.train_root} (seed {a.seed})")
    results = []
    print(f"{'track':6} {'frames':>6}  " + "  ".join(f"{lab + ' ' + k:>26}" for lab in ("raw", "synced")
                                                    for k in BEAT_SETS))
    for audio, beats_json in tracks:
        dances = (clip_dances(Path(a.train_root), rng, rest_joints, audio, a.seconds) if a.baseline
                  else model_dances(generator, audio, a.seconds, a.seed, a.guidance))
        r = score_track(dances, rest_joints, audio, beats_json)
        results.append(r)
        cells = [f"{s[0]:.3f} / {s[1]:.3f} ({s[0] - s[1]:+.3f})" for lab in ("raw", "synced")
                 for s in (r.scores[lab][k] for k in BEAT_SETS)]
        print(f"{r.track:6} {r.frames:6d}  " + "  ".join(f"{c:>26}" for c in cells), flush=True)
    summary = summarize(results)
    print("mean BAS / chance (gain):")
    for key, v in summary.items():
        print(f"  {key:18} {v['bas']:.3f} / {v['chance']:.3f} ({v['gain']:+.3f})   "
              f"phase locking R {v['phase_locking_r']:.2f} at {v['mean_phase']:+.2f} beat")
    if a.json:
        Path(a.json).write_text(json.dumps({"checkpoint": str(generator.checkpoint), "baseline": a.baseline,
                                            "train_root": a.train_root if a.baseline else None, "seconds": a.seconds,
                                            "seed": a.seed, "summary": summary,
                                            "tracks": [vars(r) for r in results]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
