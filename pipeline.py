"""Song → features → motion → meshes → video: the one path every entry point calls.

``generate_dance.py`` (command line), ``app.py`` (web page) and ``generate_all.py`` (test sets) build
one :class:`DanceGenerator` (the model is loaded once) and call :meth:`DanceGenerator.dance` for each
song; :func:`render_dance` turns the result into a video with the song's audio.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from body.skeleton import FPS
from motion.formats import Motion, motion_from_vector

ROOT = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = ROOT / "assets" / "checkpoints" / "default.pt"
MIN_SONG_SECONDS = 1.0

Progress = Callable[[str, int, int], None]   # (stage, done, total)


class GenerationError(ValueError):
    """A song or setting that cannot be danced to. The message names the file."""


@dataclass
class Settings:
    """How to dance. duration: seconds from the song's start, or None for the whole song."""

    duration: float | None = 30.0
    seed: int = 0
    steps: int = 50
    guidance: float = 2.0
    eta: float = 1.0
    clip_translation: bool = True     # the reference clamps predicted translation to ±1 m too
    beat_sync: bool = True            # re-time the sampled dance onto the song's beats (sync.time_warp)


@dataclass
class Dance:
    """A generated dance: the (T, 319) model vector, the Motion it decodes to, and its song."""

    song: Path
    vector: np.ndarray
    motion: Motion
    song_seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    beat_sync: object | None = None   # sync.time_warp.BeatSync when Settings.beat_sync was on
    features: np.ndarray | None = None  # (T, 35) the song's music features for the dance's frames

    @property
    def seconds(self) -> float:
        return len(self.vector) / FPS


