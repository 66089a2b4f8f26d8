"""The web page (app.py, webapp.py): the request service on its own, then the page in headless Chromium.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` (``bash scripts/install.sh --test``
installs them as root) and are skipped, saying so, where those are absent.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

import app
import pipeline
import webapp
from args import app_parser
from tests.media import probe

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                  "--use-angle=swiftshader", "--enable-unsafe-swiftshader",     # WebGL on the CPU: the 3-D player
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1400,1200", "--autoplay-policy=no-user-gesture-required")
SONG_SECONDS = 2.0
FPS = 30
GENERATION_TIMEOUT = 180
PAGE_MAX_MB, PAGE_MAX_SECONDS = 3, 60


@pytest.fixture(scope="module")
def songs(tmp_path_factory, click_track):
    d = tmp_path_factory.mktemp("songs")
    (d / "notes.mp3").write_text("not audio at all")
    return {"clicks": click_track(d / "clicks.wav", SONG_SECONDS), "short": click_track(d / "short.wav", 0.5),
            "notes": d / "notes.mp3"}


WEIRD_NAME = "\"Ma chanson\" d'été — Пісня 歌.wav"   # quotes, spaces, accents, Cyrillic, CJK


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, click_track):
    """Odd and hostile uploads: an empty file, a zip named .mp3, a 3-hour song (silent FLAC, 2 MB),
    a 4 MB file, a song with a name full of quotes and non-Latin letters, and a video with a soundtrack."""
    d = tmp_path_factory.mktemp("hostile")
    (d / "empty.mp3").write_bytes(b"")
    with zipfile.ZipFile(d / "archive.mp3", "w") as z:
        z.writestr("song.txt", "la la la " * 1000)
    ffmpeg = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    subprocess.run(ffmpeg + ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "10800", "-c:a", "flac",
                             str(d / "three_hours.flac")], check=True)
    (d / "big.wav").write_bytes(os.urandom(4 * 1024 * 1024))
    clicks = click_track(d / "clicks.wav", SONG_SECONDS)
    shutil.copy(clicks, d / WEIRD_NAME)
    subprocess.run(ffmpeg + ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=30", "-i", str(clicks), "-t",
                             str(SONG_SECONDS), "-c:v", "libx264", "-c:a", "aac", str(d / "clip.mp4")], check=True)
    return {p.name: p for p in d.iterdir()}


@pytest.fixture(scope="module")
def loaded(checkpoint):
    """One generator (model and body) for every service in this module (loaded once)."""
    return pipeline.DanceGenerator(checkpoint, device="cpu")


def make_service(generator, keep=8, **limits) -> webapp.DanceService:
    return webapp.DanceService(lambda: generator, keep=keep, **limits)


@pytest.fixture
def service(loaded):
    s = make_service(loaded, keep=1)
    yield s
    s.close()


# --- without a browser -----------------------------------------------------------------------------

@pytest.mark.slow
def test_service_writes_each_request_to_its_own_folder_and_keeps_the_last(service, songs):
    settings = pipeline.Settings(duration=1.0, steps=2)
    stages = []
    results = [service.make(songs["clicks"], settings, mode="skeleton",
                            progress=lambda stage, done, total: stages.append(stage)) for _ in range(2)]
    folders = [r.video.parent for r in results]
    assert folders[0] != folders[1] and service.folders == folders[1:]
    assert not folders[0].exists() and folders[1].is_dir()
    last = results[-1]
    assert [p.name for p in [last.video, *last.motion]] == ["clicks_dance.mp4", "clicks_dance.npy", "clicks_dance.npz",
                                                            "clicks_dance.bvh", "clicks_dance.glb"]
    info = probe(last.video)
    assert (info["width"], info["height"], info["frames"]) == (1200, 1200, 30) and info["audio"]
    assert np.load(last.motion[0]).shape == (30, 319)
    assert np.load(last.motion[1])["poses"].shape == (30, 165)
    assert {"features", "sampling", "render"} <= set(stages)

    with pytest.raises(pipeline.GenerationError, match="only 0.50 s of audio"):
        service.make(songs["short"], settings)
    assert service.folders == folders[1:]             # the failed request left nothing behind
    root = service.root
    service.close()
    assert not root.exists() and service.folders == []


@pytest.mark.slow
def test_service_gives_the_motion_before_the_video_and_can_skip_the_video(loaded, songs, tmp_path):
    service = webapp.DanceService(lambda: loaded, keep=2, temp_parent=tmp_path)
    settings = pipeline.Settings(duration=1.0, steps=2)
    try:
        stages = service.make_in_stages(songs["clicks"], settings, mode="skeleton")
        motion = next(stages)                       # the motion files exist, the video does not yet
        folder = motion.motion[0].parent
        assert motion.video is None and [p.suffix for p in motion.motion] == [".npy", ".npz", ".bvh", ".glb"]
        assert all(p.is_file() for p in motion.motion) and not list(folder.glob("*.mp4"))
        video = next(stages)
        assert video.video == folder / "clicks_dance.mp4" and probe(video.video)["frames"] == 30
        assert next(stages, None) is None and service.folders == [folder]

        only = list(service.make_in_stages(songs["clicks"], settings, mode=webapp.NO_VIDEO))
        assert len(only) == 1 and only[0].video is None
        assert not list(only[0].motion[0].parent.glob("*.mp4")) and service.folders[-1] == only[0].motion[0].parent
    finally:
        service.close()


def test_app_options_and_a_missing_checkpoint(tmp_path, capsys):
    args = app_parser().parse_args([])
    assert (args.host, args.port, args.keep_requests, args.checkpoint) == ("127.0.0.1", 7861, 8, None)
    assert app.main(["--checkpoint", str(tmp_path / "nothing.pt")]) == 1
    assert "nothing.pt" in capsys.readouterr().err


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_hostile_uploads_are_refused_with_a_message_and_leave_nothing(loaded, hostile, tmp_path):
    service = webapp.DanceService(lambda: loaded, max_upload_mb=3, max_seconds=60, temp_parent=tmp_path)
    settings = pipeline.Settings(duration=1.0, steps=2)
    sparse = tmp_path / "two_gigabytes.wav"          # 2 GB on paper, nothing on disk: refused unread
    with open(sparse, "wb") as f:
        f.truncate(2 * 1024 ** 3)
    cases = [(hostile["empty.mp3"], settings, "empty.mp3: file is empty"),
             (hostile["archive.mp3"], settings, "archive.mp3: not a readable audio file"),
             (hostile["big.wav"], settings, "big.wav: the file is 4.0 MB; this server takes songs of at most 3 MB"),
             (sparse, settings, "two_gigabytes.wav: the file is 2,048.0 MB"),
             (hostile["three_hours.flac"], pipeline.Settings(duration=None, steps=2),
              "the song is 3:00:00 long and this server dances at most 60 s"),
             (hostile["three_hours.flac"], pipeline.Settings(duration=61, steps=2),
              "61 s of dance asked for; this server makes dances of at most 60 s")]
    try:
        for song, asked, message in cases:
            t0 = time.perf_counter()
            with pytest.raises(pipeline.GenerationError, match=message):
                service.make(song, asked)
            assert time.perf_counter() - t0 < 2, f"{song.name} was read before it was refused"
            assert service.folders == []       # nothing left behind: the song and the server's lock file only
            assert set(files_under(tmp_path)) <= {sparse, service.root / webapp.LOCK_FILE}
    finally:
        service.close()
    assert not any(p.name.startswith(webapp.ROOT_PREFIX) for p in tmp_path.iterdir())


def test_limits_have_defaults_and_are_checked():
    args = app_parser().parse_args([])
    assert (args.max_upload_mb, args.max_seconds) == (webapp.MAX_UPLOAD_MB, webapp.MAX_SECONDS)
    with pytest.raises(ValueError, match="--max_seconds must be positive"):
        webapp.DanceService(lambda: None, max_seconds=0)
    service = webapp.DanceService(lambda: None, max_upload_mb=3, max_seconds=90)
    text = webapp.limits_text(service)
    assert "songs of up to 3 MB" in text and "dances of up to 90 s (1:30" in text and "queue" in text


@pytest.mark.parametrize("name, stem", [("../../etc/passwd", "passwd"), ("my song (live).mp3", "my_song_live"),
                                        ('"quoted" \'name\'.wav', "quoted_name"), ("Пісня 歌.flac", "Пісня_歌"),
                                        ("...", "song"), ("-rf .mp3", "rf"),
                                        ("%22Ma chanson%22.wav", "Ma_chanson")])
def test_output_names_are_safe(name, stem):
    assert webapp._safe_stem(Path(name)) == stem


@pytest.mark.slow
def test_odd_names_and_videos_simply_work(loaded, hostile, tmp_path):
    service = webapp.DanceService(lambda: loaded, temp_parent=tmp_path)
    settings = pipeline.Settings(duration=1.0, steps=2)
    try:
        odd = service.make(hostile[WEIRD_NAME], settings, mode="skeleton")
        assert odd.video.name == "Ma_chanson_d_été_Пісня_歌_dance.mp4" and odd.video.parent.parent == service.root
        video = service.make(hostile["clip.mp4"], settings, mode="skeleton")   # the soundtrack is danced to
        info = probe(video.video)
        assert video.video.name == "clip_dance.mp4" and info["frames"] == 30 and info["audio"]
        long_song = service.make(hostile["three_hours.flac"], settings, mode="skeleton")  # a part of it: fine
        assert np.load(long_song.motion[0]).shape == (30, 319)
    finally:
        service.close()


@pytest.mark.slow
def test_a_killed_servers_files_are_deleted_at_the_next_start(checkpoint, tmp_path):
    """Two real servers: the first is killed with SIGKILL, the second deletes its folder when it starts
    and, stopped with SIGTERM, deletes its own."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}

    def start():
        port = free_port()
        proc = subprocess.Popen([sys.executable, "app.py", "--checkpoint", str(checkpoint), "--device", "cpu",
                                 "--port", str(port)], cwd=Path(app.__file__).parent, env=env,
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        lines = []
        for line in proc.stderr:          # until the server says where its files are (model loaded)
            lines.append(line)
            if "temporary files in" in line:
                wait_for(lambda: serving(port), 60, "the page to be served")
                return proc, line.rsplit(" ", 1)[-1].strip(), lines
        pytest.fail(f"app.py did not start: {''.join(lines)}")

    first, first_root, _ = start()
    try:
        assert Path(first_root).parent == tmp_path and (Path(first_root) / "gradio").is_dir()
        (Path(first_root) / "gradio" / "upload.mp3").write_bytes(b"a visitor's song")
        first.kill()
        first.wait(30)
        assert Path(first_root).is_dir()                       # SIGKILL: nothing could clean up
        second, second_root, lines = start()
        try:
            assert any("deleted the temporary files of 1 server" in line for line in lines), lines
            assert not Path(first_root).exists() and Path(second_root).is_dir()
            assert webapp.clean_leftovers(tmp_path) == []     # a live server's folder is left alone
            assert Path(second_root).is_dir()
            second.send_signal(signal.SIGTERM)
            second.wait(60)
        finally:
            second.kill()
        assert not Path(second_root).exists()                   # a clean stop deletes its own
    finally:
        first.kill()


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
            return True
    except OSError:
        return False


# --- in a real browser -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page(loaded):
    """The page on a free port, starting at 2 denoising steps and the whole (2 s) song; uploads up to
    PAGE_MAX_MB, dances up to PAGE_MAX_SECONDS."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"browser tests need {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver, "
                    "or bash scripts/install.sh --test as root)")
    service = make_service(loaded, max_upload_mb=PAGE_MAX_MB, max_seconds=PAGE_MAX_SECONDS)
    # Gradio's copies of uploads and results in this server's own folder, as app.py does: in the shared
    # default ($TMPDIR/gradio, named by content) another process's server closing would delete our
    # copy of the same click track while we dance to it.
    # (Gradio reads the variable when the page is built and when it is launched.)
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(service.cache_dir())
    demo = None
    try:
        demo = webapp.build_app(service, defaults=pipeline.Settings(duration=None, steps=2))
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    max_file_size=f"{PAGE_MAX_MB}mb")
        yield f"http://127.0.0.1:{port}/", service
    finally:
        if demo is not None:
            demo.close()
        service.close()
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous


@pytest.fixture(scope="module")
def server(page):
    """The page's URL."""
    return page[0]


@pytest.fixture(scope="module")
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    """Poll ``condition()`` until it returns something truthy; fail naming ``what`` after ``timeout`` s.

    An element that Gradio replaced while ``condition`` read it (StaleElementReferenceException) or
    that vanished between finding and reading it means "not yet": the next poll finds the new one."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = condition()
        except (StaleElementReferenceException, NoSuchElementException):
            value = None
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def click_first(find, what: str, timeout: float = 30):
    """Click the first element ``find()`` returns once there is one; if Gradio replaced it between
    finding and clicking (stale), find it again."""
    def attempt():
        found = find()
        if found:
            found[0].click()
            return True
        return False

    wait_for(attempt, timeout, what)


def click_id(driver, elem_id: str):
    from selenium.webdriver.common.by import By

    click_first(lambda: driver.find_elements(By.ID, elem_id), f"#{elem_id} to click")


def attributes(driver, css: str, name: str) -> list[str]:
    """The attribute ``name`` of every element matching ``css``, read in the page in one go (no element
    can go stale between finding and reading it); missing attributes are left out."""
    return [v for v in driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.getAttribute(arguments[1]))",
        css, name) if v]


def download_links(driver) -> dict[str, str]:
    """The page's motion downloads, {file name: absolute URL}, read in one go."""
    return driver.execute_script("""
        const links = {};
        for (const a of document.querySelectorAll('#motion-files a[download]')) links[a.getAttribute('download')] = a.href;
        return links;""")


def song_in_input(driver, name: str, element: str = "song") -> bool:
    """Whether the page's audio input (or the input with id ``element``) holds a file called ``name``."""
    from selenium.webdriver.common.by import By

    return any(urllib.parse.unquote(urllib.parse.unquote(href)).endswith("/" + name)
               for href in attributes(driver, f"#{element} a", "href"))


def open_page_with_song(driver, url: str, song: Path, refused: bool = False, element: str = "song"):
    """Load the page, upload ``song`` into the audio input (or the input with id ``element``) and wait
    until the upload has finished (``refused``: until the page says why it is not taken; → its messages)."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    def send():
        upload = driver.find_elements(By.CSS_SELECTOR, f"#{element} input[type=file]")
        if upload:
            upload[0].send_keys(str(song))
            return True
        return False

    wait_for(send, 60, f"the page's upload input #{element}")
    if refused:
        return wait_for(lambda: toasts(driver), 60, f"a message refusing {song.name}")
    wait_for(lambda: song_in_input(driver, song.name, element), 60, f"the upload of {song.name} to finish")


def toasts(driver) -> list[str]:
    return [t.strip() for t in attributes_text(driver, "[data-testid=toast-body]") if t.strip()]


def attributes_text(driver, css: str) -> list[str]:
    """The text content of every element matching ``css``, read in the page in one go."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent || '')", css)


