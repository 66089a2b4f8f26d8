"""Recorded songs with annotated beats, for developing and scoring the beat tracker (issue 20).

Our own music (``../shared/data/music``) is rendered from MIDI with clean drums; a beat tracker that
works there can still fail on recordings. Debian's ``fretsonfire-songs-sectoid`` (CC BY-SA 3.0, © Carlos
Viola Iborra; see its ``copyright`` file) has four recorded rock and metal songs whose game charts
(``notes.mid``) carry the song's tempo map, so each song's beat grid is known:

- beat k is at the time the tempo map gives to MIDI tick k · ticks-per-beat (the chart starts at
  time 0 with a beat);
- plus the recording's latency, a few tens of milliseconds, fitted here to the recording
  (:func:`fit_latency`: the shift that puts the guitar stem's onsets on the chart's guitar notes;
  16–34 ms on these four songs). The fitted latencies are printed by ``benchmarks/bench_beats.py``.

The audio is the chart's two stems mixed (``song.ogg`` + ``guitar.ogg``), as the game plays them.
Nothing here is committed: :func:`fetch_sectoid` downloads the package with ``apt-get download`` into
a cache folder and unpacks it with ``dpkg -x``. Needs the test requirements (``mido`` reads MIDI).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.music import SAMPLE_RATE

PACKAGE = "fretsonfire-songs-sectoid"
SONGS_SUBDIR = "usr/share/games/fretsonfire/data/songs/sectoid"
DEFAULT_CACHE = Path(os.environ.get("DANCE_REAL_SONGS", Path.home() / ".cache" / "dance-real-songs"))
LATENCY_SEARCH_S = 0.3      # latency fitted within ±this
EXPERT_NOTES = (96, 100)    # the chart's MIDI notes of the hardest difficulty's five frets
CREDIT = ("Songs by Sectoid (Carlos Viola Iborra), CC BY-SA 3.0, from Debian's "
          "fretsonfire-songs-sectoid")


class RealSongsUnavailable(RuntimeError):
    """The Debian package cannot be fetched here (no apt-get, no network)."""


@dataclass(frozen=True)
class RealSong:
    """One recorded song: its folder, the mixed audio and its annotated beats."""

    name: str
    folder: Path
    audio: np.ndarray          # (N,) mono float32 at ``sr``
    sr: int
    beats: np.ndarray          # (M,) beat times in seconds, latency included
    latency: float             # seconds added to the chart's grid
    bpm: float                 # the tempo map's median tempo

    def excerpt(self, start: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """(audio, beat times relative to ``start``) of ``seconds`` of the song from ``start``."""
        a, b = int(round(start * self.sr)), int(round((start + seconds) * self.sr))
        beats = self.beats[(self.beats >= start) & (self.beats < start + seconds)] - start
        return self.audio[a:b], beats


def fetch_sectoid(cache: Path = DEFAULT_CACHE) -> list[Path]:
    """The four song folders of ``fretsonfire-songs-sectoid``, downloaded and unpacked into ``cache``
    on first use. Raises RealSongsUnavailable where apt-get or dpkg is missing or the download fails."""
    root = Path(cache) / PACKAGE
    songs = root / SONGS_SUBDIR
    if not songs.is_dir():
        if not (shutil.which("apt-get") and shutil.which("dpkg")):
            raise RealSongsUnavailable(f"{PACKAGE}: needs apt-get and dpkg to fetch")
        download = Path(cache) / "deb"
        download.mkdir(parents=True, exist_ok=True)
        got = subprocess.run(["apt-get", "download", PACKAGE], cwd=download, capture_output=True, text=True)
        debs = sorted(download.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise RealSongsUnavailable(f"{PACKAGE}: apt-get download failed: {got.stderr.strip()[-300:]}")
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(partial)], check=True)
        partial.rename(root)
    return sorted(p for p in songs.iterdir() if (p / "notes.mid").is_file())


def chart_beats(midi: Path, seconds: float, until_tick: int | None = None) -> np.ndarray:
    """Beat times (s) of a MIDI file's tempo map up to ``seconds`` (or up to tick ``until_tick``):
    beat k at tick k · ticks-per-beat, converted through every set_tempo event of every track
    (tempo changes included)."""
    import mido

    mid = mido.MidiFile(midi)
    changes = []          # (tick, microseconds per beat)
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                changes.append((tick, msg.tempo))
    changes = sorted(set(changes)) or [(0, 500000)]
    if changes[0][0] > 0:
        changes.insert(0, (0, 500000))              # MIDI's default tempo before the first event
    tpb = mid.ticks_per_beat
    beats, t, k = [], 0.0, 0
    for i, (tick, tempo) in enumerate(changes):
        end = changes[i + 1][0] if i + 1 < len(changes) else None
        while (end is None or k * tpb < end):
            time = t + (k * tpb - tick) / tpb * tempo / 1e6
            if time > seconds or (until_tick is not None and k * tpb > until_tick):
                return np.asarray(beats)
            beats.append(time)
            k += 1
        t += (end - tick) / tpb * tempo / 1e6
    return np.asarray(beats)


def chart_notes(midi: Path) -> np.ndarray:
    """Times (s) of the chart's note-ons on its hardest difficulty (MIDI notes 96–100: the five
    frets), through the tempo map: when the guitar plays."""
    import mido

    mid = mido.MidiFile(midi)
    ticks = []
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0 and EXPERT_NOTES[0] <= msg.note <= EXPERT_NOTES[1]:
                ticks.append(tick)
    beats = chart_beats(midi, np.inf, until_tick=max(ticks, default=0) + mid.ticks_per_beat)
    return np.interp(np.unique(ticks) / mid.ticks_per_beat, np.arange(len(beats)), beats)


def fit_latency(guitar: np.ndarray, notes: np.ndarray, search: float = LATENCY_SEARCH_S) -> float:
    """The shift d in [−search, +search] s (1 ms steps) that puts the most onset strength of the
    guitar stem (15360 Hz) on the chart's notes + d: the recording's latency against its chart.

    The onsets are the beat tracker's own envelope (``audio.beats.band_envelopes``), whose peaks sit
    on the annotated beats of our rendered songs to within 4 ms (librosa's ``onset_strength`` peaks
    40–48 ms late there). The notes, not the beat grid, are matched: they fall irregularly, so only
    the true latency lines them up, whereas the grid lines up with the off-beat too."""
    from audio.beats import TRACK_FPS, band_envelopes

    env = band_envelopes(guitar).sum(axis=0)
    times = np.arange(len(env)) / TRACK_FPS
    shifts = np.arange(-search, search + 1e-9, 0.001)
    return float(shifts[int(np.argmax([np.interp(notes + d, times, env).mean() for d in shifts]))])


def load_real_song(folder: Path, sr: int = SAMPLE_RATE) -> RealSong:
    """A song folder's stems mixed at ``sr`` and its latency-corrected beat grid."""
    from audio.music import load_audio

    stems = {p.stem: load_audio(p, sr=sr) for p in sorted(folder.glob("*.ogg"))}
    n = max(len(s) for s in stems.values())
    audio = sum(np.pad(s, (0, n - len(s))) for s in stems.values()).astype(np.float32)
    grid = chart_beats(folder / "notes.mid", n / sr)
    guitar = stems["guitar"] if sr == SAMPLE_RATE else load_audio(folder / "guitar.ogg")
    latency = fit_latency(guitar, chart_notes(folder / "notes.mid"))
    beats = grid + latency
    beats = beats[(beats >= 0) & (beats < n / sr)]
    return RealSong(folder.name, folder, audio, sr, beats, latency, float(60 / np.median(np.diff(beats))))


