"""The web page: upload or record a song, watch it danced, download the motion.

:class:`DanceService` owns the one generator (model and body) the page uses and gives every request a
folder of its own; :func:`build_app` lays out the Gradio page around it. Each request runs the same
per-song chain as ``generate_dance.py`` (``pipeline.dance_files_in_stages``), one stage at a time: the
page shows the motion files, and the 3-D player (``webapp_static/player.js`` on three.js) plays the
``.glb`` among them, before the video is rendered.
``app.py`` is the entry point; tests build the page with a tiny checkpoint.

Temporary files: each server keeps everything it writes (request folders, and Gradio's copies of
uploads and results when ``app.py`` points Gradio there) under one folder of its own,
``$TMPDIR/dance-server-*``, which holds a lock (``fcntl.flock``) on its ``server.pid`` file for as
long as the process lives. The kernel drops the lock however the process ends, so at start
:func:`clean_leftovers` deletes the folders whose lock nobody holds: those of servers killed
with SIGKILL, crashed or cut off by a power failure.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pipeline
from dataset.styles import ANY, STYLES

NO_VIDEO = "none"
RENDER_MODES = (("Full body", "smplx"), ("Stick figure (faster)", "skeleton"),
                ("No video: the 3-D player and the motion files only (fastest)", NO_VIDEO))
STAGES = {   # pipeline stage → (what the page says, unit)
    "features": ("Listening to the music", "steps"),
    "sampling": ("Dancing (denoising)", "steps"),
    "render": ("Rendering the video", "frames"),
}
PROGRESS_INTERVAL = 0.25          # seconds between progress messages sent to the page
CACHE_CLEANUP = (1800, 3600)      # Gradio's copies of uploads and results: every 30 min, drop those over 1 h old
MAX_STEPS = 200
PAGE_EXPORTS = ("bvh", "glb")      # offered for download beside the .npy and .npz
MAX_UPLOAD_MB = 200               # default --max_upload_mb: a 10-minute WAV is about 100 MB
MAX_SECONDS = 300                 # default --max_seconds: the longest dance (5 min) one visitor can ask for
MB = 1024 * 1024
DEMO_SONG = pipeline.ROOT / "assets" / "music" / "soldiers_joy_house.mp3"
ROOT_PREFIX, LOCK_FILE = "dance-server-", "server.pid"
EDIT_SOURCES = ("The dance just made", "An uploaded motion file")
EDIT_PARTS = (("Legs and feet (with the root's path)", "lower"), ("Upper body: spine, head, arms (with the root's path)",
              "upper"), ("Hands (the fingers)", "hands"), ("Root path and facing only", "root"))
SPAN_SLIDER_SECONDS = 60.0       # the span sliders' range until a dance is made (then: its length)
STATIC = pipeline.ROOT / "webapp_static"     # the 3-D player: our glue (player.js) and three.js (vendor/)
THREE_MODULES = {"three": "vendor/three/build/three.module.js", "three/addons/": "vendor/three/examples/jsm/"}
PLAYER_HTML = """<div class="dance-player" data-state="empty">
<div class="dance-player-view" style="position:relative;width:100%;aspect-ratio:4/3;background:#000;
 touch-action:none;cursor:grab"></div>
