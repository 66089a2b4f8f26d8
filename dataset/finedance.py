"""The FineDance dataset (SPEC §3, §6): songs on disk → 120-frame training windows.

Layout under a root folder (the published one; the open corpus uses the same)::

    motion/NAME.npy       (T, 315) translation + 52 × 6-D, or (T, 319) with 4 foot contacts first
    music_npy/NAME.npy    (T, 35) music features (audio.music), one row per motion frame
    music_wav/NAME.*      optional: the song's audio
    label_json/NAME.json  optional: labels (genre, dancer, …)
    splits.json           optional: {"train": [NAME, …], "test": [NAME, …]}

Splits: with a ``splits.json`` in the root its lists are used (names missing from both are not
used). Without one, one of FineDance's two official splits (``finedance``): FineDance@Genre (the
default: the 20 test songs below, the ignored songs dropped — song 130 is on both lists; ignoring
wins, so the test split has 19 songs) or FineDance@Dancer (test 001–013, 124, 126, 128, 130, 132;
ignored the validation songs 115, 117, 119, 121, 122, 135, 137, 139, 141, 143, 145, 147 and 116,
118, 120, 123, 202, 159, 130: 17 test songs). Every other song trains.
A ``splits.json`` may also give ``"min_std"``, the still-window threshold suited to its corpus
(used unless the caller passes one): the open corpus sets 0.02, because its hands carry no motion
(180 of the 315 channels are constant) and CMU dance is calmer, so at 0.07 it would lose 98% of its
windows; at 0.02 it loses about 2%, the near-still ones.

Windows: ``window`` frames (120) every ``stride`` frames (12 in training), inside each song
(no padding: a song shorter than a window gives none). Windows whose motion is almost still are
dropped: the mean over the 315 motion channels (translation and rotations; contacts excluded, as
0/1 flags would dominate) of the per-channel standard deviation over the window must exceed
``min_std`` (0.07, the reference's threshold). Each window's root translation is made relative to
its first frame (all three axes).

Foot contacts (:func:`foot_contacts`, shared with ``data/code/pre_motion.py`` and the diffusion
losses): SMPL-X joints 7, 8, 10, 11 (ankles, then feet) by forward kinematics on the body's rest
joints; a joint is in contact when it moves less than 0.01 m to the next frame; the last frame
counts as contact. (T, 319) files keep their own contacts; (T, 315) files get them computed here.

Validation happens eagerly, at construction, with messages naming the file: missing folders,
songs in the split without files, wrong shapes, NaN/inf, and motion/music frame counts that differ
by more than ``max_length_mismatch`` frames (default 1: a one-frame difference is the usual
rounding of two independent frame counts — e.g. centred music frames give 1 + N // 512 — and both
are trimmed to the shorter; anything larger means the pair is misaligned and is an error).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from body.kinematics import joints_from_6d
from body.skeleton import (FOOT_JOINTS, MOTION_DIM, MOTION_DIM_315, PARENTS)
from audio.music import FEATURE_DIM, WINDOW
from motion.layout import MOTION_319, layout_of

GENRE_TEST = ("063", "132", "143", "036", "098", "198", "130", "012", "211", "193",
              "179", "065", "137", "161", "092", "120", "037", "109", "204", "144")
GENRE_IGNORE = tuple(f"{i:03d}" for i in range(116, 124)) + ("202", "130")
DANCER_TEST = tuple(f"{i:03d}" for i in range(1, 14)) + ("124", "126", "128", "130", "132")
DANCER_IGNORE = ("115", "117", "119", "121", "122", "135", "137", "139", "141", "143", "145", "147",   # validation
                 "116", "118", "120", "123", "202", "159", "130")
FINEDANCE_SPLITS = {"genre": (GENRE_TEST, GENRE_IGNORE), "dancer": (DANCER_TEST, DANCER_IGNORE)}
TRAIN_STRIDE = 12
MIN_STD = 0.07
CONTACT_THRESHOLD = 0.01        # metres per frame
MAX_LENGTH_MISMATCH = 1         # frames
SPLITS_FILE = "splits.json"
SPLITS = ("train", "test", "all")

# Joints needed for the contacts: the foot joints and their ancestors (all indices below them).
_N_FK = max(FOOT_JOINTS) + 1


class DatasetError(ValueError):
    """The dataset on disk is incomplete or malformed. The message names the file."""


# ---------------------------------------------------------------------------------------------
# Foot contacts


def foot_contacts(motion, rest_joints, threshold: float = CONTACT_THRESHOLD):
    """Foot contacts of a motion: (..., T, 315) or (..., T, 319) → (..., T, 4) float32 0/1.

    Order: left ankle, right ankle, left foot, right foot (SMPL-X joints 7, 8, 10, 11). A joint is
    in contact at frame t when it moves less than ``threshold`` metres from t to t+1; the last
    frame counts as contact. rest_joints: (55, 3) rest joints of the body (metres). Accepts numpy
    arrays (returns numpy) or torch tensors (returns torch, differentiable nowhere: a step).
    """
    is_numpy = not torch.is_tensor(motion)
    m = torch.from_numpy(np.array(motion, np.float32)) if is_numpy else motion
    if m.shape[-1] not in (MOTION_DIM_315, MOTION_DIM):
        raise ValueError(f"motion must be (..., T, {MOTION_DIM_315}) or (..., T, {MOTION_DIM}), got {tuple(m.shape)}")
    layout = layout_of(m)
    trans = m[..., layout.translation]
    rot6d = layout.rot6d(m, _N_FK)
    rest = torch.as_tensor(rest_joints, dtype=m.dtype, device=m.device)
    with torch.no_grad():
        feet = joints_from_6d(rot6d, trans, rest)[..., list(FOOT_JOINTS), :]   # (..., T, 4, 3)
        step = (feet[..., 1:, :, :] - feet[..., :-1, :, :]).norm(dim=-1)      # (..., T-1, 4)
        moving = torch.cat([step >= threshold, torch.zeros_like(step[..., :1, :], dtype=torch.bool)], dim=-2)
        contacts = (~moving).to(m.dtype)
    return contacts.numpy().astype(np.float32) if is_numpy else contacts


def with_contacts(motion315: np.ndarray, rest_joints) -> np.ndarray:
    """(T, 315) → (T, 319) float32 with contacts from :func:`foot_contacts` in front."""
    motion315 = np.asarray(motion315, np.float32)
    return np.concatenate([foot_contacts(motion315, rest_joints), motion315], axis=1)


def default_rest_joints(body_model: str | os.PathLike | None = None) -> torch.Tensor:
    """(55, 3) rest joints of the body model (``body.body_model`` look-up order)."""
    from body.body_model import BodyModel

    return BodyModel(body_model).rest_joints


assert _N_FK <= len(PARENTS) and all(p < _N_FK for p in PARENTS[:_N_FK])


# ---------------------------------------------------------------------------------------------
# Songs and splits


def _fail(path, problem: str) -> DatasetError:
    return DatasetError(f"{path}: {problem}")


def check_layout(root: str | os.PathLike) -> Path:
    """The root folder, after checking its required sub-folders exist."""
    root = Path(root)
    if not root.is_dir():
        raise _fail(root, "dataset folder not found")
    for sub in ("motion", "music_npy"):
        if not (root / sub).is_dir():
            raise _fail(root / sub, "missing folder: a FineDance root holds motion/ and music_npy/ "
                                    "(run data/code/build_open_corpus.py or unpack FineDance here)")
    return root


def split_names(root: str | os.PathLike, split: str = "train", finedance: str = "genre") -> list[str]:
    """Song names of a split ('train', 'test' or 'all'), sorted. Every name returned has a motion
    and a music file (otherwise DatasetError, naming the split file and the missing files).

    finedance: which official split a FineDance root (no splits.json) uses, 'genre' or 'dancer'; a
    root with its own splits.json takes only 'genre' (its lists), 'dancer' is a DatasetError there."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if finedance not in FINEDANCE_SPLITS:
        raise ValueError(f"the FineDance split must be one of {tuple(FINEDANCE_SPLITS)}, got {finedance!r}")
    root = check_layout(root)
    present = {p.stem for p in (root / "motion").glob("*.npy")}
    splits_file = root / SPLITS_FILE
    if splits_file.is_file():
        if finedance != "genre":
            raise _fail(splits_file, f"this corpus has its own split; the FineDance@{finedance.capitalize()} "
                                     "split applies to FineDance itself")
        try:
            lists = json.loads(splits_file.read_text())
            train, test = [str(n) for n in lists["train"]], [str(n) for n in lists["test"]]
        except (ValueError, KeyError, TypeError) as e:
            raise _fail(splits_file, f"expected JSON with 'train' and 'test' lists of song names ({e})") from None
        names, source = {"train": train, "test": test, "all": train + test}[split], splits_file
    else:
        listed, ignored = FINEDANCE_SPLITS[finedance]
        ignore = set(ignored)
        test = [n for n in listed if n not in ignore]
        if split == "test":
            names = test
        else:
            train = sorted(n for n in present if n not in ignore and n not in set(test))
            names = train if split == "train" else sorted(set(train) | (set(test) & present))
        source = f"FineDance@{finedance.capitalize()} {split} list"
    missing = [f"motion/{n}.npy" for n in names if n not in present]
    missing += [f"music_npy/{n}.npy" for n in names if not (root / "music_npy" / f"{n}.npy").is_file()]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise _fail(root, f"songs of the {source} have no files: {shown}")
    return sorted(dict.fromkeys(names))


