"""Time to first look: from pressing Generate on the web page to the 3-D player ready to play, and to the video.

    python benchmarks/bench_first_look.py                    # demo song, 30 s of dance
    python benchmarks/bench_first_look.py --seconds 10 --runs 2
    PYTHONPATH=/tmp/old python benchmarks/bench_first_look.py     # another checkout of the project (e.g.
                                                                  # before the player: today's time to video)

Serves the page of the checkout Python imports (the one installed, or the one PYTHONPATH names; printed
with the figures) with the default model on this machine's
CPU, then drives it in headless Chromium as tests/test_app.py does (WebGL through SwiftShader): uploads
the demo song, presses Generate and polls the page every 50 ms. "Player ready" is the player holding the
dance's .glb with its song able to play (``data-state=ready``, ``data-audio-ready=1``); "video" is the
<video> element getting its source. Each run is made twice: with the full-body video, and with the
"No video" setting (player and motion files only), where the page has it. A warm-up dance (3 s, no
browser) is made first, so that the times are those of a server that has served before.

Times are printed in seconds, as a fraction of the dance's length, and as a ratio to ffmpeg alone
encoding 900 frames of 1200×1200 (``encode_reference.py``, the yardstick of the other speed benchmarks),
measured in the same run, with the machine and its load average.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                  "--enable-unsafe-swiftshader", "--no-first-run", "--window-size=1400,1200")
POLL = 0.05
DEFAULT_SECONDS = 30.0          # the page's default length of dance (pipeline.Settings().duration)
TIMEOUT = 1800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-bench-')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(120)
    return driver


def until(condition, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = condition()
        except Exception:          # an element Gradio replaced while we read it: not yet
            value = None
        if value:
            return value
        time.sleep(POLL)
    raise SystemExit(f"error: timed out after {timeout:.0f} s waiting for {what}")


PAGE_STATE = """
const player = document.querySelector('#dance-player .dance-player');
const video = Array.from(document.querySelectorAll('#dance-video video')).map(v => v.src).filter(s => s);
const toasts = Array.from(document.querySelectorAll('[data-testid=toast-body]')).map(t => t.textContent.trim());
return {player: player ? Object.assign({}, player.dataset) : null, video: video[0] || null,
        errors: toasts.filter(t => t)};
