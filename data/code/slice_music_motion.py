#!/usr/bin/env python
"""Cut the test split of a FineDance-layout dataset into fixed-length test slices for
``generate_all.py`` (SPEC §1).

    python data/code/slice_music_motion.py --root data/finedance --out data/test_slices

For every song of the split, slices of ``--length`` frames (default 1024, the evaluation length)
every ``--stride`` frames (default: the length, no overlap); the remainder at the end is kept as a
shorter slice when it has at least ``--min_length`` frames, so a song shorter than ``--length``
gives one slice of its own length. Per slice NAME = SONG_sNNNNN (NNNNN = start frame):

    OUT/music_npy/NAME.npy   (n, 35) the song's features (extracted once on the whole song) cut by frame
    OUT/music_wav/NAME.wav   the matching audio, 15360 Hz 16-bit (samples start·512 … (start+n)·512);
                             only when the song has audio in ROOT/music_wav
    OUT/motion/NAME.npy      (n, 319) ground-truth motion with contacts, translation as in the song
    OUT/manifest.csv         name, song, start_frame, frames, seconds, wav

Every song is validated like the training loader does (shapes, NaN, frame counts).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audio import music as mu
from args import add_split
from dataset.finedance import DatasetError, load_song, split_names, write_music_wav

ROOT = Path(__file__).resolve().parents[2]



def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--root", type=Path, default=ROOT / "data" / "finedance", help="dataset root")
    p.add_argument("--out", type=Path, default=ROOT / "data" / "test_slices", help="output folder")
    add_split(p, subset_dest="split", subset_default="test")
    p.add_argument("--length", type=int, default=1024, help="frames per slice")
    p.add_argument("--stride", type=int, default=None, help="frames between slice starts (default: --length)")
    p.add_argument("--min_length", type=int, default=mu.WINDOW, help="shortest slice kept")
    p.add_argument("--body_model", type=Path, default=None,
                   help="SMPL-X .npz for contacts of (T, 315) motion (default body otherwise)")
    return p.parse_args(argv)


def slice_starts(n_frames: int, length: int, stride: int, min_length: int) -> list[tuple[int, int]]:
    """(start, frames) of each slice of a song of n_frames."""
    out = []
    for start in range(0, max(n_frames, 1), stride):
        n = min(length, n_frames - start)
        if n >= min_length:
            out.append((start, n))
        if start + length >= n_frames:
            break
    return out


def find_audio(root: Path, name: str) -> Path | None:
    for ext in mu.AUDIO_EXTENSIONS:
        p = root / "music_wav" / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    stride = args.stride or args.length
    if min(args.length, stride, args.min_length) < 1:
        print("error: --length, --stride and --min_length must be positive", file=sys.stderr)
        return 2
    try:
        names = split_names(args.root, args.split, args.finedance_split)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rest = None
    for sub in ("music_npy", "music_wav", "motion"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for name in tqdm(names, desc="slicing", unit="song"):
        try:
            if rest is None and np.load(args.root / "motion" / f"{name}.npy", mmap_mode="r").shape[1] == 315:
                from dataset.finedance import default_rest_joints
                rest = default_rest_joints(args.body_model)
            song = load_song(args.root, name, rest)
        except (DatasetError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        audio_path = find_audio(args.root, name)
        audio = mu.load_audio(audio_path) if audio_path is not None else None
        for start, n in slice_starts(len(song.motion), args.length, stride, args.min_length):
            slice_name = f"{name}_s{start:05d}"
            np.save(args.out / "music_npy" / f"{slice_name}.npy", song.music[start:start + n])
            np.save(args.out / "motion" / f"{slice_name}.npy", song.motion[start:start + n])
            wav = ""
            if audio is not None:
                seg = audio[start * mu.HOP:(start + n) * mu.HOP]
                seg = np.pad(seg, (0, n * mu.HOP - len(seg)))
                wav_path = args.out / "music_wav" / f"{slice_name}.wav"
                write_music_wav(wav_path, seg)
                wav = wav_path.name
            rows.append({"name": slice_name, "song": name, "start_frame": start, "frames": n,
                         "seconds": f"{n / mu.FPS:.3f}", "wav": wav})
    with open(args.out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=("name", "song", "start_frame", "frames", "seconds", "wav"))
        w.writeheader()
        w.writerows(rows)
    no_audio = sum(1 for r in rows if not r["wav"])
    print(f"{len(rows)} slices of {len(names)} {args.split} songs ({args.finedance_split} split) written to {args.out}"
          + (f" ({no_audio} without audio: no file in music_wav/)" if no_audio else ""))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
