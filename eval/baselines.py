"""Baseline "generated" sets for the results table, in generate_all.py's output layout.

    python -m eval.baselines random_clip --test DIR --train_root ROOT --out DIR [--seed 0]
    python -m eval.baselines random_clip_sync --test DIR --train_root ROOT --out DIR [--seed 0]
    python -m eval.baselines still --test DIR --out DIR

``--test``: the test slices (``data/code/slice_music_motion.py`` output: ``motion/``, ``music_npy/``).
For each test dance NAME (n frames) the baseline writes ``OUT/NAME.npy`` and ``OUT/music/NAME.npy``
(the test dance's music features, cut to the baseline's length):

- ``random_clip``: real dance unrelated to the music — a training song of ``--train_root`` (its
  train split) at least n frames long drawn at random (any training song when none is that long,
  then the whole song), from a random start, n frames long (:func:`draw_clip`).
  Draws use ``numpy.random.default_rng(seed)`` in sorted test-name order: deterministic.
- ``random_clip_sync``: the same clips (same draws), then re-timed onto the test music's beats by
  the product's own beat sync (``sync_to_beats`` on the beat channel of the test features, what
  ``generate_dance.py`` does to a sampled dance). The bar a model must clear: a lookup of real
  dance plus our post-processing.
- ``still``: a motionless body — the test dance's first frame held for n frames.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from eval.batch import MUSIC_SUBDIR


def _test_items(test_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from dataset.finedance import check_layout

    check_layout(test_dir)
    names = sorted(p.stem for p in (test_dir / "motion").glob("*.npy"))
    if not names:
        raise ValueError(f"{test_dir / 'motion'}: no .npy motion files")
    return [(n, np.load(test_dir / "motion" / f"{n}.npy"), np.load(test_dir / "music_npy" / f"{n}.npy")) for n in names]


def _write(out: Path, name: str, motion: np.ndarray, music: np.ndarray) -> None:
    (out / MUSIC_SUBDIR).mkdir(parents=True, exist_ok=True)
    np.save(out / MUSIC_SUBDIR / f"{name}.npy", np.asarray(music[:len(motion)], np.float32))
    np.save(out / f"{name}.npy", np.asarray(motion, np.float32))


def random_clips(test_dir, train_root, out_dir, seed: int = 0, sync: bool = False) -> list[str]:
    """Write the random-training-clip baseline (``sync``: re-timed onto the test music's beats);
    returns 'name ← song@start' lines."""
    out, lines = Path(out_dir), []
    rng = np.random.default_rng(seed)
    for name, motion, music in _test_items(Path(test_dir)):
        song, start, dance = draw_clip(train_root, len(motion), rng)
        n = len(dance)
        shift = ""
        if sync:
            dance, max_shift = beat_synced_clip(dance, music[:n])
            shift = f", synced: beats moved ≤ {max_shift:.1f} frames"
        _write(out, name, dance, music)
        lines.append(f"{name} ← {song}@{start} ({n} frames{shift})")
    return lines


def draw_clip(train_root, n_frames: int, rng: np.random.Generator) -> tuple[str, int, np.ndarray]:
    """A random n-frame piece of a random training song of ``train_root`` that is at least that
    long (of any training song, whole, when none is): (song, start frame, (≤ n, 315|319) motion)."""
    from dataset.finedance import split_names

    root = Path(train_root)
    songs = split_names(root, "train")
    clips = {s: np.load(root / "motion" / f"{s}.npy", mmap_mode="r") for s in songs}
    long_enough = [s for s in songs if len(clips[s]) >= n_frames] or songs
    song = long_enough[int(rng.integers(len(long_enough)))]
    clip = clips[song]
    n = min(n_frames, len(clip))
    start = int(rng.integers(len(clip) - n + 1))
    return song, start, np.array(clip[start:start + n])


def beat_synced_clip(motion: np.ndarray, music: np.ndarray, body_model: str | None = None,
                     rest_joints=None) -> tuple[np.ndarray, float]:
    """A real (T, 315|319) clip re-timed by the product's beat sync onto the beats of (T, 35) music
    features → (the clip in its own width, largest time shift in frames)."""
    from sync.beats import music_beats_from_features
    from dataset.finedance import default_rest_joints, with_contacts
    from sync.time_warp import sync_to_beats

    rest = default_rest_joints(body_model) if rest_joints is None else rest_joints
    vector = with_contacts(motion, rest) if motion.shape[1] == 315 else motion
    sync = sync_to_beats(vector, music_beats_from_features(music), rest)
    return (sync.vector[:, -motion.shape[1]:], sync.max_shift)


def still_bodies(test_dir, out_dir) -> list[str]:
    """Write the motionless baseline; returns one line per dance."""
    out, lines = Path(out_dir), []
    for name, motion, music in _test_items(Path(test_dir)):
        _write(out, name, np.repeat(motion[:1], len(motion), axis=0), music)
        lines.append(f"{name}: first frame held for {len(motion)} frames")
    return lines


def main(argv=None) -> int:
    from args import baselines_parser

    p = baselines_parser()
    args = p.parse_args(argv)
    try:
        if args.kind.startswith("random_clip"):
            if not args.train_root:
                p.error(f"{args.kind} needs --train_root")
            lines = random_clips(args.test, args.train_root, args.out, args.seed, sync=args.kind.endswith("_sync"))
        else:
            lines = still_bodies(args.test, args.out)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