def generate(driver) -> tuple[str | None, set[str]]:
    """Click Generate Dance; return (the video's URL or None, progress messages seen) once it or an error shows."""
    from selenium.webdriver.common.by import By

    click_id(driver, "generate")
    seen = set()

    def finished():
        seen.update(label for label, _ in webapp.STAGES.values()
                    if any(label in text for text in attributes_text(driver, "#dance-video")))
        return attributes(driver, "#dance-video video", "src") or toasts(driver)

    found = wait_for(finished, GENERATION_TIMEOUT, "the dance video or an error message", interval=0.1)
    return (found[0] if found[0].startswith("http") else None), seen


def video_duration_in_browser(driver) -> float:
    """The <video>'s duration once its metadata has loaded (-1 if the browser cannot read it)."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const v = document.querySelector('#dance-video video');
        if (v.readyState >= 1) { done(v.duration); return; }
        v.addEventListener('loadedmetadata', () => done(v.duration));
        v.addEventListener('error', () => done(-1));
        v.preload = 'metadata';
        v.load();
    """)


def fetch(url: str, path: Path) -> Path:
    with urllib.request.urlopen(url, timeout=30) as r:
        path.write_bytes(r.read())
    return path


def check_dance(driver, src: str, tmp_path: Path, song: Path, spare_frames: int = 0):
    """The page's video and motion files for ``song`` (a whole-song dance of SONG_SECONDS, give or
    take ``spare_frames``: an AAC soundtrack decodes a little longer than it was made)."""
    from selenium.webdriver.common.by import By

    assert urllib.parse.unquote(src).endswith(f"/{song.stem}_dance.mp4")
    assert abs(video_duration_in_browser(driver) - SONG_SECONDS) < 0.1
    info = probe(fetch(src, tmp_path / "dance.mp4"))
    frames = info["frames"]
    assert abs(frames - int(SONG_SECONDS * FPS)) <= spare_frames
    assert (info["width"], info["height"], info["fps"]) == (1200, 1200, FPS)
    assert info["audio"] and abs(info["audio_duration"] - SONG_SECONDS) < 0.1

    links = wait_for(lambda: download_links(driver), 30, "the motion download links")
    assert set(links) == {f"{song.stem}_dance.{ext}" for ext in ("npy", "npz", "bvh", "glb")}
    assert np.load(fetch(links[f"{song.stem}_dance.npy"], tmp_path / "m.npy")).shape == (frames, 319)
    assert np.load(fetch(links[f"{song.stem}_dance.npz"], tmp_path / "m.npz"))["poses"].shape == (frames, 165)


