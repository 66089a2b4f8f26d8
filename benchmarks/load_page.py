"""Load test of the web page: N visitors at once, each through Gradio's Python client, on this machine only.

    python benchmarks/load_page.py                          # starts app.py itself: 6 visitors, 5 s of dance each
    python benchmarks/load_page.py --visitors 10 --seconds 5 --mode skeleton
    python benchmarks/load_page.py --url http://127.0.0.1:7861/ --pid 12345   # a server already running

Each visitor uploads its own copy of the demo song (``visitor_03.mp3``) and asks for a slightly different
length (``--seconds`` + 0.2 s × its number), so a result that went to the wrong visitor shows: every
video must carry that visitor's name and exactly its number of frames. Reports latency percentiles
(submit → files received), failures, the queue positions and estimated waits the visitors were shown,
and the peak memory (RSS) of the server with its children (ffmpeg), sampled every 0.2 s.

Bounded: at most 50 visitors and one hour; it talks to 127.0.0.1 (or localhost, ::1) only and refuses
any other host.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
SONG = ROOT / "assets" / "music" / "soldiers_joy_house.mp3"
MAX_VISITORS, MAX_SECONDS_TOTAL = 50, 3600
STEP_SECONDS = 0.2                    # visitor k asks for seconds + k × this
FPS = 30


def loopback_url(url: str) -> str:
    """``url`` if it points at this machine's loopback interface; SystemExit otherwise."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise SystemExit(f"error: {url}: this load test only targets 127.0.0.1 (or localhost, ::1), not '{host}'")
    return url if url.endswith("/") else url + "/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, extra: list[str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    url = f"http://127.0.0.1:{port}/"
    end = time.monotonic() + 300
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"error: app.py exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("error: app.py did not start within 300 s")


class MemoryWatch(threading.Thread):
    """Peak RSS of a process and its children, sampled until stopped."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.process, self.interval = psutil.Process(pid), interval
        self.peak_server = self.peak_total = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                own = self.process.memory_info().rss
                children = sum(c.memory_info().rss for c in self.process.children(recursive=True))
            except psutil.Error:
                break
            self.peak_server, self.peak_total = max(self.peak_server, own), max(self.peak_total, own + children)
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()


def frames_of(video: str) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                          "stream=nb_read_packets", "-of", "csv=p=0", video], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def visit(url: str, k: int, song: Path, seconds: float, mode: str, steps: int | None, deadline: float) -> dict:
    """One visitor: upload, wait in the queue, receive the files; check they are this visitor's own."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    t0 = time.perf_counter()
    # By name, so the page may add inputs (with defaults) without breaking this script.
    asked = dict(song=handle_file(str(song)), seconds=seconds, whole_song=False, seed=0, render_mode=mode)
    if steps:
        asked["steps"] = steps
    job = client.submit(api_name="/generate", **asked)
    ranks, etas = set(), []
    while not job.done():
        status = job.status()
        if status.rank is not None:
            ranks.add(status.rank)
            if status.eta is not None:
                etas.append(status.eta)
        if time.monotonic() > deadline:
            job.cancel()
            raise TimeoutError("the load test's time ran out")
        time.sleep(0.2)
    video, files = job.result()
    latency = time.perf_counter() - t0
    video = video["video"] if isinstance(video, dict) else video
    stem = song.stem + "_dance"
    names = sorted(Path(f).name for f in [video, *files])
    want = sorted(f"{stem}.{ext}" for ext in ("mp4", "npy", "npz", "bvh", "glb"))
    if names != want:
        raise AssertionError(f"visitor {k} got {names}, not its own {want}")
    frames, expected = frames_of(video), int(round(seconds * FPS))
    if frames != expected:
        raise AssertionError(f"visitor {k} got a {frames}-frame video, not its {expected} frames")
    return {"latency": latency, "ranks": ranks, "etas": etas}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--visitors", type=int, default=6, help=f"concurrent visitors (at most {MAX_VISITORS})")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds of dance the first visitor asks for")
    p.add_argument("--mode", choices=("smplx", "skeleton"), default="smplx")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's, 50)")
    p.add_argument("--timeout", type=float, default=900, help=f"seconds for the whole test (at most {MAX_SECONDS_TOTAL})")
    p.add_argument("--url", default=None, help="a running server on 127.0.0.1 (default: start app.py on a free port)")
    p.add_argument("--pid", type=int, default=None, help="with --url: the server's process id, for its memory")
    p.add_argument("--checkpoint", default=None, help="when starting app.py: its --checkpoint")
    a = p.parse_args()
    if not 1 <= a.visitors <= MAX_VISITORS:
        raise SystemExit(f"error: --visitors must be 1 to {MAX_VISITORS}")
    if not 0 < a.timeout <= MAX_SECONDS_TOTAL:
        raise SystemExit(f"error: --timeout must be at most {MAX_SECONDS_TOTAL} s")
    work = Path(tempfile.mkdtemp(prefix="load-page-"))
    server = None
    try:
        if a.url:
            url, pid = loopback_url(a.url), a.pid
        else:
            port, extra = free_port(), ["--checkpoint", a.checkpoint] if a.checkpoint else []
            server = start_server(port, extra, work / "app.log")
            url, pid = f"http://127.0.0.1:{port}/", server.pid
        songs = []
        for k in range(a.visitors):
            songs.append(work / f"visitor_{k:02d}{SONG.suffix}")
            shutil.copy(SONG, songs[-1])
        watch = MemoryWatch(pid) if pid else None
        if watch:
            watch.start()
        deadline = time.monotonic() + a.timeout
        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.visitors) as pool:
            futures = [pool.submit(visit, url, k, songs[k], round(a.seconds + STEP_SECONDS * k, 3), a.mode, a.steps,
                                   deadline) for k in range(a.visitors)]
            results, failures = [], []
            for k, f in enumerate(futures):
                try:
                    results.append(f.result())
                except Exception as e:   # noqa: BLE001 - every failure is reported, none stops the others
                    failures.append(f"visitor {k}: {type(e).__name__}: {e}")
        wall = time.perf_counter() - t0
        if watch:
            watch.stop()
    finally:
        if server is not None:
            server.terminate()
            server.wait(60)
        shutil.rmtree(work, ignore_errors=True)

    print(f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), {platform.system()}")
    steps = a.steps or "the model's 50"
    print(f"{a.visitors} visitors at once, {a.seconds:g}-{a.seconds + STEP_SECONDS * (a.visitors - 1):g} s of "
          f"dance each ({a.mode}, {steps} steps), server {url}; all done in {wall:.1f} s")
    if results:
        lat = np.array([r["latency"] for r in results])
        print(f"latency (submit → files): p50 {np.percentile(lat, 50):.1f} s, p90 {np.percentile(lat, 90):.1f} s, "
              f"max {lat.max():.1f} s; served one at a time: {wall / len(results):.1f} s a visitor")
        ranks = sorted(set().union(*(r["ranks"] for r in results)))
        with_eta = sum(bool(r["etas"]) for r in results)
        print(f"queue positions shown: {ranks[0] + 1 if ranks else '-'}..{ranks[-1] + 1 if ranks else '-'} "
              f"(1 = next); {with_eta} of {len(results)} visitors were shown an estimated wait")
    print(f"failures: {len(failures)} of {a.visitors}" + "".join(f"\n  {f}" for f in failures))
    if watch:
        print(f"peak memory (RSS): server {watch.peak_server / 2 ** 30:.2f} GB, with its children (ffmpeg) "
              f"{watch.peak_total / 2 ** 30:.2f} GB")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
