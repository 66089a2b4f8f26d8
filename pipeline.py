"""Song → features → motion → meshes → video: the one path every entry point calls.

``generate_dance.py`` (command line), ``app.py`` (web page) and ``generate_all.py`` (test sets) build
one :class:`DanceGenerator` (the model and the body are loaded once) and call :meth:`DanceGenerator.dance`
for each song; :func:`make_dance_files` is the per-song chain of the command line and the page (dance →
video → motion files → exports), :func:`render_dance` turns a dance into a video with the song's audio.
Errors the user can fix (a bad song, checkpoint or body file) are raised as :class:`GenerationError`.
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
from model.config import DEFAULT_SECONDS, DiffusionConfig
from motion.formats import Motion, motion_from_vector

ROOT = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = ROOT / "assets" / "checkpoints" / "default.pt"
MIN_SONG_SECONDS = 1.0
RETRIEVAL_MIN_FRAMES = 3

Progress = Callable[[str, int, int], None]   # (stage, done, total)


class GenerationError(ValueError):
    """A song or setting that cannot be danced to. The message names the file."""


@dataclass(frozen=True)
class Settings:
    """How to dance. duration: seconds from the song's start, or None for the whole song.

    steps, guidance, eta left at None take the sampler settings saved with the checkpoint
    (``model.config.DiffusionConfig``: 50, 2, 1 for every checkpoint so far).
    """

    duration: float | None = DEFAULT_SECONDS
    seed: int = 0
    steps: int | None = None          # DDIM denoising steps
    guidance: float | None = None     # classifier-free guidance weight
    eta: float | None = None          # DDIM noise
    clip_translation: bool = True     # the reference clamps predicted translation to ±1 m too
    beat_sync: bool = True            # re-time the sampled dance onto the song's beats (sync.time_warp)
    foot_lock: bool = True            # plant the feet after beat sync: two-bone leg IK (sync.foot_lock)
    retrieval: bool = True            # dance around real clips that suit the song (retrieval.bank)

    def resolved(self, diffusion: DiffusionConfig) -> "Settings":
        """These settings with steps, guidance and eta left at None taken from ``diffusion``."""
        return replace(self, steps=diffusion.sample_steps if self.steps is None else self.steps,
                       guidance=diffusion.guidance if self.guidance is None else self.guidance,
                       eta=diffusion.eta if self.eta is None else self.eta)


def settings_from_args(args, auto_duration: float | None = None) -> Settings:
    """The Settings of ``args.py``'s generation options (--duration, --seed, --steps, --guidance,
    --no_beat_sync, --no_foot_lock, --no_retrieval), for every entry point. ``--duration auto``
    (generate_all.py) means ``auto_duration``."""
    auto = args.duration == "auto" and auto_duration is not None
    return Settings(duration=auto_duration if auto else parse_duration(args.duration), seed=args.seed,
                    steps=args.steps, guidance=args.guidance, beat_sync=args.beat_sync, foot_lock=args.foot_lock,
                    retrieval=args.retrieval)


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
    foot_lock: object | None = None   # sync.foot_lock.FootLock when Settings.foot_lock was on
    retrieved: tuple[str, ...] = ()   # the real clips the dance was built around (Settings.retrieval)
    settings: Settings | None = None  # what made it, with the checkpoint's sampler settings filled in

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


def load_body(body=None):
    """The body every stage poses: ``body`` itself when it is a loaded BodyModel, else the body file
    it names (a path as --body_model takes, or None for the default). Raises GenerationError."""
    from body.body_model import BodyModel, BodyModelError

    if isinstance(body, BodyModel):
        return body
    try:
        return BodyModel(body)
    except BodyModelError as e:
        raise GenerationError(str(e)) from None


class DanceGenerator:
    """Holds one model, its diffusion schedule and the body; makes dances for any number of songs.

    body: a loaded ``BodyModel`` to share, or a body file (--body_model; None: the default body).
    ``generator.body`` is the one body the caller renders and exports with too.
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, device: str | None = "auto",
                 dtype: torch.dtype | None = None, body=None, bank: str | os.PathLike | None = None):
        from model.checkpoint import CheckpointError, load_checkpoint
        from model.diffusion import GaussianDiffusion

        path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
        if not checkpoint and not path.is_file():
            raise GenerationError(f"{path}: the default model is missing; pass --checkpoint FILE")
        self.device = resolve_device(device)
        try:
            loaded = load_checkpoint(path, map_location="cpu")
        except CheckpointError as e:
            raise GenerationError(str(e)) from None
        n_params = sum(p.numel() for p in loaded.model.parameters())
        self.dtype = dtype or _fast_dtype(self.device, n_params)
        self.model = loaded.model.to(self.device, self.dtype).eval()
        self.config, self.official, self.checkpoint = loaded.config, loaded.official, path
        self.n_params = n_params
        self.diffusion = GaussianDiffusion.from_config(loaded.diffusion).to(self.device)
        self.body = load_body(body)
        self.bank_path, self._bank = bank, None     # retrieval bank (default: ours), loaded on first use

    @property
    def rest_joints(self) -> torch.Tensor:
        """(55, 3) rest joints of the body: beat sync finds the dance's kinematic beats on them."""
        return self.body.rest_joints

    def dance(self, song: str | os.PathLike, settings: Settings | None = None,
              progress: Progress | None = None, max_seconds: float | None = None) -> Dance:
        """Features of the song, whole-song diffusion sampling, then (``settings.beat_sync``) the
        dance re-timed onto the song's beats and (``settings.foot_lock``) its feet planted → a Dance.

        max_seconds: refuse (GenerationError) dances longer than this, before decoding more of the
        song than that (the web page's --max_seconds; None: any length)."""
        from audio.music import AudioError, seconds_to_read, song_features

        song = Path(song)
        settings = (settings or Settings()).resolved(self.diffusion.config)
        timings = {}
        t0 = time.perf_counter()
        if progress:
            progress("features", 0, 1)
        try:
            read = seconds_to_read(settings.duration)
            if max_seconds is not None:
                read = check_length(song, settings.duration, max_seconds)
            features, seconds = song_features(song, max_seconds=read)
            if max_seconds is not None and settings.duration is None and seconds > max_seconds:
                raise GenerationError(_too_long(song, f"over {clock_time(max_seconds)}", max_seconds))
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

        known, keep, retrieved = None, None, ()
        if settings.retrieval and n_frames >= RETRIEVAL_MIN_FRAMES:     # shorter: generated outright
            known, keep, retrieved = self._retrieve(features[:n_frames], settings.seed, timings)
        t0 = time.perf_counter()
        step_progress = (lambda done, total: progress("sampling", done, total)) if progress else None
        with torch.inference_mode():
            vector = self.diffusion.sample_long(
                self.model, torch.from_numpy(features).to(self.device), n_frames=n_frames, steps=settings.steps,
                guidance_weight=settings.guidance, eta=settings.eta, clip_translation=settings.clip_translation,
                generator=settings.seed, progress=step_progress, known=known, keep=keep)
        vector = vector.float().cpu().numpy()
        timings["sampling"] = time.perf_counter() - t0

        features = features[:n_frames]
        sync = self._sync(vector, features, timings) if settings.beat_sync else None
        if sync is not None:
            vector = sync.vector
        lock = self._lock(vector, timings) if settings.foot_lock else None
        if lock is not None:
            vector = lock.vector
        return Dance(song=song, vector=vector, motion=motion_from_vector(vector), song_seconds=seconds,
                     timings=timings, features=features, beat_sync=sync, foot_lock=lock, retrieved=retrieved,
                     settings=settings)

    def _retrieve(self, features: np.ndarray, seed: int, timings: dict):
        """Real dance for (T, 35) features to sample around (``retrieval.bank``): → (known (T, 319),
        keep mask (T, 319), one line per clip); times it."""
        from retrieval.bank import DEFAULT_BANK, Bank, BankError, retrieve_synced
        from sync.beats import music_beats_from_features

        t0 = time.perf_counter()
        if self._bank is None:
            try:
                self._bank = Bank.load(self.bank_path or DEFAULT_BANK)
            except BankError as e:
                raise GenerationError(str(e)) from None
        found = retrieve_synced(self._bank, music_beats_from_features(features), len(features), seed,
                                self.rest_joints)
        timings["retrieval"] = time.perf_counter() - t0
        return torch.from_numpy(found.motion), torch.from_numpy(found.keep_mask()), found.clips

    def _sync(self, vector: np.ndarray, features: np.ndarray, timings: dict):
        """Beat sync of a (T, 319) vector onto the beats in its (T, 35) features; times it."""
        from sync.beats import music_beats_from_features
        from sync.time_warp import sync_to_beats

        t0 = time.perf_counter()
        sync = sync_to_beats(vector, music_beats_from_features(features), self.rest_joints)
        timings["beat_sync"] = time.perf_counter() - t0
        return sync

    def _lock(self, vector: np.ndarray, timings: dict):
        """Foot locking of a (T, 319) vector (``sync.foot_lock.lock_feet``); times it."""
        from sync.foot_lock import lock_feet

        t0 = time.perf_counter()
        lock = lock_feet(vector, self.rest_joints)
        timings["foot_lock"] = time.perf_counter() - t0
        return lock

    def beat_synced(self, dance: Dance) -> Dance:
        """The dance re-timed so its kinematic beats land on its song's beats (librosa's, from the
        features the model saw; ``sync.time_warp.sync_to_beats``); adds a 'beat_sync' timing.
        A foot-locked dance has its feet planted again after the re-timing ('foot_lock' timing)."""
        timings = dict(dance.timings)
        sync = self._sync(dance.vector, dance.features, timings)
        vector, lock = sync.vector, None
        if dance.foot_lock is not None:
            lock = self._lock(vector, timings)
            vector = lock.vector
        return replace(dance, vector=vector, motion=motion_from_vector(vector), timings=timings,
                       beat_sync=sync, foot_lock=lock,
                       settings=dance.settings and replace(dance.settings, beat_sync=True))