def corpus_min_std(root: str | os.PathLike) -> float:
    """The still-window threshold of a corpus: ``min_std`` from its splits.json, else MIN_STD."""
    path = Path(root) / SPLITS_FILE
    if not path.is_file():
        return MIN_STD
    try:
        value = json.loads(path.read_text()).get("min_std", MIN_STD)
        return float(value)
    except (ValueError, TypeError, AttributeError) as e:
        raise _fail(path, f"'min_std' must be a number ({e})") from None


@dataclass
class Song:
    """One validated song. motion: (T, 319) float32 with contacts; music: (T, 35) float32."""

    name: str
    motion: np.ndarray
    music: np.ndarray


def _load_array(path: Path, width: tuple[int, ...], what: str) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for corrupt files
        raise _fail(path, f"not a readable .npy array ({e.__class__.__name__}: {e})") from None
    if a.ndim != 2 or a.shape[1] not in width:
        expected = " or ".join(f"(T, {w})" for w in width)
        raise _fail(path, f"{what} has shape {a.shape}; expected {expected}")
    if not np.issubdtype(a.dtype, np.number):
        raise _fail(path, f"{what} has dtype {a.dtype}; expected numbers")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise _fail(path, f"{what} contains NaN or infinite values (first at frame {bad[0]}, channel {bad[1]})")
    return a


