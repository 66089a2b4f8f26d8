"""Song → features → motion → meshes → video: the one path every entry point calls.

``generate_dance.py`` (command line), ``app.py`` (web page) and ``generate_all.py`` (test sets) build
one :class:`DanceGenerator` (the model and the body are loaded once) and call :meth:`DanceGenerator.dance`
for each song; :func:`make_dance_files` is the per-song chain of the command line and the page (dance →
motion files and exports → video; :func:`dance_files_in_stages` gives the motion files before the video,
as the page's 3-D player wants), :func:`render_dance` turns a dance into a video with the song's audio.
An :class:`EditRequest` (``--edit``/``--keep``/``--keep_parts``, the page's Edit section) makes the
dance around a motion the user brings: kept spans and parts stay exact, the rest is generated.
Errors the user can fix (a bad song, checkpoint or body file) are raised as :class:`GenerationError`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from body.skeleton import FPS, MOTION_DIM, N_CONTACTS
from model.config import DEFAULT_SECONDS, DiffusionConfig
from dataset.styles import ANY, StyleError, check_style, style_index
from motion.edit import EditError, EditPlan
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

    reference: the official FineDance ``test.py`` instead of our defaults (issue 15; README "Two
    modes"): its per-slice music features (``audio.music.reference_song_windows``), its sampler
    and stitching (``GaussianDiffusion.sample_long(reference=True)``), and none of our additions
    (beat sync, foot lock, retrieval and hand motion are off, whatever they are set to).

    hand_motion: our procedural hand layer (``sync.hands``, issue 22): finger poses that change on the
    beat and follow the arms. It acts only where the network's own fingers are still (a network trained on
    real finger capture keeps its hands; ``Dance.hands`` says what was decided).

    style: ``any`` or a dance style of ``dataset.styles.STYLES`` (issue 22): retrieval draws only clips
    of that style, a network with a style token (``ModelConfig.n_styles``) gets it, and the hand layer
    adds the style's own hand shapes; with a network without a token (the official checkpoint, older
    ones) it changes the retrieved clips and hands only (:func:`style_note`). Reference mode dances ``any``.
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
    reference: bool = False           # the official test.py's features, sampler and stitching; no additions
    hand_motion: bool = True          # procedural finger poses on the beat (sync.hands), unless the network's own move
    style: str = "any"                # dance style (dataset.styles): retrieval's clips and the style token

    def resolved(self, diffusion: DiffusionConfig) -> "Settings":
        """These settings with steps, guidance and eta left at None taken from ``diffusion`` (and in
        reference mode beat sync, foot lock, retrieval and hand motion off)."""
        out = replace(self, steps=diffusion.sample_steps if self.steps is None else self.steps,
                      guidance=diffusion.guidance if self.guidance is None else self.guidance,
                      eta=diffusion.eta if self.eta is None else self.eta)
        if self.reference:
            out = replace(out, beat_sync=False, foot_lock=False, retrieval=False, clip_translation=True,
                          hand_motion=False, style=ANY)
        return out


def settings_from_args(args, auto_duration: float | None = None, edit: EditPlan | None = None) -> Settings:
    """The Settings of ``args.py``'s generation options (--duration, --seed, --steps, --guidance,
    --no_beat_sync, --no_foot_lock, --no_retrieval, --no_hand_motion, --reference, --style), for every entry point. ``--duration
    auto`` (generate_all.py) means ``auto_duration``; no --duration means DEFAULT_SECONDS, or with an
    ``edit`` the edited motion's length."""
    auto = args.duration == "auto" and auto_duration is not None
    if args.duration is None:
        duration = edit.seconds if edit is not None else DEFAULT_SECONDS
    else:
        duration = auto_duration if auto else parse_duration(args.duration)
    return Settings(duration=duration, seed=args.seed,
                    steps=args.steps, guidance=args.guidance, beat_sync=args.beat_sync, foot_lock=args.foot_lock,
                    retrieval=args.retrieval, reference=getattr(args, "reference", False),
                    hand_motion=getattr(args, "hand_motion", True),
                    style=checked_style(getattr(args, "style", None)))