def check_length(song: Path, duration: float | None, max_seconds: float) -> float:
    """Refuse a dance longer than ``max_seconds`` (GenerationError) from the request and the song's
    header alone (ffprobe), before any decoding. → seconds of the song to decode: just enough for
    the dance, or ``max_seconds`` and a little more when a whole song's header states no length
    (``DanceGenerator.dance`` then refuses it if the audio runs on)."""
    from audio.music import WINDOW, audio_seconds, seconds_to_read

    if duration is not None:
        if duration > max_seconds:
            raise GenerationError(f"{duration:g} s of dance asked for; this server makes dances of at most "
                                  f"{max_seconds:g} s ({clock_time(max_seconds)})")
        return seconds_to_read(duration)
    total = audio_seconds(song)
    if total is not None and total > max_seconds:
        raise GenerationError(_too_long(song, clock_time(total), max_seconds))
    return max_seconds + WINDOW / FPS


def _too_long(song: Path, length: str, max_seconds: float) -> str:
    return (f"{song}: the song is {length} long and this server dances at most {max_seconds:g} s "
            f"({clock_time(max_seconds)}) of it: ask for a part of it (seconds of dance), or choose a shorter song")


def clock_time(seconds: float) -> str:
    """3725.2 → '1:02:05'; 95 → '1:35'."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


@dataclass
class DanceFiles:
    """What :func:`make_dance_files` wrote for one song."""

    dance: Dance
    video: Path
    motion: list[Path]      # STEM.npy (FineDance) and STEM.npz (AMASS-style), when asked for
    exports: list[Path]     # STEM.bvh, STEM.glb, STEM.npz, … as asked for


def make_dance_files(generator: DanceGenerator, song: str | os.PathLike, video: str | os.PathLike,
                     settings: Settings | None = None, mode: str = "smplx", save_motion: bool = False,
                     exports=(), ground: bool = False, overwrite: bool = False, platform: str | None = None,
                     progress: Progress | None = None, max_seconds: float | None = None) -> DanceFiles:
    """The per-song chain of the command line and the web page: dance → video (``video``, .mp4) →
    motion files beside it (``save_motion``) → exports beside it (``exports``: 'bvh', 'glb', 'npz').

    Every file is posed on ``generator.body``. progress(stage, done, total) hears 'features',
    'sampling' and 'render'. Raises GenerationError for songs that cannot be danced to, and for
    dances over ``max_seconds`` (see :meth:`DanceGenerator.dance`).
    """
    from exporters import export_all

    dance = generator.dance(song, settings, progress=progress, max_seconds=max_seconds)
    on_frame = (lambda done, total: progress("render", done, total)) if progress else None
    video = render_dance(dance, video, generator.body, mode=mode, overwrite=overwrite, platform=platform,
                         progress=False, on_frame=on_frame)
    stem = video.with_suffix("")
    motion = save_dance_motion(dance, stem) if save_motion else []
    # An 'npz' export writes the z-up .npz over save_motion's y-up one; both read back the same.
    exported = export_all(dance.motion, stem, exports, generator.body, ground=ground)
    return DanceFiles(dance=dance, video=video, motion=motion, exports=exported)


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