def resolve_device(name: str | None = "auto") -> torch.device:
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GenerationError(f"unknown device '{name}'; use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GenerationError("--device cuda: no CUDA GPU is available to PyTorch here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GenerationError("--device mps: Apple's MPS backend is not available here")
    return device


def _fast_dtype(device: torch.device, n_params: int) -> torch.dtype:
    """bf16 where it pays: large models on CPUs (2× faster, small error) and on GPUs."""
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu" and n_params > 30_000_000:
        return torch.bfloat16
    return torch.float32


class DanceGenerator:
    """Holds one model and its diffusion schedule; makes dances for any number of songs."""

    def __init__(self, checkpoint: str | os.PathLike | None = None, device: str | None = "auto",
                 dtype: torch.dtype | None = None, body_model: str | os.PathLike | None = None):
        from model.checkpoint import load_checkpoint
        from model.diffusion import GaussianDiffusion

        path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
        if not checkpoint and not path.is_file():
            raise GenerationError(f"{path}: the default model is missing; pass --checkpoint FILE")
        self.device = resolve_device(device)
        loaded = load_checkpoint(path, map_location="cpu")
        n_params = sum(p.numel() for p in loaded.model.parameters())
        self.dtype = dtype or _fast_dtype(self.device, n_params)
        self.model = loaded.model.to(self.device, self.dtype).eval()
        self.config, self.official, self.checkpoint = loaded.config, loaded.official, path
        self.n_params = n_params
        self.diffusion = GaussianDiffusion().to(self.device)
        self.body_model, self._rest_joints = body_model, None

    @property
    def rest_joints(self) -> torch.Tensor:
        """Rest joints of the body (``body_model`` as the CLI's --body_model), loaded on first use:
        beat sync finds the dance's kinematic beats on them."""
        if self._rest_joints is None:
            from body.body_model import BodyModel, BodyModelError

            try:
                self._rest_joints = BodyModel(self.body_model).rest_joints
            except BodyModelError as e:
                raise GenerationError(str(e)) from None
        return self._rest_joints

    def dance(self, song: str | os.PathLike, settings: Settings = Settings(),
              progress: Progress | None = None) -> Dance:
        """Features of the song, whole-song diffusion sampling, then (``settings.beat_sync``) the
        dance re-timed onto the song's beats → a Dance."""
        from audio.music import AudioError, song_features

        song = Path(song)
        timings = {}
        t0 = time.perf_counter()
        if progress:
            progress("features", 0, 1)
        limit = None if settings.duration is None else settings.duration + 4.0  # the last window's music
        try:
            features, seconds = song_features(song, max_seconds=limit)
        except AudioError as e:
            raise GenerationError(str(e)) from None
        if seconds < MIN_SONG_SECONDS:
            raise GenerationError(f"{song}: only {seconds:.2f} s of audio; a dance needs at least "
                                  f"{MIN_SONG_SECONDS:g} s")
        n_frames = len(features) if settings.duration is None else min(len(features), int(round(settings.duration * FPS)))
        n_frames = min(n_frames, int(round(seconds * FPS)))   # no frame past the music's end
        if progress:
            progress("features", 1, 1)
        timings["features"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        step_progress = (lambda done, total: progress("sampling", done, total)) if progress else None
        with torch.inference_mode():
            vector = self.diffusion.sample_long(
                self.model, torch.from_numpy(features).to(self.device), n_frames=n_frames, steps=settings.steps,
                guidance_weight=settings.guidance, eta=settings.eta, clip_translation=settings.clip_translation,
                generator=settings.seed, progress=step_progress)
        vector = vector.float().cpu().numpy()
        timings["sampling"] = time.perf_counter() - t0

        features = features[:n_frames]
        sync = self._sync(vector, features, timings) if settings.beat_sync else None
        if sync is not None:
            vector = sync.vector
        return Dance(song=song, vector=vector, motion=motion_from_vector(vector), song_seconds=seconds,
                     timings=timings, features=features, beat_sync=sync)

    def _sync(self, vector: np.ndarray, features: np.ndarray, timings: dict):
        """Beat sync of a (T, 319) vector onto the beats in its (T, 35) features; times it."""
        from sync.beats import music_beats_from_features
        from sync.time_warp import sync_to_beats

        t0 = time.perf_counter()
        sync = sync_to_beats(vector, music_beats_from_features(features), self.rest_joints)
        timings["beat_sync"] = time.perf_counter() - t0
        return sync

    def beat_synced(self, dance: Dance) -> Dance:
        """The dance re-timed so its kinematic beats land on its song's beats (librosa's, from the
        features the model saw; ``sync.time_warp.sync_to_beats``); adds a 'beat_sync' timing."""
        timings = dict(dance.timings)
        sync = self._sync(dance.vector, dance.features, timings)
        return replace(dance, vector=sync.vector, motion=motion_from_vector(sync.vector), timings=timings,
                       beat_sync=sync)


def render_dance(dance: Dance, out_path: str | os.PathLike, body, mode: str = "smplx", overwrite: bool = True,
                 platform: str | None = None, progress: bool = True,
                 on_frame: Callable[[int, int], None] | None = None) -> Path:
    """The dance as a 1200×1200 video with the song's audio; adds 'meshes', 'render', 'mux' timings."""
    from renderer.render_motion import render_motion

    return render_motion(dance.motion, out_path, body, audio=dance.song, mode=mode, overwrite=overwrite,
                         platform=platform, progress=progress, desc=f"render {Path(out_path).name}",
                         on_frame=on_frame, timings=dance.timings)


def save_dance_motion(dance: Dance, stem: str | os.PathLike) -> list[Path]:
    """Write STEM.npy (FineDance (T, 319)) and STEM.npz (AMASS-style, SMPL-X poses) atomically."""
    from motion.formats import save_amass_npz, save_finedance_npy

    stem = Path(stem)
    return [save_finedance_npy(dance.motion, stem.with_suffix(".npy")),
            save_amass_npz(dance.motion, stem.with_suffix(".npz"))]


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before any long work."""
    import tempfile

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise GenerationError(f"{folder}: cannot write output here ({e.strerror or e})") from None
    return folder


def parse_duration(text: str) -> float | None:
    """'full' → None (the whole song); '30' or '12.5' → seconds (> 0)."""
    if str(text).lower() in ("full", "all", "song"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise GenerationError(f"--duration must be seconds or 'full', not '{text}'") from None
    if not value > 0:
        raise GenerationError(f"--duration must be positive, not {text}")
    return value