def real_songs(sr: int, cache: Path = DEFAULT_CACHE) -> list[RealSong]:
    """All four songs, mixed at ``sr`` (fetched on first use)."""
    return [load_real_song(folder, sr) for folder in fetch_sectoid(cache)]


def write_excerpts(out_dir: Path, seconds: float = 20.0, starts: tuple[float, ...] = (20.0, 60.0),
                   cache: Path = DEFAULT_CACHE) -> list[str]:
    """Excerpts of the recorded songs as ``r<k>_<name>.wav`` with a ``.json`` of their annotated beats
    (``beat_times_s``), the layout ``eval.heldout_songs --music_dir`` reads. → the track ids."""
    import json

    import soundfile as sf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = []
    for song in real_songs(SAMPLE_RATE, cache):
        for start in starts:
            track = f"r{len(ids) + 1:02d}"
            stem = f"{track}_{song.name.lower().replace(' ', '_')}_{start:.0f}s"
            audio, beats = song.excerpt(start, seconds)
            sf.write(out_dir / f"{stem}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
            (out_dir / f"{stem}.json").write_text(json.dumps({"beat_times_s": beats.round(6).tolist(),
                                                              "tempo_bpm": round(song.bpm, 3),
                                                              "latency_s": song.latency, "credit": CREDIT}))
            ids.append(track)
    return ids


if __name__ == "__main__":
    import sys

    print(",".join(write_excerpts(Path(sys.argv[1]))))
