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
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1400,1200")
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
def server(loaded):
    """The page on a free port, starting at 2 denoising steps and the whole (2 s) song; uploads up to
    PAGE_MAX_MB, dances up to PAGE_MAX_SECONDS."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"browser tests need {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver, "
                    "or bash scripts/install.sh --test as root)")
    service = make_service(loaded, max_upload_mb=PAGE_MAX_MB, max_seconds=PAGE_MAX_SECONDS)
    demo = webapp.build_app(service, defaults=pipeline.Settings(duration=None, steps=2))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                max_file_size=f"{PAGE_MAX_MB}mb")
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        service.close()


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
    """Poll ``condition()`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def song_in_input(driver, name: str, element: str = "song") -> bool:
    """Whether the page's audio input (or the input with id ``element``) holds a file called ``name``."""
    from selenium.webdriver.common.by import By

    return any(urllib.parse.unquote(urllib.parse.unquote(a.get_attribute("href") or "")).endswith("/" + name)
               for a in driver.find_elements(By.CSS_SELECTOR, f"#{element} a"))


def open_page_with_song(driver, url: str, song: Path, refused: bool = False, element: str = "song"):
    """Load the page, upload ``song`` into the audio input (or the input with id ``element``) and wait
    until the upload has finished (``refused``: until the page says why it is not taken; → its messages)."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    upload = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, f"#{element} input[type=file]"), 60,
                      f"the page's upload input #{element}")
    upload[0].send_keys(str(song))
    if refused:
        return wait_for(lambda: toasts(driver), 60, f"a message refusing {song.name}")
    wait_for(lambda: song_in_input(driver, song.name, element), 60, f"the upload of {song.name} to finish")


def toasts(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    texts = (t.get_attribute("textContent") for t in driver.find_elements(By.CSS_SELECTOR, "[data-testid=toast-body]"))
    return [t.strip() for t in texts if t and t.strip()]


def generate(driver) -> tuple[str | None, set[str]]:
    """Click Generate Dance; return (the video's URL or None, progress messages seen) once it or an error shows."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "generate").click()
    seen = set()

    def finished():
        seen.update(label for label, _ in webapp.STAGES.values()
                    if label in driver.find_element(By.ID, "dance-video").text)
        src = [v.get_attribute("src") for v in driver.find_elements(By.CSS_SELECTOR, "#dance-video video")]
        return [s for s in src if s] or toasts(driver)

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

    links = wait_for(lambda: {a.get_attribute("download"): a.get_attribute("href")
                              for a in driver.find_elements(By.CSS_SELECTOR, "#motion-files a[download]")}, 30,
                     "the motion download links")
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


def set_number(driver, elem_id: str, value: float):
    """Type a value into a slider's number box (as a visitor would) and leave the box."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=number]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(f"{value:g}", Keys.TAB)


@pytest.mark.browser
def test_page_re_dances_the_dance_just_made_keeping_a_span_of_its_legs(browser, server, songs, tmp_path):
    from selenium.webdriver.common.by import By

    open_page_with_song(browser, server, songs["clicks"])
    first, _ = generate(browser)
    assert first, f"the page showed an error instead of a video: {toasts(browser)}"
    links = wait_for(lambda: {a.get_attribute("download"): a.get_attribute("href")
                              for a in browser.find_elements(By.CSS_SELECTOR, "#motion-files a[download]")}, 30,
                     "the motion download links")
    made = np.load(fetch(links["clicks_dance.npy"], tmp_path / "made.npy"))

    browser.find_element(By.CSS_SELECTOR, "#edit button").click()          # open the Edit section
    spans = wait_for(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "#edit-spans textarea")
                              if e.is_displayed()], 30, "the Edit section")[0]
    set_number(browser, "edit-to", 1.2)
    browser.find_element(By.ID, "edit-add-span").click()
    wait_for(lambda: spans.get_attribute("value") == "0-1.2", 30, "the slider span in the text box")
    legs = [label for label in browser.find_elements(By.CSS_SELECTOR, "#edit-parts label")
            if label.text.startswith("Legs and feet")]
    legs[0].click()
    browser.find_element(By.ID, "redance").click()

    def new_video():
        src = [v.get_attribute("src") for v in browser.find_elements(By.CSS_SELECTOR, "#dance-video video")]
        return [s for s in src if s and s != first] or toasts(browser)

    found = wait_for(new_video, GENERATION_TIMEOUT, "the re-danced video or an error message", interval=0.1)
    assert found[0].startswith("http"), f"the page showed an error instead of a video: {found}"
    check_dance(browser, found[0], tmp_path, songs["clicks"])              # same video and the same downloads
    links = {a.get_attribute("download"): a.get_attribute("href")
             for a in browser.find_elements(By.CSS_SELECTOR, "#motion-files a[download]")}
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
    example = wait_for(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "#demo-song button, #demo-song td")
                                if "Soldier" in e.text], 30, "the demo song example")
    example[0].click()
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