def load_song(root: str | os.PathLike, name: str, rest_joints=None,
              max_length_mismatch: int = MAX_LENGTH_MISMATCH) -> Song:
    """Read and validate one song; contacts are computed for (T, 315) motion (rest_joints needed,
    the default body's when None)."""
    root = Path(root)
    mpath, apath = root / "motion" / f"{name}.npy", root / "music_npy" / f"{name}.npy"
    for p in (mpath, apath):
        if not p.is_file():
            raise _fail(p, "no such file")
    motion = _load_array(mpath, (MOTION_DIM_315, MOTION_DIM), "motion")
    music = _load_array(apath, (FEATURE_DIM,), "music features")
    if abs(len(motion) - len(music)) > max_length_mismatch:
        raise _fail(mpath, f"motion has {len(motion)} frames but {apath.name} in music_npy has {len(music)}; "
                           f"they must match (±{max_length_mismatch}); re-extract the music features")
    n = min(len(motion), len(music))
    motion, music = motion[:n], music[:n]
    if motion.shape[1] == MOTION_DIM_315:
        motion = with_contacts(motion, default_rest_joints() if rest_joints is None else rest_joints)
    return Song(name, np.ascontiguousarray(motion), np.ascontiguousarray(music))


def inside_window_starts(n_frames: int, window: int = WINDOW, stride: int = TRAIN_STRIDE) -> list[int]:
    """Starts of the windows that fit entirely inside n_frames."""
    return list(range(0, n_frames - window + 1, stride)) if n_frames >= window else []


def window_std(motion319: np.ndarray) -> float:
    """Mean over the 315 motion channels of their standard deviation over the frames."""
    return float(np.asarray(motion319)[:, MOTION_319.motion].std(axis=0).mean())


def make_relative(motion319: np.ndarray) -> np.ndarray:
    """A copy with the root translation relative to the first frame (all three axes)."""
    out = np.array(motion319, np.float32, copy=True)
    out[:, MOTION_319.translation] -= out[:1, MOTION_319.translation]
    return out


def write_music_wav(path: str | os.PathLike, y: np.ndarray, sr: int | None = None) -> Path:
    """Write a song's audio for ``music_wav/``: 16-bit WAV at the feature rate (15360 Hz).

    Two identical channels rather than one: ``audio.music.load_audio`` decodes through an ffmpeg
    stereo upmix, which scales a mono file by 1/√2, so a mono file would not decode back to the
    samples its features were computed from; identical channels average back exactly.
    """
    import soundfile as sf

    from audio.music import SAMPLE_RATE

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mono = np.clip(np.asarray(y, np.float32), -1.0, 1.0)
    sf.write(str(path), np.stack([mono, mono], axis=1), SAMPLE_RATE if sr is None else sr, subtype="PCM_16")
    return path


# ---------------------------------------------------------------------------------------------
# The dataset