@pytest.mark.browser
def test_page_dances_an_uploaded_song(browser, server, songs, tmp_path):
    open_page_with_song(browser, server, songs["clicks"])
    src, progress_seen = generate(browser)
    assert src, f"the page showed an error instead of a video: {toasts(browser)}"
    assert progress_seen, "no progress message was shown while the dance was made"
    check_dance(browser, src, tmp_path, songs["clicks"])


def assert_refused_on_page(browser, server, song: Path, message: str):
    """Upload a song the page cannot dance to and press Generate: no video, the message shown, and no
    server path in it."""
    open_page_with_song(browser, server, song)
    src, _ = generate(browser)
    assert src is None
    shown = toasts(browser)
    assert any(message in text for text in shown), shown
    assert not any("/tmp" in text or str(song.parent) in text for text in shown)  # no server paths


@pytest.mark.browser
def test_page_reports_bad_songs_and_keeps_serving(browser, server, songs, tmp_path):
    for name, message in (("notes", "notes.mp3: not a readable audio file"),
                          ("short", "short.wav: only 0.50 s of audio")):
        assert_refused_on_page(browser, server, songs[name], message)

    open_page_with_song(browser, server, songs["clicks"])
    src, _ = generate(browser)
    assert src, f"the page showed an error instead of a video: {toasts(browser)}"
    check_dance(browser, src, tmp_path, songs["clicks"])


