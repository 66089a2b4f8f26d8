"""Evaluation inputs: folders of motion files → body joints; music files → beat frames.

Motion folders: every ``.npy`` / ``.pkl`` / ``.npz`` directly inside the folder (sorted by name; hidden
files ignored). A FineDance-layout root (``motion/`` and ``music_npy/`` inside) may be given instead of
its ``motion/`` folder. When one name exists in several formats (``generate_dance.py --save_motion``
writes NAME.npy and NAME.npz) the ``.npy`` is used, then ``.npz``, then ``.pkl``.

Joints: ``load_motion`` → ``prepare_for_body`` (y up, 30 fps, translation scaled to the body's legs)
→ the first ``max_frames`` frames → forward kinematics on the body model's rest joints → the 22 body
joints, (T, 22, 3) metres, y up.

Music for a motion NAME: the first of ``DIR/NAME.npy``, ``DIR/NAME.<audio>`` in each music folder,
also looking inside its ``music/``, ``music_npy/`` and ``music_wav/`` sub-folders (default folders:
:func:`default_music_folders`). A ``.npy`` must be
(T, 35) music features (``audio.music``); its beats are the 0/1 beat channel. Audio files (wav,
mp3, ogg, flac, m4a) are decoded and their beats found the same way (librosa's beat tracker on the
onset envelope, ``audio.music.music_features``). Beat frames count from the file's first frame,
which is the dance's first frame.

Problems raise :class:`EvalInputError` with the file or folder name in the message.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from motion.formats import MOTION_EXTENSIONS, MotionFormatError
from audio.music import AUDIO_EXTENSIONS

MUSIC_SUBFOLDERS = ("", "music", "music_npy", "music_wav")
_FORMAT_PREFERENCE = (".npy", ".npz", ".pkl")


class EvalInputError(ValueError):
    """An evaluation input is missing or unreadable. The message names the file or folder."""


def motion_folder(folder: str | os.PathLike) -> Path:
    """The folder that holds the motion files (a FineDance root's ``motion/``, else the folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalInputError(f"{folder}: no such folder")
    if not _motion_paths(folder) and (folder / "motion").is_dir():
        return folder / "motion"
    return folder


def _motion_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in MOTION_EXTENSIONS)


def motion_files(folder: str | os.PathLike) -> list[Path]:
    """Motion files of a folder, one per name (see the module docstring). Raises if there are none."""
    folder = motion_folder(folder)
    by_stem: dict[str, Path] = {}
    for p in _motion_paths(folder):
        old = by_stem.get(p.stem)
        if old is None or _FORMAT_PREFERENCE.index(p.suffix.lower()) < _FORMAT_PREFERENCE.index(old.suffix.lower()):
            by_stem[p.stem] = p
    if not by_stem:
        raise EvalInputError(f"{folder}: no motion files ({', '.join(MOTION_EXTENSIONS)}) in this folder")
    return [by_stem[s] for s in sorted(by_stem)]


def default_music_folders(folder: str | os.PathLike) -> list[Path]:
    """Where music for a motion folder is looked for when none is given: its ``music/``,
    ``music_npy/`` and ``music_wav/`` sub-folders (generate_all.py writes ``music/``) and, for a
    FineDance ``motion/`` folder, the parent's ``music_npy/`` and ``music_wav/``. Never the motion
    folder itself, whose ``.npy`` files are motion."""
    folder = motion_folder(folder)
    out = [folder / sub for sub in MUSIC_SUBFOLDERS if sub]
    if folder.name == "motion":
        out += [folder.parent / sub for sub in MUSIC_SUBFOLDERS if sub]
    return [f for f in out if f.is_dir()]


def find_music(name: str, folders: list[Path]) -> Path | None:
    """The music file for motion ``name`` (features first, then audio), or None."""
    for folder in folders:
        for sub in MUSIC_SUBFOLDERS:
            base = Path(folder) / sub if sub else Path(folder)
            for ext in (".npy",) + AUDIO_EXTENSIONS:
                p = base / f"{name}{ext}"
                if p.is_file():
                    return p
    return None


def music_beats(path: str | os.PathLike) -> np.ndarray:
    """Beat frames (30 fps, from the file's start) of a (T, 35) feature ``.npy`` or an audio file."""
    from sync.beats import music_beats_from_features
    from audio.music import FEATURE_DIM, AudioError, song_features

    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            features = np.load(path, allow_pickle=False)
        except Exception as e:  # numpy raises several types for corrupt files
            raise EvalInputError(f"{path}: not a readable .npy array ({e.__class__.__name__}: {e})") from None
        if features.ndim != 2 or features.shape[1] != FEATURE_DIM:
            raise EvalInputError(f"{path}: music features must be (T, {FEATURE_DIM}), got {features.shape}")
        return music_beats_from_features(features)
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise EvalInputError(f"{path}: not a music file (.npy features or {', '.join(AUDIO_EXTENSIONS)})")
    try:
        features, _ = song_features(path)
    except AudioError as e:
        raise EvalInputError(str(e)) from None
    return music_beats_from_features(features)


class JointLoader:
    """Motion file → (T, 22, 3) body joints with one body model (built once)."""

    def __init__(self, body_model: str | os.PathLike | None = None):
        from body.body_model import BodyModel, BodyModelError

        try:
            self.body = BodyModel(body_model)
        except BodyModelError as e:
            raise EvalInputError(str(e)) from None

    @property
    def rest_joints(self) -> np.ndarray:
        """(55, 3) rest joints of the body model (metres)."""
        return self.body.rest_joints.numpy()

    def __call__(self, path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
        from body.skeleton import N_BODY_JOINTS
        from motion.formats import load_motion, prepare_for_body

        try:
            motion = prepare_for_body(load_motion(path), self.body)
        except MotionFormatError as e:
            raise EvalInputError(str(e)) from None
        if max_frames is not None:
            motion = motion.slice(0, max_frames)
        if len(motion) < 3:
            raise EvalInputError(f"{path}: {len(motion)} frames; evaluation needs at least 3")
        return self.body.joints(motion)[:, :N_BODY_JOINTS].astype(np.float64)
