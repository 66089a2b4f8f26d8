"""The web page (app.py, webapp.py): the request service on its own, then the page in headless Chromium.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` (``bash scripts/install.sh --test``
installs them as root) and are skipped, saying so, where those are absent.
"""
import shutil
import socket
import tempfile
import time
import urllib.request
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


@pytest.fixture(scope="module")
def songs(tmp_path_factory, click_track):
    d = tmp_path_factory.mktemp("songs")
    (d / "notes.mp3").write_text("not audio at all")
    return {"clicks": click_track(d / "clicks.wav", SONG_SECONDS), "short": click_track(d / "short.wav", 0.5),
            "notes": d / "notes.mp3"}


@pytest.fixture(scope="module")
def loaded(checkpoint):
    """One generator (model and body) for every service in this module (loaded once)."""
    return pipeline.DanceGenerator(checkpoint, device="cpu")


def make_service(generator, keep=8) -> webapp.DanceService:
    return webapp.DanceService(lambda: generator, keep=keep)


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


# --- in a real browser -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(loaded):
    """The page on a free port, starting at 2 denoising steps and the whole (2 s) song."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"browser tests need {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver, "
                    "or bash scripts/install.sh --test as root)")
    service = make_service(loaded)
    demo = webapp.build_app(service, defaults=pipeline.Settings(duration=None, steps=2))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
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


def open_page_with_song(driver, url: str, song: Path):
    """Load the page, upload ``song`` into the audio input and wait until the upload has finished."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    upload = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#song input[type=file]"), 60,
                      "the page's audio upload input")
    upload[0].send_keys(str(song))
    wait_for(lambda: any((a.get_attribute("href") or "").endswith("/" + song.name)
                         for a in driver.find_elements(By.CSS_SELECTOR, "#song a")), 60,
             f"the upload of {song.name} to finish")


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


def check_dance(driver, src: str, tmp_path: Path, song: Path):
    from selenium.webdriver.common.by import By

    frames = int(SONG_SECONDS * FPS)
    assert src.endswith(f"/{song.stem}_dance.mp4")
    assert abs(video_duration_in_browser(driver) - SONG_SECONDS) < 0.1
    info = probe(fetch(src, tmp_path / "dance.mp4"))
    assert (info["width"], info["height"], info["fps"], info["frames"]) == (1200, 1200, FPS, frames)
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


@pytest.mark.browser
def test_page_reports_bad_songs_and_keeps_serving(browser, server, songs, tmp_path):
    for name, message in (("notes", "notes.mp3: not a readable audio file"),
                          ("short", "short.wav: only 0.50 s of audio")):
        open_page_with_song(browser, server, songs[name])
        src, _ = generate(browser)
        assert src is None
        shown = toasts(browser)
        assert any(message in text for text in shown), shown
        assert not any("/tmp" in text or str(songs[name].parent) in text for text in shown)  # no server paths

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