def checked_style(name: str | None) -> str:
    """A style name checked (None: ``any``); raises GenerationError (one line, listing the choices)."""
    try:
        return check_style(name)
    except StyleError as e:
        raise GenerationError(str(e)) from None


def style_note(generator: "DanceGenerator", settings: Settings, edit: bool = False) -> str | None:
    """One line when the style asked for reaches only part of the dance: a model without a style
    token (the official checkpoint, older ones) dances it through the retrieved clips alone, and with
    retrieval off (or an edit, which retrieves nothing) not at all. None when the style is ``any`` or
    fully applied."""
    style = checked_style(settings.style)
    if style == ANY or settings.reference or generator.has_style:
        return None
    retrieves = settings.retrieval and not edit
    where = "the retrieved real clips only" if retrieves else "nothing (no real clips are retrieved)"
    return (f"style '{style}': {generator.checkpoint.name} has no style input, so the style changes "
            f"{where}")


@dataclass(frozen=True)
class EditRequest:
    """Dance around a motion the user brings (issue 13).

    motion: a motion file in any format ``render.py`` reads (FineDance .npy, EDGE .pkl, AMASS-style
    .npz), a loaded :class:`Motion`, or a (T, 319) / (T, 315) vector. The song and the motion start
    together at frame 0; the dance lasts max(motion, ``Settings.duration``) (None: the whole song), the
    extra frames continuing the dance.
    keep: the spans of the motion kept, in seconds: '0-3,6-10' or ((0, 3), (6, 10)); None: all of it.
    parts: what is kept inside the spans: 'all', or any of 'lower', 'upper', 'hands', 'root' (a
    comma-separated string or a sequence; see ``motion.edit``).
    """

    motion: object
    keep: str | tuple | None = None
    parts: str | tuple = "all"


def edit_from_args(args) -> EditPlan | None:
    """The edit of generate_dance.py's --edit/--keep/--keep_parts (None without --edit), loaded and
    checked: raises GenerationError naming a bad file, span or part."""
    if getattr(args, "edit", None) is None:
        for option in ("keep", "keep_parts"):
            if getattr(args, option, None) is not None:
                raise GenerationError(f"--{option} needs --edit MOTION")
        return None
    return load_edit(EditRequest(args.edit, args.keep, args.keep_parts or "all"))