"""


def settings_shown(driver) -> tuple[str, str]:
    """(the video setting ticked, the seconds of dance) as the page shows them."""
    mode, secs = driver.execute_script(
        "return [Array.from(document.querySelectorAll('#render-mode input')).filter(i => i.checked).map(i => i.value)"
        "[0] || 'smplx', (document.querySelector('#seconds input[type=number]') || {}).value || '30'];")
    return mode, f"{float(secs):g}"


def one_look(driver, url: str, song: Path, seconds: float, no_video: bool) -> dict:
    """Load the page, upload the song, ask for ``seconds`` of dance, press Generate; → seconds to the
    player ready to play and to the video (None where it did not come)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(url)
    until(lambda: driver.find_elements(By.CSS_SELECTOR, "#song input[type=file]"), 120, "the page")[0] \
        .send_keys(str(song))
    until(lambda: any(song.name in (a.get_attribute("href") or "")
                      for a in driver.find_elements(By.CSS_SELECTOR, "#song a")), 120, "the upload")
    click = lambda elements: (elements[0].click(), True)[1] if elements else False     # noqa: E731
    if no_video or seconds != DEFAULT_SECONDS:       # the page starts at 30 s of dance and a full-body video
        until(lambda: click([b for b in driver.find_elements(By.CSS_SELECTOR, "#settings button")
                             if b.text.strip().startswith("Settings")]), 30, "the Settings section")
    if seconds != DEFAULT_SECONDS:
        box = until(lambda: [e for e in driver.find_elements(By.CSS_SELECTOR, "#seconds input[type=number]")
                             if e.is_displayed()], 30, "the seconds box")[0]
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(f"{seconds:g}", Keys.TAB)
    if no_video:
        until(lambda: click([label for label in driver.find_elements(By.CSS_SELECTOR, "#render-mode label")
                             if label.is_displayed() and label.text.startswith("No video")]), 30,
              "the No video setting")
    want = ("none" if no_video else "smplx", f"{seconds:g}")
    until(lambda: settings_shown(driver) == want, 30, f"the page to show the settings {want}")
    time.sleep(1.0)                  # and to keep them (a page still settling can put back its defaults)
    until(lambda: settings_shown(driver) == want, 30, f"the page to show the settings {want}")
    until(lambda: click(driver.find_elements(By.ID, "generate")), 30, "the Generate button")
    t0 = time.perf_counter()
    player_at = video_at = None
    end = t0 + TIMEOUT
    while time.perf_counter() < end:
        state = driver.execute_script(PAGE_STATE)
        now = time.perf_counter() - t0
        player = state["player"] or {}
        if player_at is None and player.get("state") == "ready" and player.get("audioReady") == "1":
            player_at = now
        if video_at is None and state["video"]:
            video_at, video_url = now, state["video"]
        if state["errors"] and not (player_at or video_at):
            raise SystemExit(f"error: the page said {state['errors']}")
        if video_at is not None or (no_video and player_at is not None) or player.get("state") == "error":
            break
        time.sleep(POLL)
    duration = float(player.get("duration") or 0)
    if player_at is not None and abs(duration - seconds) > 0.1:
        raise SystemExit(f"error: the page made {duration:.2f} s of dance, not the {seconds:g} s asked for")
    if no_video and video_at is not None:
        raise SystemExit("error: the page made a video with the No video setting")
    return {"player": player_at, "video": video_at, "video_url": video_url if video_at is not None else None,
            "player_state": player.get("state")}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="seconds of dance (default 30)")
    p.add_argument("--runs", type=int, default=1)
    a = p.parse_args()
    import pipeline
    import webapp
    from encode_reference import FRAMES, reference_encode

    root = pipeline.ROOT                 # the checkout measured

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise SystemExit(f"error: needs {CHROMIUM} and {CHROMEDRIVER} (bash scripts/install.sh --test)")
    song = root / "assets" / "music" / "soldiers_joy_house.mp3"
    work = Path(tempfile.mkdtemp(prefix="bench-first-look-"))
    local = work / song.name
    shutil.copy(song, local)
    os.environ["GRADIO_TEMP_DIR"] = str(work / "gradio")
    t0 = time.perf_counter()
    service = webapp.DanceService(lambda: pipeline.DanceGenerator(device="cpu"), temp_parent=work).load()
    load_s = time.perf_counter() - t0
    service.make(local, pipeline.Settings(duration=3.0), mode="skeleton")        # warm-up: a server that has served
    has_player = hasattr(webapp, "NO_VIDEO")
    demo = webapp.build_app(service)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    driver = browser()
    results = []
    try:
        for run in range(a.runs):
            for no_video in ((False, True) if has_player else (False,)):
                look = one_look(driver, url, local, a.seconds, no_video)
                look["mode"] = "no video" if no_video else "full-body video"
                results.append(look)
                print(f"run {run + 1}, {look['mode']}: player ready {look['player']}, video {look['video']}",
                      flush=True)
        video_url = next(r["video_url"] for r in results if r["video_url"])
        with urllib.request.urlopen(video_url, timeout=120) as r:
            (work / "dance.mp4").write_bytes(r.read())
        encode, encode_cpu = reference_encode(work / "dance.mp4")
    finally:
        driver.quit()
        demo.close()
        service.close()
        shutil.rmtree(work, ignore_errors=True)

    gen = service.generator
    print(f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), {platform.system()} "
          f"{platform.release()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"checkout: {root}; model {gen.n_params / 1e6:.1f} M parameters on {gen.device} (loaded in {load_s:.1f} s)")
    print(f"ffmpeg alone encodes {FRAMES} frames of 1200x1200 in {encode:.1f} s ({encode_cpu:.1f} CPU-s)")
    print(f"{a.seconds:g} s of dance on the demo song, from pressing Generate:")
    for r in results:
        parts = []
        for what in ("player", "video"):
            if r[what] is not None:
                parts.append(f"{'player ready to play' if what == 'player' else 'video'} {r[what]:.1f} s "
                             f"({r[what] / a.seconds:.2f} x the dance, {r[what] / encode:.2f} x the ffmpeg encode)")
        if has_player and r["player"] is None:
            parts.append(f"player not ready ({r['player_state']})")
        print(f"  {r['mode']}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