<div style="display:flex;gap:8px;align-items:center;margin-top:6px">
<audio class="dance-player-audio" controls preload="auto" style="flex:1;min-width:0"></audio>
<button type="button" class="dance-player-reset" style="padding:4px 10px;border:1px solid #888;border-radius:6px">
Reset view</button></div>
<p class="dance-player-status" style="margin:4px 0 0 0;font-size:0.9em">The dance shows here in 3-D as soon as its
motion is ready, before the video: play the song under it, drag to turn around the dancer.</p></div>"""


@dataclass
class WebResult:
    video: Path | None     # None until rendered, and with the "No video" setting
    motion: list[Path]     # [STEM.npy (FineDance), STEM.npz (AMASS-style)]
    dance: pipeline.Dance


def _safe_stem(song: Path) -> str:
    """A file-name stem made from the song's name: letters (any script), digits, '-' and '_' only,
    so no path, quote, space or dot from a visitor's file name reaches a file name of ours. Gradio's
    uploader sends some characters percent-encoded ('"' as %22); they are decoded first."""
    stem = re.sub(r"[^\w-]+", "_", urllib.parse.unquote(song.stem)).strip("_-")[:60]
    return stem or "song"


def claim_server_root(parent: str | os.PathLike | None = None) -> tuple[Path, int]:
    """A new folder for one server's temporary files, under ``parent`` (default $TMPDIR), and the
    open descriptor of its lock, held until the descriptor is closed or the process ends."""
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=parent))
    fd = os.open(root / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()}\n".encode())   # written once locked: an empty file is a server being born
    return root, fd


def clean_leftovers(parent: str | os.PathLike | None = None) -> list[Path]:
    """Delete the temporary folders of servers that ended without cleaning up (SIGKILL, a crash):
    those whose lock no live process holds. Live servers' folders are left alone. → the folders deleted."""
    removed = []
    for root in sorted(Path(parent or tempfile.gettempdir()).glob(ROOT_PREFIX + "*")):
        try:
            fd = os.open(root / LOCK_FILE, os.O_RDONLY)
        except OSError:          # not a server folder, or one being created
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:          # its server is alive
            os.close(fd)
            continue
        try:
            if os.fstat(fd).st_size > 0:
                shutil.rmtree(root, ignore_errors=True)
                removed.append(root)
        finally:
            os.close(fd)
    return removed


class DanceService:
    """One model and one body for every visitor, used by one request at a time.

    ``generator_factory()`` returns a :class:`pipeline.DanceGenerator` (which holds the body); it is
    called once, by :meth:`load` or by the first request. Each request writes into a
    fresh folder under the server's locked temporary root (:func:`claim_server_root`, made in
    ``temp_parent``); only the last ``keep`` folders stay (Gradio copies what the page shows into
    its own cache), a failed request's folder goes at once, and :meth:`close` deletes the root.
    Limits: songs over ``max_upload_mb`` and dances over ``max_seconds`` are refused (None: none).
    """

    def __init__(self, generator_factory: Callable[[], pipeline.DanceGenerator], keep: int = 8,
                 platform: str | None = None, max_upload_mb: float | None = MAX_UPLOAD_MB,
                 max_seconds: float | None = MAX_SECONDS, temp_parent: str | os.PathLike | None = None):
        if keep < 1:
            raise ValueError(f"--keep_requests must be at least 1, not {keep}")
        for name, value in (("--max_upload_mb", max_upload_mb), ("--max_seconds", max_seconds)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, not {value}")
        self._generator_factory = generator_factory
        self.keep, self.platform = keep, platform
        self.max_upload_mb, self.max_seconds, self.temp_parent = max_upload_mb, max_seconds, temp_parent
        self.generator: pipeline.DanceGenerator | None = None
        self.root: Path | None = None
        self._root_lock: int | None = None
        self._folders: deque[Path] = deque()
        self._lock = threading.Lock()

    def load(self) -> "DanceService":
        with self._lock:
            self._load()
        return self

    def _load(self):
        if self.generator is None:
            self.generator = self._generator_factory()

    @property
    def body(self):
        """The generator's body (None until loaded)."""
        return self.generator.body if self.generator is not None else None

    def page_defaults(self, settings: pipeline.Settings | None = None) -> pipeline.Settings:
        """``settings`` with the model's own sampler settings where they are left open (loads the model)."""
        with self._lock:
            self._load()
        return (settings or pipeline.Settings()).resolved(self.generator.diffusion.config)

    def _claim_root(self) -> Path:
        if self.root is None or not self.root.is_dir():
            self._release_root()
            self.root, self._root_lock = claim_server_root(self.temp_parent)
        return self.root

    def _release_root(self):
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        if self._root_lock is not None:
            os.close(self._root_lock)
        self.root, self._root_lock = None, None

    def cache_dir(self) -> Path:
        """A folder for Gradio's copies of uploads and results (GRADIO_TEMP_DIR), inside the root."""
        with self._lock:
            folder = self._claim_root() / "gradio"
        folder.mkdir(exist_ok=True)
        return folder

    def _new_folder(self) -> Path:
        return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=self._claim_root()))

    def check_upload(self, song: Path):
        """Refuse (GenerationError) a file over ``max_upload_mb``, before anything reads it."""
        size = song.stat().st_size if song.is_file() else 0
        if self.max_upload_mb is not None and size > self.max_upload_mb * MB:
            raise pipeline.GenerationError(f"{song}: the file is {size / MB:,.1f} MB; this server takes songs of "
                                           f"at most {self.max_upload_mb:g} MB")

    def _keep(self, folder: Path):
        self._folders.append(folder)
        while len(self._folders) > self.keep:
            shutil.rmtree(self._folders.popleft(), ignore_errors=True)

    def make_in_stages(self, song: str | Path, settings: pipeline.Settings, mode: str = "smplx",
                       progress: pipeline.Progress | None = None, edit=None) -> Iterator[WebResult]:
        """Song → motion files, then video, in a new folder (``pipeline.dance_files_in_stages``): yields
        a WebResult as soon as the motion files exist (video None; the page's 3-D player shows it),
        then the same with the video; with mode NO_VIDEO ('none') only the first. Raises
        pipeline.GenerationError for bad songs and for requests over the limits. edit: a
        ``pipeline.EditRequest`` (or loaded ``EditPlan``) to dance around (the Re-dance button).
        The model is used by one request at a time; a failed or abandoned request's folder goes."""
        song = Path(song)
        self.check_upload(song)
        folder = None
        try:
            with self._lock:
                self._load()
                folder = self._new_folder()
                stem = folder / f"{_safe_stem(song)}_dance"
                stages = pipeline.dance_files_in_stages(
                    self.generator, song, stem.with_suffix(".mp4"), settings,
                    mode=None if mode == NO_VIDEO else mode, save_motion=True, exports=PAGE_EXPORTS,
                    overwrite=True, platform=self.platform, progress=progress, edit=edit,
                    max_seconds=self.max_seconds)
                files = next(stages)                           # the dance and its motion files
            yield WebResult(None, files.motion + files.exports, files.dance)
            with self._lock:
                for files in stages:                           # the video
                    pass
                self._keep(folder)
            if files.video is not None:
                yield WebResult(files.video, files.motion + files.exports, files.dance)
        except BaseException:
            if folder is not None and folder not in self._folders:
                shutil.rmtree(folder, ignore_errors=True)
            raise

    def make(self, song: str | Path, settings: pipeline.Settings, mode: str = "smplx",
             progress: pipeline.Progress | None = None, edit=None) -> WebResult:
        """Song → motion files and video in a new folder: :meth:`make_in_stages` at once."""
        result = None
        for result in self.make_in_stages(song, settings, mode=mode, progress=progress, edit=edit):
            pass
        return result

    @property
    def folders(self) -> list[Path]:
        """The request folders still on disk, oldest first."""
        return list(self._folders)

    def close(self):
        """Delete every request folder and the root. The service can still be used afterwards (a new
        root is made)."""
        with self._lock:
            self._release_root()
            self._folders.clear()