class FineDanceDataset(torch.utils.data.Dataset):
    """Training windows of a FineDance-layout folder.

    Item i: (motion (window, 319) float32 tensor — contacts, relative translation, 52 × 6-D —,
    music (window, 35) float32 tensor, song name). ``windows[i]`` is its (song name, start frame).

    root: dataset folder; split: 'train', 'test' or 'all' of the official split ``finedance``
    ('genre' or 'dancer'; ``split_names``); window, stride: frames; min_std: the
    still-window filter (0 keeps everything; None: the corpus's own from splits.json, else 0.07);
    rest_joints: (55, 3) for computing contacts of
    (T, 315) files (default: the default body's, loaded only if needed); cache: keep every song in
    memory (default) or re-read the window from disk (memory-mapped) for each item.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", window: int = WINDOW,
                 stride: int = TRAIN_STRIDE, min_std: float | None = None, rest_joints=None, cache: bool = True,
                 max_length_mismatch: int = MAX_LENGTH_MISMATCH, names: list[str] | None = None,
                 finedance: str = "genre"):
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be positive, got {window} and {stride}")
        self.root = check_layout(root)
        min_std = corpus_min_std(self.root) if min_std is None else min_std
        self.split, self.window, self.stride, self.min_std, self.cache = split, window, stride, min_std, cache
        self.max_length_mismatch = max_length_mismatch
        self.names = split_names(self.root, split, finedance) if names is None else list(names)
        self._rest = rest_joints
        self.songs: dict[str, Song] = {}
        self.windows: list[tuple[str, int]] = []
        self.n_dropped = 0                  # windows dropped by the still-motion filter
        self.frames: dict[str, int] = {}
        for name in self.names:
            song = load_song(self.root, name, self._rest_joints_for(name), max_length_mismatch)
            self.frames[name] = len(song.motion)
            for s in inside_window_starts(len(song.motion), window, stride):
                if min_std > 0 and window_std(song.motion[s:s + window]) <= min_std:
                    self.n_dropped += 1
                    continue
                self.windows.append((name, s))
            if cache:
                self.songs[name] = song
        if not self.windows:
            raise DatasetError(f"{self.root}: no {window}-frame window in the {split} split "
                               f"({len(self.names)} songs; {self.n_dropped} windows below the motion "
                               f"threshold {min_std})")
        self.labels = {n: self._label(n) for n in self.names}

    def _rest_joints_for(self, name: str):
        """Rest joints, loaded on first need (a (T, 315) file)."""
        if self._rest is None:
            path = self.root / "motion" / f"{name}.npy"
            if np.load(path, mmap_mode="r").shape[-1] == MOTION_DIM_315:
                self._rest = default_rest_joints()
        return self._rest

    def _label(self, name: str) -> dict:
        p = self.root / "label_json" / f"{name}.json"
        try:
            return json.loads(p.read_text()) if p.is_file() else {}
        except ValueError as e:
            raise _fail(p, f"not valid JSON ({e})") from None

    def __len__(self) -> int:
        return len(self.windows)

    def music_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and standard deviation (35,) of the music features over every frame of
        the split's songs (the model's music normalisation)."""
        total, total_sq, count = 0.0, 0.0, 0
        for name in self.names:
            if self.cache:
                music = self.songs[name].music
            else:
                music = np.load(self.root / "music_npy" / f"{name}.npy", mmap_mode="r")
            music = np.asarray(music, np.float64)
            total, total_sq, count = total + music.sum(0), total_sq + (music ** 2).sum(0), count + len(music)
        mean = total / count
        return mean.astype(np.float32), np.sqrt(np.maximum(total_sq / count - mean ** 2, 0)).astype(np.float32)

    def _window_arrays(self, name: str, start: int) -> tuple[np.ndarray, np.ndarray]:
        stop = start + self.window
        if self.cache:
            song = self.songs[name]
            return song.motion[start:stop], song.music[start:stop]
        motion = np.load(self.root / "motion" / f"{name}.npy", mmap_mode="r")
        music = np.load(self.root / "music_npy" / f"{name}.npy", mmap_mode="r")
        if motion.shape[1] == MOTION_DIM:
            return np.asarray(motion[start:stop], np.float32), np.asarray(music[start:stop], np.float32)
        # One frame past the window decides its last contact, as on the whole song.
        part = np.asarray(motion[start:min(stop + 1, self.frames[name])], np.float32)
        full = with_contacts(part, self._rest)
        return full[:self.window], np.asarray(music[start:stop], np.float32)

    def __getitem__(self, i: int):
        name, start = self.windows[i]
        motion, music = self._window_arrays(name, start)
        return torch.from_numpy(make_relative(motion)), torch.from_numpy(np.array(music, np.float32)), name