def attributes_value(driver, css: str) -> list[str]:
    """The current value of every form field matching ``css``, read in the page in one go."""
    return driver.execute_script("return Array.from(document.querySelectorAll(arguments[0])).map(e => e.value)", css)


def set_number(driver, elem_id: str, value: float):
    """Type a value into a slider's number box (as a visitor would) and leave the box."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def type_in():
        box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=number]")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(f"{value:g}", Keys.TAB)
        return True

    wait_for(type_in, 30, f"the number box of #{elem_id}")


@pytest.mark.browser
def test_page_re_dances_the_dance_just_made_keeping_a_span_of_its_legs(browser, server, songs, tmp_path):
    from selenium.webdriver.common.by import By

    open_page_with_song(browser, server, songs["clicks"])
    first, _ = generate(browser)
    assert first, f"the page showed an error instead of a video: {toasts(browser)}"
    links = wait_for(lambda: download_links(browser), 30, "the motion download links")
    made = np.load(fetch(links["clicks_dance.npy"], tmp_path / "made.npy"))
    made_glb = wait_for(lambda: player_state(browser).get("state") == "ready" and player_state(browser)["src"], 60,
                        "the 3-D player to load the dance")
    assert made_glb == links["clicks_dance.glb"]

    click_first(lambda: browser.find_elements(By.CSS_SELECTOR, "#edit button"), "the Edit section's button")
    wait_for(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "#edit-spans textarea") if e.is_displayed()],
             30, "the Edit section")
    set_number(browser, "edit-to", 1.2)
    # Add reads the slider's value as the page holds it: wait until the slider itself shows 1.2 s.
    wait_for(lambda: [float(v) for v in attributes_value(browser, "#edit-to input[type=range]")] == [1.2], 30,
             "the slider to take the typed 1.2 s")
    click_id(browser, "edit-add-span")
    wait_for(lambda: attributes_value(browser, "#edit-spans textarea") == ["0-1.2"], 30,
             "the slider span in the text box")
    click_first(lambda: [label for label in browser.find_elements(By.CSS_SELECTOR, "#edit-parts label")
                         if label.text.startswith("Legs and feet")], "the legs among the parts to keep")
    click_id(browser, "redance")

    def new_video():
        return [s for s in attributes(browser, "#dance-video video", "src") if s != first] or toasts(browser)

    found = wait_for(new_video, GENERATION_TIMEOUT, "the re-danced video or an error message", interval=0.1)
    assert found[0].startswith("http"), f"the page showed an error instead of a video: {found}"
    check_dance(browser, found[0], tmp_path, songs["clicks"])              # same video and the same downloads
    links = download_links(browser)
    # The player shows the re-danced motion: the new .glb on offer.
    wait_for(lambda: player_state(browser).get("src") == links["clicks_dance.glb"] != made_glb
             and player_state(browser).get("state") == "ready", 60, "the 3-D player to load the re-danced motion")
    edited = np.load(fetch(links["clicks_dance.npy"], tmp_path / "edited.npy"))
    kept = pipeline.load_edit(pipeline.EditRequest(made, "0-1.2", "lower")).kept(len(made))
    np.testing.assert_allclose(edited[kept], made[kept], atol=1e-5)        # the legs of the first 1.2 s
    assert np.abs(edited[~kept] - made[~kept]).max() > 0.1                 # the rest is new


@pytest.mark.browser
def test_page_states_its_limits_and_offers_the_demo_song(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server)
    intro = wait_for(lambda: "".join(e.text for e in browser.find_elements(By.ID, "intro")), 60,
                     "the page's introduction")
    assert f"songs of up to {PAGE_MAX_MB} MB" in intro and f"dances of up to {PAGE_MAX_SECONDS} s" in intro
    click_first(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "#demo-song button, #demo-song td")
                         if "Soldier" in e.text], "the demo song example")
    wait_for(lambda: song_in_input(browser, webapp.DEMO_SONG.name), 60, "the demo song in the song input")


@pytest.mark.browser
def test_page_refuses_hostile_uploads_and_keeps_serving(browser, server, hostile, tmp_path):
    shown = open_page_with_song(browser, server, hostile["big.wav"], refused=True)
    assert any("big.wav" in text or "size" in text.lower() for text in shown), shown
    for name, message in (("empty.mp3", "empty.mp3: file is empty"),
                          ("archive.mp3", "archive.mp3: not a readable audio file"),
                          ("three_hours.flac", f"three_hours.flac: the song is 3:00:00 long and this server dances "
                                               f"at most {PAGE_MAX_SECONDS} s")):
        assert_refused_on_page(browser, server, hostile[name], message)

    for name, element in ((WEIRD_NAME, "song"), ("clip.mp4", "video-song")):   # odd names and videos simply work
        song = hostile[name]
        open_page_with_song(browser, server, song, element=element)
        src, _ = generate(browser)
        assert src, f"the page showed an error instead of a video: {toasts(browser)}"
        check_dance(browser, src, tmp_path, Path(webapp._safe_stem(song) + song.suffix),
                    spare_frames=1 if song.suffix == ".mp4" else 0)


# --- the 3-D player ------------------------------------------------------------------------------

def player_state(driver) -> dict:
    """The 3-D player's data-* state (state, src, duration, time, audio, audioReady, message)."""
    return driver.execute_script("const r = document.querySelector('#dance-player .dance-player');"
                                 "return r ? Object.assign({}, r.dataset) : {};") or {}


