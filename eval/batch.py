"""Test-set generation behind ``generate_all.py``: a list of jobs, run with one model, resumable.

Inputs (``--data_dir``), recognised in this order:

1. a folder written by ``data/code/slice_music_motion.py`` (``manifest.csv`` and ``music_npy/``): one
   job per slice NAME, dancing to ``music_wav/NAME.wav`` (required: slice a dataset that has audio);
2. a FineDance-layout root (``motion/`` and ``music_npy/``; ``dataset.finedance``): one job per song of
   the test split (``splits.json``, or FineDance@Genre or @Dancer by --split), dancing to ``music_wav/NAME.*``;
3. a folder of audio files (wav, mp3, ogg, flac, m4a, aac, opus): one job per file.

Each job is danced by ``pipeline.DanceGenerator.dance`` (the one generation path: the song's features
are extracted from its audio, then whole-song sampling), ``--duration`` seconds from the start
(default 1024 frames = 34.13 s, the evaluation length; ``full`` for whole songs).

Outputs in ``--motion_save_dir``:

- ``NAME.npy``: the dance, FineDance (T, 319) with foot contacts, written atomically LAST, so its
  presence means the job is finished (a rerun skips it: resumable);
- ``music/NAME.npy``: (T, 35) music features of the same T frames, for ``evaluate.py`` (its default
  music folder). For slices and FineDance songs these are the dataset's own ``music_npy`` features
  (whole-song extraction cut by frame index, the features the ground truth is scored against);
  for audio files they are extracted from the audio as the generator does;
- ``manifest.json``: every job (name, source, audio, music, seed) and the generation settings.

With ``--samples_per_song N > 1`` each source gives NAME_k0 … NAME_k{N−1}. Seeds are a fixed function
of (``--seed``, NAME, k) — the same whatever the order, the sharding or earlier interruptions — so
the outputs are deterministic. Under ``accelerate launch`` the job list is dealt round-robin to the
processes (``PartialState.process_index`` / ``num_processes``), each with its own device.
"""
from __future__ import annotations

import csv
import json
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from audio.music import AUDIO_EXTENSIONS

MUSIC_SUBDIR = "music"
MANIFEST = "manifest.json"


class JobListError(ValueError):
    """The input folder cannot be turned into jobs. The message names the folder or file."""


@dataclass(frozen=True)
class Job:
    """One dance to make. name: output stem; source: slice, song or file it comes from; audio: what
    the generator dances to; music: dataset features to save for evaluation (None: from the audio)."""

    name: str
    source: str
    audio: str
    music: str | None
    seed: int


def job_seed(seed: int, name: str, sample: int) -> int:
    """A deterministic seed per (base seed, source name, sample index), independent of job order."""
    return (int(seed) * 1_000_003 + zlib.crc32(f"{name}#{sample}".encode())) % (2 ** 31)


def _audio_for(folder: Path, name: str) -> Path | None:
    for ext in AUDIO_EXTENSIONS:
        p = folder / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def _sources(data_dir: Path, finedance: str = "genre") -> list[tuple[str, Path, Path | None]]:
    """(name, audio, features or None) per source in the folder (module docstring)."""
    if not data_dir.is_dir():
        raise JobListError(f"{data_dir}: no such folder (make test slices with data/code/slice_music_motion.py, "
                           f"or pass a FineDance root or a folder of songs)")
    manifest = data_dir / "manifest.csv"
    if manifest.is_file() and (data_dir / "music_npy").is_dir():
        with open(manifest, newline="") as f:
            names = [row["name"] for row in csv.DictReader(f) if row.get("name")]
        kind = "slice"
    elif (data_dir / "motion").is_dir() and (data_dir / "music_npy").is_dir():
        from dataset.finedance import DatasetError, split_names

        try:
            names = split_names(data_dir, "test", finedance)
        except DatasetError as e:
            raise JobListError(str(e)) from None
        kind = "song"
    else:
        songs = sorted(p for p in data_dir.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not songs:
            raise JobListError(f"{data_dir}: no test slices (manifest.csv + music_npy/), no FineDance layout "
                               f"(motion/ + music_npy/) and no audio files ({', '.join(AUDIO_EXTENSIONS)})")
        return [(p.stem, p, None) for p in songs]
    if not names:
        raise JobListError(f"{manifest if kind == 'slice' else data_dir}: no {kind}s listed")
    out, no_audio = [], []
    for name in names:
        audio = _audio_for(data_dir / "music_wav", name)
        features = data_dir / "music_npy" / f"{name}.npy"
        if not features.is_file():
            raise JobListError(f"{features}: missing (listed in {manifest if kind == 'slice' else data_dir})")
        if audio is None:
            no_audio.append(name)
        out.append((name, audio, features))
    if no_audio:
        raise JobListError(f"{data_dir / 'music_wav'}: no audio for {len(no_audio)} {kind}(s) "
                           f"(e.g. {no_audio[0]}); generation dances to audio, so the dataset needs its "
                           f"music_wav/ (then re-run slice_music_motion.py)")
    return out


def list_jobs(data_dir: str | os.PathLike, samples_per_song: int = 1, seed: int = 0,
              finedance: str = "genre") -> list[Job]:
    """Every job for a data folder, in a fixed order (sources sorted, then samples). finedance: the
    official split ('genre' or 'dancer') whose test songs a FineDance root gives."""
    if samples_per_song < 1:
        raise JobListError(f"--samples_per_song must be at least 1, got {samples_per_song}")
    jobs = []
    for name, audio, features in sorted(_sources(Path(data_dir), finedance), key=lambda s: s[0]):
        for k in range(samples_per_song):
            out = name if samples_per_song == 1 else f"{name}_k{k}"
            music = None if features is None else str(features)
            jobs.append(Job(out, name, str(audio), music, job_seed(seed, name, k)))
    return jobs


def shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """The jobs of process ``index`` out of ``count`` (round-robin, so long songs spread out)."""
    return jobs[index::count]


def motion_path(out_dir: str | os.PathLike, job: Job) -> Path:
    return Path(out_dir) / f"{job.name}.npy"


def music_path(out_dir: str | os.PathLike, job: Job) -> Path:
    return Path(out_dir) / MUSIC_SUBDIR / f"{job.name}.npy"


def is_done(out_dir: str | os.PathLike, job: Job) -> bool:
    return motion_path(out_dir, job).is_file() and music_path(out_dir, job).is_file()


def write_manifest(out_dir: str | os.PathLike, jobs: list[Job], settings: dict) -> Path:
    """manifest.json: the settings and every job (written atomically)."""
    path = Path(out_dir) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps({"settings": settings, "jobs": [asdict(j) for j in jobs]}, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def _save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def run_job(generator, job: Job, settings, out_dir: str | os.PathLike) -> Path:
    """Dance one job with a built ``pipeline.DanceGenerator`` and write its outputs (music first,
    motion last). ``settings``: ``pipeline.Settings`` without the seed (the job's is used)."""
    from dataclasses import replace

    from motion.formats import save_finedance_npy

    dance = generator.dance(job.audio, replace(settings, seed=job.seed))
    n = len(dance.vector)
    if job.music is not None:
        features = np.load(job.music, allow_pickle=False)[:n]
    else:
        features = dance.features     # the song's features the generator danced to
    _save_npy(music_path(out_dir, job), np.asarray(features, np.float32))
    return save_finedance_npy(dance.motion, motion_path(out_dir, job), with_contacts=True)