def _page_progress(progress) -> pipeline.Progress:
    """Pipeline (stage, done, total) reports → a Gradio progress bar, at most every PROGRESS_INTERVAL s."""
    last = {"stage": None, "time": 0.0}

    def report(stage: str, done: int, total: int):
        now = time.monotonic()
        if stage == last["stage"] and 0 < done < total and now - last["time"] < PROGRESS_INTERVAL:
            return
        last.update(stage=stage, time=now)
        desc, unit = STAGES.get(stage, (stage, "steps"))
        progress((done, total), desc=desc, unit=unit)

    return report


def _for_visitor(message: str, song: str | Path) -> str:
    """An error message with the server's path of the upload replaced by the file's name."""
    return message.replace(str(song), Path(song).name)


def limits_text(service: DanceService) -> str:
    """What the page says about its limits and its queue."""
    parts = []
    if service.max_upload_mb is not None:
        parts.append(f"songs of up to {service.max_upload_mb:g} MB")
    if service.max_seconds is not None:
        parts.append(f"dances of up to {service.max_seconds:g} s ({pipeline.clock_time(service.max_seconds)}; for a "
                     "longer song, untick *Whole song* and give the seconds to dance)")
    text = ("This server takes " + " and ".join(parts) + ". ") if parts else ""
    return text + ("Visitors are served one at a time: while you wait, the page shows your place in the queue "
                   "and, once the server has made a dance, an estimate of the wait.")