def player_ready(driver) -> dict | None:
    """The player's state once it has a dance loaded and its song can play."""
    state = player_state(driver)
    return state if state.get("state") == "ready" and state.get("audioReady") == "1" else None


def choose_video_mode(driver, label_start: str):
    from selenium.webdriver.common.by import By

    click_first(lambda: [b for b in driver.find_elements(By.CSS_SELECTOR, "#settings button")
                         if "Settings" in b.text], "the Settings section's button")
    click_first(lambda: [label for label in driver.find_elements(By.CSS_SELECTOR, "#render-mode label")
                         if label.is_displayed() and label.text.startswith(label_start)], f"the video setting {label_start!r}")
    value = dict((label, value) for label, value in webapp.RENDER_MODES if label.startswith(label_start))
    wait_for(lambda: attributes_checked(driver, "#render-mode input") == list(value.values()), 30,
             f"the video setting {label_start!r} to be ticked")


def attributes_checked(driver, css: str) -> list[str]:
    """The values of the ticked inputs matching ``css``."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).filter(e => e.checked).map(e => e.value)", css)


def picture_of_player(driver):
    """The player's canvas as an (H, W, 3) uint8 array, from the browser's own screenshot of it."""
    import io

    from PIL import Image
    from selenium.webdriver.common.by import By

    def shot():
        canvas = driver.find_element(By.CSS_SELECTOR, "#dance-player canvas")
        # the whole canvas in the window first: an element's screenshot is cut where the page scrolls it off
        driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", canvas)
        return canvas.screenshot_as_png

    png = wait_for(shot, 30, "a screenshot of the player")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def body_and_floor(picture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the skin-coloured body (warm: red over blue) and the grey checkered floor."""
    r, g, b = picture[..., 0], picture[..., 1], picture[..., 2]
    body = (r - b > 25) & (r > 90)
    floor = (np.abs(r - g) < 8) & (np.abs(g - b) < 8) & (r > 25) & (r < 120)
    return body, floor