def load_edit(request: EditRequest | EditPlan) -> EditPlan:
    """Read and check an edit: the motion brought to y up and 30 fps as a (T, 319) vector, the spans
    in frames, the parts. Raises GenerationError naming the bad file, span or part."""
    from motion.edit import parse_parts, parse_spans
    from motion.formats import FPS as MOTION_FPS, MotionFormatError, load_motion, motion_to_vector, resample, to_y_up

    if isinstance(request, EditPlan):
        return request
    source, name = request.motion, "motion"
    try:
        if isinstance(source, (str, os.PathLike)):
            name = str(source)
            source = load_motion(source)
        if isinstance(source, Motion):
            has_contacts = source.contacts is not None
            vector = motion_to_vector(resample(to_y_up(source), MOTION_FPS), with_contacts=True)
        else:
            vector = np.asarray(source.detach().cpu() if torch.is_tensor(source) else source, np.float32)
            has_contacts = vector.ndim == 2 and vector.shape[-1] == MOTION_DIM
            if vector.ndim != 2 or vector.shape[-1] not in (MOTION_DIM, MOTION_DIM - N_CONTACTS):
                raise EditError(f"{name}: a motion vector is (T, {MOTION_DIM}) or (T, {MOTION_DIM - N_CONTACTS}), "
                                f"got {vector.shape}")
            if not has_contacts:
                vector = np.concatenate([np.zeros((len(vector), N_CONTACTS), np.float32), vector], axis=1)
        if not np.isfinite(vector).all():
            raise EditError(f"{name}: the motion holds NaN or infinite numbers")
        keep = request.keep
        if keep is not None and not isinstance(keep, str):
            keep = ",".join(f"{float(a):g}-{float(b):g}" for a, b in keep)
        seconds = len(vector) / FPS
        return EditPlan(vector, parse_spans(keep, seconds), parse_parts(request.parts), has_contacts, name)
    except (MotionFormatError, EditError) as e:
        raise GenerationError(str(e)) from None


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
    kept: np.ndarray | None = None    # (T, 319) bool: the numbers an edit kept exactly (EditRequest)
    beat_track: object | None = None  # audio.beats.BeatTrack of the song (our mode; None in reference mode)
    hands: object | None = None       # sync.hands.HandLayer when Settings.hand_motion was on (.applied: whether it acted)

    @property
    def seconds(self) -> float:
        return len(self.vector) / FPS

    @property
    def beat_note(self) -> str | None:
        """One line naming the spans of the dance where the song has no steady beat (so beat sync left
        them alone), or None when it has one throughout."""
        if self.beat_track is None:
            return None
        spans = [(a, min(b, self.seconds)) for a, b in self.beat_track.unsteady_spans() if a < self.seconds]
        if not spans:
            return None
        where = ", ".join(f"{clock_time(a)}–{clock_time(b)}" for a, b in spans)
        if len(spans) == 1 and spans[0][0] <= 0 and spans[0][1] >= self.seconds:
            return f"{self.song.name}: no steady beat heard; the dance is not beat-synced"
        return f"{self.song.name}: no steady beat heard in {where}; the dance is not beat-synced there"


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
              progress: Progress | None = None, edit: EditRequest | EditPlan | None = None,
              max_seconds: float | None = None) -> Dance:
        """Features of the song, whole-song diffusion sampling, then (``settings.beat_sync``) the
        dance re-timed onto the song's beats, (``settings.foot_lock``) its feet planted and
        (``settings.hand_motion``) procedural finger poses laid on the beats where the network's own
        fingers are still → a Dance.

        edit: dance around a motion (:class:`EditRequest`): its kept spans and parts are kept exactly
        (inpainting), retrieval is off, and beat sync, foot lock and hand motion act on the generated
        rest only.
        max_seconds: refuse (GenerationError) dances longer than this, before decoding more of the
        song than that (the web page's --max_seconds; None: any length)."""
        from audio.music import AudioError, frames_of_windows, reference_song_windows, seconds_to_read, song_analysis

        song = Path(song)
        settings = (settings or Settings()).resolved(self.diffusion.config)
        settings = replace(settings, style=checked_style(settings.style))
        plan = None if edit is None else load_edit(edit)
        wanted = settings.duration
        if plan is not None and wanted is not None:
            wanted = max(wanted, plan.seconds)
        timings = {}
        t0 = time.perf_counter()
        if progress:
            progress("features", 0, 1)
        try:
            read = seconds_to_read(wanted)
            if max_seconds is not None:
                read = check_length(song, wanted, max_seconds)
            if settings.reference:      # per-slice windows (n, 120, 35) as the official test.py makes them
                windows, seconds = reference_song_windows(song, max_seconds=read)
                features, track = frames_of_windows(windows), None
            else:
                windows, (features, track, seconds) = None, song_analysis(song, max_seconds=read)
            if max_seconds is not None and wanted is None and seconds > max_seconds:
                raise GenerationError(_too_long(song, f"over {clock_time(max_seconds)}", max_seconds))
        except AudioError as e:
            raise GenerationError(str(e)) from None
        if seconds < MIN_SONG_SECONDS:
            raise GenerationError(f"{song}: only {seconds:.2f} s of audio; a dance needs at least "
                                  f"{MIN_SONG_SECONDS:g} s")
        n_frames = len(features) if wanted is None else min(len(features), int(round(wanted * FPS)))
        n_frames = min(n_frames, int(round(seconds * FPS)))   # no frame past the music's end
        if plan is not None and n_frames < plan.n_frames:
            raise GenerationError(f"{plan.name}: the motion lasts {plan.seconds:.2f} s but {song} only "
                                  f"{seconds:.2f} s; the song and the motion start together, so use a longer "
                                  "song or cut the motion")
        if progress:
            progress("features", 1, 1)
        timings["features"] = time.perf_counter() - t0

        known, keep, retrieved, kept, clip_translation = None, None, (), None, settings.clip_translation
        if plan is not None:
            known, keep, kept, offset, clip_translation = self._edit_inputs(plan, n_frames, settings)
        elif settings.retrieval and n_frames >= RETRIEVAL_MIN_FRAMES:     # shorter: generated outright
            known, keep, retrieved = self._retrieve(features[:n_frames], settings.seed, timings, settings.style)
        t0 = time.perf_counter()
        step_progress = (lambda done, total: progress("sampling", done, total)) if progress else None
        music = torch.from_numpy(features if windows is None else windows).to(self.device)
        with torch.inference_mode():
            vector = self.diffusion.sample_long(
                self.model, music, n_frames=n_frames, steps=settings.steps,
                guidance_weight=settings.guidance, eta=settings.eta, clip_translation=clip_translation,
                generator=settings.seed, progress=step_progress, known=known, keep=keep,
                reference=settings.reference, style=style_index(settings.style) if self.has_style else 0)
        vector = vector.float().cpu().numpy()
        if plan is not None:   # back where the motion was, and the kept numbers exactly the source's
            vector[:, offset[0]] += offset[1]
            vector = np.where(kept, plan.known(n_frames), vector)
        timings["sampling"] = time.perf_counter() - t0
        finger_speed = self._finger_speed(vector, kept) if settings.hand_motion else None

        features = features[:n_frames]
        sync = self._sync(vector, features, timings, kept) if settings.beat_sync else None
        if sync is not None:
            vector = sync.vector
        lock = self._lock(vector, timings, kept) if settings.foot_lock else None
        if lock is not None:
            vector = lock.vector
        hands = None
        if settings.hand_motion:
            hands = self._hands(vector, features, track, settings, timings, kept, finger_speed)
            vector = hands.vector
        return Dance(song=song, vector=vector, motion=motion_from_vector(vector), song_seconds=seconds,
                     timings=timings, features=features, beat_sync=sync, foot_lock=lock, retrieved=retrieved,
                     settings=settings, kept=kept, beat_track=track, hands=hands)

    @staticmethod
    def _finger_speed(vector: np.ndarray, kept: np.ndarray | None) -> float:
        """The mean finger speed (rad/s) of the dance the network wrote (its hands, not an edit's kept ones):
        the hand layer acts only where it is still (``sync.hands.network_hands_move``)."""
        from sync.hands import network_hands_move

        return network_hands_move(vector, kept)[1]

    def _hands(self, vector: np.ndarray, features: np.ndarray, track, settings: Settings, timings: dict,
               kept: np.ndarray | None, network_speed: float | None, force: bool = False):
        """The procedural hand layer (``sync.hands.add_hand_motion``) on a finished (T, 319) dance: poses on
        the beats in its (T, 35) features (``track``'s steady spans, where it has them), seeded by the dance's
        seed, in its style; times it."""
        from sync.beats import music_beats_from_features
        from sync.hands import add_hand_motion

        t0 = time.perf_counter()
        steady = None if track is None else track.steady[:len(vector)]
        hands = add_hand_motion(vector, self.rest_joints.numpy(), music_beats_from_features(features), steady,
                                seed=settings.seed, style=getattr(settings, "style", "any"), kept=kept,
                                network_speed=network_speed, force=force)
        timings["hands"] = time.perf_counter() - t0
        return hands

    def _edit_inputs(self, plan: EditPlan, n_frames: int, settings: Settings):
        """The inpainting inputs of an edit for n_frames: known (T, 319) tensor, keep weights (T, 319)
        tensor (1 = kept, easing to 0 beside kept spans), kept (T, 319) bool, the horizontal offset
        (channels, (2,) metres) taken off the known root so the network sees it near the origin, and
        whether the predicted translation is clamped (not when the kept root goes past the clamp)."""
        from motion.layout import MOTION_319

        known = plan.known(n_frames).copy()
        kept = plan.kept(n_frames)
        weights = plan.keep_weights(n_frames)
        horizontal = [MOTION_319.translation.start, MOTION_319.translation.start + 2]   # x and z (y is up)
        weighted = weights[:, horizontal[0]] > 0
        offset = known[weighted][:, horizontal].mean(axis=0) if weighted.any() else np.zeros(2, np.float32)
        known[:, horizontal] -= offset
        clip = self.diffusion.config.clip_x0
        clip_translation = settings.clip_translation and (
            clip is None or not weighted.any()
            or np.abs(known[weighted][:, MOTION_319.translation]).max() <= clip)
        return (torch.from_numpy(known), torch.from_numpy(weights), kept, (horizontal, offset.astype(np.float32)),
                clip_translation)

    @property
    def has_style(self) -> bool:
        """Whether the network takes a style token (else a style changes the retrieved clips only)."""
        return self.model.has_style

    def _retrieve(self, features: np.ndarray, seed: int, timings: dict, style: str = ANY):
        """Real dance for (T, 35) features to sample around (``retrieval.bank``), from clips of
        ``style``: → (known (T, 319), keep mask (T, 319), one line per clip); times it."""
        from retrieval.bank import DEFAULT_BANK, Bank, BankError, retrieve_synced
        from sync.beats import music_beats_from_features

        t0 = time.perf_counter()
        if self._bank is None:
            try:
                self._bank = Bank.load(self.bank_path or DEFAULT_BANK)
            except BankError as e:
                raise GenerationError(str(e)) from None
        try:
            found = retrieve_synced(self._bank, music_beats_from_features(features), len(features), seed,
                                    self.rest_joints, style=style)
        except BankError as e:
            raise GenerationError(str(e)) from None
        timings["retrieval"] = time.perf_counter() - t0
        return torch.from_numpy(found.motion), torch.from_numpy(found.keep_mask()), found.clips

    def _sync(self, vector: np.ndarray, features: np.ndarray, timings: dict, kept: np.ndarray | None = None):
        """Beat sync of a (T, 319) vector onto the beats in its (T, 35) features (frames with ``kept``
        numbers are not re-timed); times it."""
        from sync.beats import music_beats_from_features
        from sync.time_warp import sync_to_beats

        t0 = time.perf_counter()
        sync = sync_to_beats(vector, music_beats_from_features(features), self.rest_joints, keep=kept)
        timings["beat_sync"] = time.perf_counter() - t0
        return sync

    def _lock(self, vector: np.ndarray, timings: dict, kept: np.ndarray | None = None):
        """Foot locking of a (T, 319) vector (``sync.foot_lock.lock_feet``; ``kept`` legs and root are
        left alone); times it."""
        from sync.foot_lock import lock_feet

        t0 = time.perf_counter()
        lock = lock_feet(vector, self.rest_joints, keep=kept)
        timings["foot_lock"] = time.perf_counter() - t0
        return lock

    def hands_added(self, dance: Dance, force: bool = False) -> Dance:
        """The dance with the procedural hand layer (``sync.hands``) on its song's beats, as
        ``Settings.hand_motion`` lays it (adds a 'hands' timing; ``dance.hands.applied`` is False, and the
        dance unchanged, where its fingers already move, unless ``force``). For a dance made without it."""
        timings = dict(dance.timings)
        hands = self._hands(dance.vector, dance.features, dance.beat_track, dance.settings or Settings(), timings,
                            dance.kept, None, force=force)
        return replace(dance, vector=hands.vector, motion=motion_from_vector(hands.vector), timings=timings,
                       hands=hands, settings=dance.settings and replace(dance.settings, hand_motion=True))

    def beat_synced(self, dance: Dance) -> Dance:
        """The dance re-timed so its kinematic beats land on its song's beats (librosa's, from the
        features the model saw; ``sync.time_warp.sync_to_beats``); adds a 'beat_sync' timing.
        A foot-locked dance has its feet planted again after the re-timing ('foot_lock' timing), and
        procedural hands are laid on the song's beats again ('hands' timing)."""
        timings = dict(dance.timings)
        sync = self._sync(dance.vector, dance.features, timings, dance.kept)
        vector, lock, hands = sync.vector, None, dance.hands
        if dance.foot_lock is not None:
            lock = self._lock(vector, timings, dance.kept)
            vector = lock.vector
        if hands is not None and hands.applied:     # the poses back on the beats after the re-timing
            hands = self._hands(vector, dance.features, dance.beat_track, dance.settings or Settings(), timings,
                                dance.kept, hands.network_speed, force=True)
            vector = hands.vector
        return replace(dance, vector=vector, motion=motion_from_vector(vector), timings=timings,
                       beat_sync=sync, foot_lock=lock, hands=hands,
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
    video: Path | None      # None until rendered (or when no video was asked for)
    motion: list[Path]      # STEM.npy (FineDance) and STEM.npz (AMASS-style), when asked for
    exports: list[Path]     # STEM.bvh, STEM.glb, STEM.npz, … as asked for


def dance_files_in_stages(generator: DanceGenerator, song: str | os.PathLike, video: str | os.PathLike,
                          settings: Settings | None = None, mode: str | None = "smplx", save_motion: bool = False,
                          exports=(), ground: bool = True, overwrite: bool = False, platform: str | None = None,
                          progress: Progress | None = None, edit: EditRequest | EditPlan | None = None,
                          max_seconds: float | None = None) -> Iterator[DanceFiles]:
    """The per-song chain of the command line and the web page, one stage at a time: dance → motion
    files beside ``video`` (``save_motion``) and exports (``exports``: 'bvh', 'glb', 'npz'; bvh and
    glb grounded unless ``ground=False``) → video (``video``, .mp4).

    Yields a :class:`DanceFiles` as soon as the motion files are written (``video`` None), so a
    caller can show the motion before the video exists (the web page's 3-D player), then the same
    object with the video; ``mode=None`` renders no video (one yield). ``edit``: dance around a
    motion (see :meth:`DanceGenerator.dance`). Every file is posed on ``generator.body``.
    progress(stage, done, total) hears 'features', 'sampling' and 'render'. Raises GenerationError
    for songs that cannot be danced to, and for dances over ``max_seconds``.
    """
    from exporters import export_all

    dance = generator.dance(song, settings, progress=progress, edit=edit, max_seconds=max_seconds)
    stem = Path(video).with_suffix("")
    motion = save_dance_motion(dance, stem) if save_motion else []
    # An 'npz' export writes the z-up .npz over save_motion's y-up one; both read back the same.
    exported = export_all(dance.motion, stem, exports, generator.body, ground=ground)
    files = DanceFiles(dance=dance, video=None, motion=motion, exports=exported)
    yield files
    if mode is None:
        return
    on_frame = (lambda done, total: progress("render", done, total)) if progress else None
    files.video = render_dance(dance, video, generator.body, mode=mode, overwrite=overwrite, platform=platform,
                               progress=False, on_frame=on_frame)
    yield files


def make_dance_files(generator: DanceGenerator, song: str | os.PathLike, video: str | os.PathLike,
                     settings: Settings | None = None, mode: str | None = "smplx", save_motion: bool = False,
                     exports=(), ground: bool = True, overwrite: bool = False, platform: str | None = None,
                     progress: Progress | None = None, edit: EditRequest | EditPlan | None = None,
                     max_seconds: float | None = None) -> DanceFiles:
    """All of :func:`dance_files_in_stages` at once: dance → motion files and exports → video."""
    files = None
    for files in dance_files_in_stages(generator, song, video, settings, mode=mode, save_motion=save_motion,
                                       exports=exports, ground=ground, overwrite=overwrite, platform=platform,
                                       progress=progress, edit=edit, max_seconds=max_seconds):
        pass
    return files


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