def player_script() -> str:
    """The 3-D player's start-up, run by the page when the player's element loads: an import map
    naming three.js's modules (served from STATIC by Gradio, no CDN), then our ``player.js`` mounted
    on the element. A browser that cannot (no ES modules, no import maps) gets a message instead."""
    import json

    base = "gradio_api/file=" + urllib.parse.quote(str(STATIC)) + "/"
    return f"""
const base = new URL({json.dumps(base)}, document.baseURI).href;
const root = element.querySelector('.dance-player');
if (!document.querySelector('script[data-dance-player]')) {{
  const map = document.createElement('script');
  map.type = 'importmap';
  map.dataset.dancePlayer = '1';
  map.textContent = JSON.stringify({{imports: Object.fromEntries(Object.entries({json.dumps(THREE_MODULES)})
                                                                 .map(([k, v]) => [k, base + v]))}});
  document.head.appendChild(map);
}}
import(base + 'player.js').then(m => m.mount(root)).catch(e => {{
  root.dataset.state = 'error';
  root.querySelector('.dance-player-status').textContent =
    'This browser cannot start the 3-D player (' + e.message + '); the video follows.';
}});
"""


def build_app(service: DanceService, defaults: pipeline.Settings | None = None, mode: str = "smplx"):
    """The Gradio page (a ``gr.Blocks``, queued one request at a time). Launch it with ``.launch()``.

    ``defaults`` sets the values the settings start at (steps and guidance left at None: the model's);
    ``mode`` the render mode selected at first.
    """
    import gradio as gr

    defaults = service.page_defaults(defaults)
    gr.set_static_paths([STATIC])

    def make(song, settings, render_mode, progress, edit=None):
        """One request → page updates (video, downloads, the dance's (T, 319) vector for "the dance just
        made", slider updates): first the motion (the downloads, which the 3-D player plays) with the
        old video cleared, then the video; errors become messages on the page."""
        t0 = time.perf_counter()
        try:
            for result in service.make_in_stages(song, settings, mode=render_mode, progress=_page_progress(progress),
                                                 edit=edit):
                what = "video" if result.video is not None else "motion"
                print(f"[app] {Path(song).name}: {result.dance.seconds:.1f} s of dance, {what} in "
                      f"{time.perf_counter() - t0:.1f} s" + (" (edit)" if edit is not None else ""),
                      file=sys.stderr, flush=True)
                if result.video is None:
                    if result.dance.beat_note:
                        gr.Warning(result.dance.beat_note)
                    note = pipeline.style_note(service.generator, settings, edit=edit is not None)
                    if note:
                        gr.Warning(note)
                    span = gr.update(maximum=round(result.dance.seconds, 1))
                    yield None, [str(p) for p in result.motion], result.dance.vector, span, span
                else:
                    yield str(result.video), gr.update(), gr.update(), gr.update(), gr.update()
        except pipeline.GenerationError as e:
            raise gr.Error(_for_visitor(str(e), song), print_exception=False) from None
        except Exception as e:   # a fault of ours, not the visitor's: log it in full, say so briefly, keep serving
            traceback.print_exc()
            raise gr.Error(f"The dance could not be made ({type(e).__name__}); the details are in the server's "
                           "log.", print_exception=False) from None

    def settings_of(duration, seed, steps, guidance, beat_sync, foot_lock, retrieval=True, reference=False,
                    hand_motion=True, style=ANY):
        try:
            style = pipeline.checked_style(style)
        except pipeline.GenerationError as e:
            raise gr.Error(str(e), print_exception=False) from None
        return pipeline.Settings(duration=duration, seed=int(seed or 0), steps=int(steps), guidance=float(guidance),
                                 beat_sync=bool(beat_sync), foot_lock=bool(foot_lock), retrieval=bool(retrieval),
                                 reference=bool(reference), hand_motion=bool(hand_motion), style=style)

    def generate(song, seconds, whole_song, seed, steps, guidance, beat_sync, foot_lock, retrieval, reference,
                 render_mode, video_song=None, hand_motion=True, style=ANY, progress=gr.Progress()):
        song = song or video_song           # the page keeps at most one of them (see the upload events below)
        if not song:
            raise gr.Error("Upload or record a song first.", print_exception=False)
        if not whole_song and not seconds:
            raise gr.Error("Enter how many seconds to dance, or tick 'Whole song'.", print_exception=False)
        try:
            duration = None if whole_song else pipeline.parse_duration(seconds)
        except pipeline.GenerationError as e:
            raise gr.Error(str(e), print_exception=False) from None
        yield from make(song, settings_of(duration, seed, steps, guidance, beat_sync, foot_lock, retrieval,
                                          reference, hand_motion, style), render_mode, progress)

    def redance(song, last, source, motion_file, spans, parts, continue_to, seed, steps, guidance, beat_sync,
                foot_lock, reference, render_mode, video_song=None, hand_motion=True, style=ANY, progress=gr.Progress()):
        song = song or video_song
        if not song:
            raise gr.Error("Upload or record the song first: the motion is danced anew to it.", print_exception=False)
        if source == EDIT_SOURCES[0] and last is None:
            raise gr.Error("Make a dance first (Generate Dance), or choose an uploaded motion file.",
                           print_exception=False)
        if source != EDIT_SOURCES[0] and not motion_file:
            raise gr.Error("Upload a motion file (.npy, .pkl or .npz) to edit.", print_exception=False)
        motion = last if source == EDIT_SOURCES[0] else motion_file
        try:
            plan = pipeline.load_edit(pipeline.EditRequest(motion, (spans or "").strip() or None,
                                                           tuple(parts or ()) or "all"))
        except pipeline.GenerationError as e:
            message = _for_visitor(str(e), motion) if isinstance(motion, str) else str(e)
            raise gr.Error(message, print_exception=False) from None
        duration = max(float(continue_to or 0), plan.seconds)
        yield from make(song, settings_of(duration, seed, steps, guidance, beat_sync, foot_lock, reference=reference,
                                          hand_motion=hand_motion, style=style), render_mode, progress, edit=plan)

    def add_span(spans, start, end):
        return ",".join(p for p in ((spans or "").strip(), f"{min(start, end):g}-{max(start, end):g}") if p)

    with gr.Blocks(title="Dance to any song", analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
        gr.Markdown("# Dance to any song\nUpload or record a song (or pick the demo song below) and press "
                    "**Generate Dance**: a 3-D body dances to it, first in a 3-D player you can turn around (as soon "
                    "as the dance is made), then in a video. You also get the motion as FineDance `.npy`, "
                    "AMASS-style `.npz`, BVH and a skinned glTF body (`.glb`) for animation tools.\n\n"
                    + limits_text(service), elem_id="intro")
        with gr.Row():
            with gr.Column():
                song = gr.Audio(label="Song", sources=["upload", "microphone"], type="filepath",
                                elem_id="song")
                # gr.Audio takes audio files only; a video's soundtrack is danced to as well.
                video_song = gr.File(label="…or a video with sound (its soundtrack is danced to)",
                                     file_types=["video"], type="filepath", height=90, elem_id="video-song")
                song.upload(lambda: None, None, video_song, queue=False)      # one song at a time
                video_song.upload(lambda: None, None, song, queue=False)
                if DEMO_SONG.is_file():
                    gr.Examples([[str(DEMO_SONG)]], inputs=[song], label="No song at hand? Try ours",
                                example_labels=["Soldier's Joy (the demo song, 45 s, house)"],
                                elem_id="demo-song")
                button = gr.Button("Generate Dance", variant="primary", elem_id="generate")
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    whole_song = gr.Checkbox(label="Whole song", value=defaults.duration is None)
                    seconds = gr.Number(label="Seconds of dance (from the song's start)", minimum=1,
                                        value=defaults.duration or pipeline.Settings().duration, elem_id="seconds")
                    seed = gr.Number(label="Seed (same seed, same dance)", value=defaults.seed, precision=0,
                                     minimum=0)
                    style = gr.Dropdown(list(STYLES), value=defaults.style, elem_id="style",
                                        label="Style (any: whatever fits the song; modern, indian or salsa: "
                                              "real moves and, with the default model, the network's of that "
                                              "style)")
                    steps = gr.Slider(1, MAX_STEPS, value=defaults.steps, step=1,
                                      label="Denoising steps (fewer is faster, rougher)")
                    guidance = gr.Slider(0.0, 10.0, value=defaults.guidance, step=0.1,
                                         label="Guidance (how closely the dance follows the music)")
                    beat_sync = gr.Checkbox(label="Snap moves to the beat (re-times the dance by up to 0.5 s)",
                                            value=defaults.beat_sync)
                    foot_lock = gr.Checkbox(label="Plant the feet (no sliding: the legs bend to hold each "
                                                  "planted foot still)", value=defaults.foot_lock)
                    retrieval = gr.Checkbox(label="Dance around real moves (motion-capture clips that fit the "
                                                  "tempo; the model writes the joins and the hands; off: the "
                                                  "model writes everything)",
                                            value=defaults.retrieval)
                    hand_motion = gr.Checkbox(label="Move the fingers (procedural hand poses that change on the beat "
                                                    "and follow the arms; not learned; a model that moves its own "
                                                    "fingers keeps them; off: the model's own hands)",
                                              value=defaults.hand_motion, elem_id="hand-motion")
                    reference = gr.Checkbox(label="Official FineDance mode (its features, sampler and stitching, "
                                                  "none of the four above)", value=defaults.reference)
                    render_mode = gr.Radio(list(RENDER_MODES), value=mode, label="Video", elem_id="render-mode")
                with gr.Accordion("Edit: keep what you like, re-dance the rest", open=False, elem_id="edit"):
                    gr.Markdown("Keep spans of a dance (all of it if you give none) and, inside them, some body "
                                "parts (all if you tick none); the rest is danced anew to the song above, which "
                                "starts with the motion. Continue past the motion's end to dance on.")
                    edit_source = gr.Radio(list(EDIT_SOURCES), value=EDIT_SOURCES[0], label="Motion to edit",
                                           elem_id="edit-source")
                    motion_file = gr.File(label="Motion file (FineDance .npy, EDGE .pkl, AMASS-style .npz)",
                                          file_types=[".npy", ".pkl", ".npz"], type="filepath",
                                          elem_id="edit-motion")
                    spans = gr.Textbox(label="Spans to keep, in seconds (e.g. 0-3,6-10; empty: all of it)",
                                       placeholder="0-3,6-10", elem_id="edit-spans")
                    with gr.Row():
                        span_start = gr.Slider(0, SPAN_SLIDER_SECONDS, value=0, step=0.1, label="Keep from (s)",
                                               elem_id="edit-from")
                        span_end = gr.Slider(0, SPAN_SLIDER_SECONDS, value=0, step=0.1, label="to (s)",
                                             elem_id="edit-to")
                    add = gr.Button("Add this span", size="sm", elem_id="edit-add-span")
                    parts = gr.CheckboxGroup(list(EDIT_PARTS), label="Keep only these parts (none ticked: the "
                                             "whole body)", elem_id="edit-parts")
                    continue_to = gr.Number(label="Dance on to (seconds from the start; 0: as long as the motion)",
                                            value=0, minimum=0, elem_id="edit-continue")
                    redance_button = gr.Button("Re-dance", variant="primary", elem_id="redance")
            with gr.Column():
                gr.HTML(PLAYER_HTML, js_on_load=player_script(), elem_id="dance-player", padding=False)
                video = gr.Video(label="Dance", interactive=False, elem_id="dance-video")
                files = gr.File(label="Motion: FineDance .npy, AMASS-style .npz, BVH, glTF (.glb)",
                                file_count="multiple",
                                interactive=False, elem_id="motion-files")
        last = gr.State(None)            # this visitor's last dance, (T, 319): "the dance just made"
        outputs = [video, files, last, span_start, span_end]
        button.click(generate, [song, seconds, whole_song, seed, steps, guidance, beat_sync, foot_lock,
                                retrieval, reference, render_mode, video_song, hand_motion, style],
                     outputs, show_progress_on=[video], concurrency_limit=1, concurrency_id="dance")
        redance_button.click(redance, [song, last, edit_source, motion_file, spans, parts, continue_to, seed, steps,
                                       guidance, beat_sync, foot_lock, reference, render_mode, video_song,
                                       hand_motion, style],
                             outputs, show_progress_on=[video], concurrency_limit=1, concurrency_id="dance")
        add.click(add_span, [spans, span_start, span_end], [spans], queue=False)
    demo.queue(default_concurrency_limit=1)
    return demo