@pytest.mark.browser
def test_player_shows_the_download_on_its_floor_in_step_with_the_song_without_a_video(browser, page, songs,
                                                                                        tmp_path):
    """'No video': the player alone gets the dance. It draws the body standing on the floor, follows
    the song's time when seeking, holds the last pose past the dance's end, and plays the .glb the
    page offers for download."""
    from selenium.webdriver.common.by import By

    server, service = page
    open_page_with_song(browser, server, songs["clicks"])
    choose_video_mode(browser, "No video")
    before = set(service.folders)
    click_id(browser, "generate")
    state = wait_for(lambda: player_ready(browser) or toasts(browser), GENERATION_TIMEOUT,
                     "the 3-D player to be ready (or an error message)")
    assert isinstance(state, dict), f"the page showed an error: {state}"

    links = wait_for(lambda: download_links(browser), 30, "the motion download links")
    assert state["src"] == links["clicks_dance.glb"]                    # the player plays the download
    glb = fetch(state["src"], tmp_path / "player.glb")
    assert glb.read_bytes() == fetch(links["clicks_dance.glb"], tmp_path / "download.glb").read_bytes()
    assert abs(float(state["duration"]) - (SONG_SECONDS * FPS - 1) / FPS) < 1e-3
    # The request is over once the service keeps its folder: the motion files are there, no video.
    folder = wait_for(lambda: [f for f in service.folders if f not in before], 60, "the request to finish")[-1]
    assert (folder / "clicks_dance.glb").is_file()
    assert not list(folder.glob("*.mp4")) and attributes(browser, "#dance-video video", "src") == []

    # The body on the floor: warm body pixels above grey floor pixels, the feet among them.
    body, floor = body_and_floor(picture_of_player(browser))
    assert body.sum() > 500 and floor.sum() > 10_000, (body.sum(), floor.sum())
    feet_row = np.nonzero(body.any(axis=1))[0].max()
    horizon = np.nonzero(floor.any(axis=1))[0].min()
    assert feet_row > horizon and floor[max(feet_row - 5, 0):feet_row + 6].sum() > 50

    # Seeking the song poses the body at the song's time; past the dance's end it holds the last pose.
    for seconds in (1.3, 0.4, 1.9):
        browser.execute_script("const a = document.querySelector('#dance-player audio'); a.pause();"
                               "a.currentTime = arguments[0];", seconds)
        wait_for(lambda: abs(float(player_state(browser).get("time", -1)) - seconds) < 0.01, 30,
                 f"the animation to follow the song to {seconds} s")
    browser.execute_script("document.querySelector('#dance-player audio').currentTime = 1.995")   # past the last frame
    wait_for(lambda: abs(float(player_state(browser).get("time", -1)) - float(state["duration"])) < 1e-3, 30,
             "the animation to hold its last pose past the dance's end")
    before = picture_of_player(browser)
    browser.execute_script("document.querySelector('#dance-player audio').currentTime = 0.0")
    wait_for(lambda: float(player_state(browser).get("time", -1)) == 0.0, 30, "the animation back at 0 s")
    wait_for(lambda: np.abs(picture_of_player(browser) - before).sum() > 0, 30,    # the next frame drawn shows
             "a different pose drawn at 0 s")                                      # a different pose

    # The camera turns and zooms with the mouse; Reset view brings back the video's framing.
    from selenium.webdriver.common.action_chains import ActionChains

    framed = picture_of_player(browser)

    def drag_turns_the_view():
        canvas = browser.find_element(By.CSS_SELECTOR, "#dance-player canvas")
        ActionChains(browser).move_to_element(canvas).click_and_hold().move_by_offset(120, 0).release().perform()
        return np.abs(picture_of_player(browser) - framed).mean() > 1

    wait_for(drag_turns_the_view, 60, "the view to turn when dragged", interval=1.0)
    click_first(lambda: browser.find_elements(By.CSS_SELECTOR, "#dance-player .dance-player-reset"),
                "the Reset view button")
    wait_for(lambda: np.abs(picture_of_player(browser) - framed).mean() < 0.5, 30, "the view to be reset")


@pytest.mark.browser
def test_a_dance_the_player_cannot_load_gives_a_message_and_the_video_still_comes(browser, server, songs, tmp_path):
    open_page_with_song(browser, server, songs["clicks"])
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*.glb"]})    # the player's request fails
    try:
        src, _ = generate(browser)
        assert src, f"the page showed an error instead of a video: {toasts(browser)}"
        state = wait_for(lambda: player_state(browser).get("state") == "error" and player_state(browser), 60,
                         "the player's message")
        assert "could not load this dance" in state["message"] and "video follows" in state["message"]
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    check_dance(browser, src, tmp_path, songs["clicks"])                  # the video and downloads as usual
