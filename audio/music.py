"""Music features: 35 numbers per 1/30 s frame, as FineDance defines them (SPEC §2).

Channels: [0] onset strength, [1:21] 20 MFCC, [21:33] 12 chroma CENS, [33] onset peaks (0/1),
[34] beats (0/1). In the official features (reference mode, ``reference_song_windows`` and
``reference_song_features``) the beats are librosa's ``beat_track`` with tightness 100 and start_bpm
from a tempo estimate. In ours (``music_features``, ``song_features``) they are the beats of
``audio.beats.track_beats`` (issue 20: the beat a dancer hears on recordings too; none where the
song has no steady beat), so the network's beat input, beat sync, retrieval and the evaluator all
take the same beats. Audio is
decoded at 15360 Hz with hop 512, so one feature frame is exactly 1/30 s and N samples give
1 + N // 512 frames. No normalisation.

Choice (SPEC §2 leaves it open): features are extracted ONCE on the whole song and then cut into
windows by frame index, for training and for generation alike. The reference re-extracted features
for every 4 s slice at inference, so onset and beat tracking saw only 4 s of context and disagreed
with training at slice edges; whole-song extraction gives every window the same features it would
have had in training.

Reference mode (issue 15; ``reference_song_windows``) reproduces the official ``test.py`` instead:
the song at its own sample rate as 16-bit PCM, cut into 4 s slices every 2 s (whole slices only),
each slice written as a 16-bit WAV and read back at 15360 Hz, features computed on each slice alone
(the tempo given to the beat tracker estimated by ``librosa`` on the slice read at 22,050 Hz).
``reference_song_features`` (issue 23) does the same on the whole song, as the official ``pre_music.py``
does for training data.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np

SAMPLE_RATE = 15360
HOP = 512
FPS = SAMPLE_RATE // HOP  # 30
N_MFCC, N_CHROMA = 20, 12
FEATURE_DIM = 1 + N_MFCC + N_CHROMA + 2  # 35
WINDOW, STRIDE = 4 * FPS, 2 * FPS          # 120 frames (4 s) every 60 frames (2 s)
BEAT_CHANNEL, ONSET_PEAK_CHANNEL = FEATURE_DIM - 1, FEATURE_DIM - 2
AUDIO_EXTENSIONS = (".wav", ".mp3", ".m4a", ".flac", ".ogg", ".aac", ".opus")  # looked for beside motions


class AudioError(ValueError):
    """The audio cannot be decoded or is unusable. The message names the file."""


def load_audio(path: str | os.PathLike, sr: int | None = SAMPLE_RATE, max_seconds: float | None = None,
               pcm16: bool = False) -> np.ndarray:
    """Decode any file ffmpeg reads into mono float32 at ``sr`` Hz (channels averaged).

    sr None: the file's own sample rate, not resampled. pcm16: decoded to 16-bit samples first
    (what converting the song to a 16-bit WAV gives; a 16-bit WAV's own samples), as k/32768.
    Decoding through ffmpeg honours MP3/AAC gapless headers, so sample 0 is the first sample of
    the music. Raises AudioError naming the file on any problem.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError(f"{path}: cannot decode audio: ffmpeg not found (apt-get install ffmpeg)")
    channels = _channel_count(path)
    cmd = [exe, "-nostdin", "-v", "error", "-i", _ffmpeg_name(path), "-vn", "-map", "0:a:0"]
    if max_seconds is not None:
        cmd += ["-t", f"{max_seconds:.3f}"]
    # The file's own channels, averaged below like librosa's to_mono (ffmpeg's own up/down-mixes
    # scale channels by −3 dB).
    if sr is not None:
        cmd += ["-af", f"aresample={sr}:resampler=soxr"]
    cmd += ["-f", "s16le" if pcm16 else "f32le", "-"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"ffmpeg exit code {proc.returncode}"
        why = why.replace(f"{_ffmpeg_name(path)}: ", "")       # the name is said once, first
        if "does not contain any stream" in why or "matches no streams" in why:
            why = "no audio stream"
        raise AudioError(f"{path}: not a readable audio file ({why})")
    if pcm16:
        pcm = np.frombuffer(proc.stdout, dtype=np.int16).astype(np.float32) / 32768.0
    else:
        pcm = np.frombuffer(proc.stdout, dtype=np.float32)
    if pcm.size < channels:
        raise AudioError(f"{path}: decoded to no audio samples (truncated or empty stream)")
    y = pcm[: pcm.size // channels * channels].reshape(-1, channels).mean(axis=1)
    if not np.isfinite(y).all():
        raise AudioError(f"{path}: decoded audio contains invalid samples")
    return np.ascontiguousarray(y, dtype=np.float32)


def _ffmpeg_name(path: Path) -> str:
    """``path`` as ffmpeg must be given it: through its file protocol, so that no name is read as an
    option ('-x.mp3') or as another protocol ('concat:a.mp3', 'Live: song.mp3')."""
    return f"file:{path}"


def _probe(path: Path, entries: str) -> str:
    """ffprobe's answer for the first audio stream ('' when it cannot tell)."""
    exe = shutil.which("ffprobe")
    if exe is None:
        raise AudioError(f"{path}: cannot decode audio: ffprobe not found (apt-get install ffmpeg)")
    out = subprocess.run([exe, "-v", "error", "-select_streams", "a:0", "-show_entries", entries,
                          "-of", "default=noprint_wrappers=1", _ffmpeg_name(path)], capture_output=True, text=True)
    return out.stdout


def _channel_count(path: Path) -> int:
    """Channels of the first audio stream (1 if ffprobe cannot tell; decoding then reports the problem)."""
    found = re.search(r"^channels=(\d+)", _probe(path, "stream=channels"), re.M)
    return max(1, int(found.group(1))) if found else 1


def native_sample_rate(path: str | os.PathLike) -> int:
    """The first audio stream's own sample rate (AudioError if ffprobe cannot tell)."""
    found = re.search(r"^sample_rate=(\d+)", _probe(Path(path), "stream=sample_rate"), re.M)
    if not found or int(found.group(1)) <= 0:
        raise AudioError(f"{path}: not a readable audio file (no audio sample rate)")
    return int(found.group(1))


def audio_seconds(path: str | os.PathLike) -> float | None:
    """The length of a file's first audio stream as its header states it (ffprobe; no decoding, a few
    milliseconds even for hours of audio), or None when the file does not say (or is not audio)."""
    found = re.search(r"^duration=([0-9.]+)", _probe(Path(path), "stream=duration:format=duration"), re.M)
    return float(found.group(1)) if found else None     # the stream's duration, else the container's


def n_frames(n_samples: int) -> int:
    """Feature frames for a clip of n_samples at SAMPLE_RATE (centred frames)."""
    return 1 + n_samples // HOP


def _indicator(frames: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, np.float32)
    frames = np.asarray(frames, dtype=int)
    out[frames[(frames >= 0) & (frames < length)]] = 1.0
    return out


def music_features(y: np.ndarray, sr: int = SAMPLE_RATE):
    """(N,) mono audio at 15360 Hz → ((1 + N // 512, 35) float32 features, its ``audio.beats.BeatTrack``).

    Our features: the official channels, with the beat channel from ``audio.beats.track_beats``."""
    import librosa  # slow import (numba); only callers that extract features pay for it

    from audio.beats import track_beats

    if sr != SAMPLE_RATE:
        raise ValueError(f"features are defined at {SAMPLE_RATE} Hz, got {sr}")
    y = np.asarray(y, dtype=np.float32)
    length = n_frames(len(y))
    with warnings.catch_warnings():  # librosa warns on silence and very short clips; both are fine here
        warnings.simplefilter("ignore", UserWarning)
        feats = _features(librosa, y, sr, length, beats=False)
    track = track_beats(y, length)
    feats[:, BEAT_CHANNEL] = _indicator(track.frames(length), length)
    return feats, track


def _features(librosa, y: np.ndarray, sr: int, length: int, start_bpm: float | None = None,
              beats: bool = True) -> np.ndarray:
    """The official 35 channels. start_bpm: the beat tracker's starting tempo (None: estimated from
    the onset envelope). beats False: the beat channel is left 0 (the caller fills it)."""
    envelope = librosa.onset.onset_strength(y=y, sr=sr, hop_length=HOP)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC, hop_length=HOP)
    chroma = librosa.feature.chroma_cens(y=y, sr=sr, hop_length=HOP, n_chroma=N_CHROMA)
    peaks = librosa.onset.onset_detect(onset_envelope=envelope, sr=sr, hop_length=HOP)
    if not beats:
        beats = np.zeros(0, int)
    elif envelope.any():
        tempo = start_bpm
        if tempo is None:
            tempo = float(np.ravel(librosa.feature.tempo(onset_envelope=envelope, sr=sr, hop_length=HOP))[0])
        _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sr, hop_length=HOP,
                                           start_bpm=tempo, tightness=100)
    else:  # silence: no onsets, so no beats (beat_track would warn and return none anyway)
        beats = np.zeros(0, int)
    feats = np.concatenate([envelope[None, :length], mfcc[:, :length], chroma[:, :length],
                            _indicator(peaks, length)[None], _indicator(beats, length)[None]], axis=0).T
    return np.nan_to_num(feats.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def song_features(path: str | os.PathLike, max_seconds: float | None = None) -> tuple[np.ndarray, float]:
    """Decode a song and extract our features: ((T, 35), duration in seconds)."""
    features, _, seconds = song_analysis(path, max_seconds)
    return features, seconds


def song_analysis(path: str | os.PathLike, max_seconds: float | None = None):
    """Decode a song: ((T, 35) our features, its ``audio.beats.BeatTrack``, duration in seconds)."""
    y = load_audio(path, max_seconds=max_seconds)
    features, track = music_features(y)
    return features, track, len(y) / SAMPLE_RATE


REFERENCE_TEMPO_SR = 22050    # librosa's default rate, at which the official code estimates the tempo


def reference_song_windows(path: str | os.PathLike, max_seconds: float | None = None) -> tuple[np.ndarray, float]:
    """The official ``test.py``'s music features: ((n, 120, 35) windows every 2 s, duration in seconds).

    The song as 16-bit samples at its own rate; slices of 4 s every 2 s, whole slices only (a song
    under 4 s is padded with silence to one slice); the features of each slice alone, as
    ``_reference_features`` computes them from a 16-bit WAV.
    """
    import librosa

    y, rate = _reference_pcm(path, max_seconds)
    seconds = len(y) / rate
    size, hop = int(WINDOW / FPS * rate), int(STRIDE / FPS * rate)
    if len(y) < size:
        y = np.pad(y, (0, size - len(y)))
    windows = [_reference_features(librosa, y[start:start + size], rate)[:WINDOW]
               for start in range(0, len(y) - size + 1, hop)]
    return np.stack(windows), seconds


def reference_song_features(path: str | os.PathLike, max_seconds: float | None = None) -> tuple[np.ndarray, float]:
    """The official ``pre_music.py``'s whole-song features (its training data): ((T, 35), duration in
    seconds), T = 1 + N // 512 for the N samples librosa reads at 15360 Hz.

    The song as 16-bit samples at its own rate, features of the whole song as ``_reference_features``
    computes them from a 16-bit WAV (so a lossy file gives what its 16-bit WAV gives). Ours,
    ``song_features``, decodes to float at 15360 Hz and estimates the starting tempo there.
    """
    import librosa

    y, rate = _reference_pcm(path, max_seconds)
    return _reference_features(librosa, y, rate), len(y) / rate


def _reference_pcm(path: str | os.PathLike, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """The song as the official scripts have it: 16-bit samples (k/32768) at its own rate, and that rate."""
    rate = native_sample_rate(path)
    return load_audio(path, sr=None, max_seconds=max_seconds, pcm16=True), rate


def _reference_features(librosa, y: np.ndarray, rate: int) -> np.ndarray:
    """Features (1 + N // 512, 35) of 16-bit samples y at ``rate`` as the official scripts compute
    them: written as a 16-bit WAV (in memory), read back by librosa at 15360 Hz (N samples) for the
    features and at 22,050 Hz for the tempo that starts the beat tracker (``librosa.feature.tempo``,
    which ``librosa.beat.tempo`` became)."""
    import io

    import soundfile as sf

    wav = io.BytesIO()
    sf.write(wav, y, rate, format="WAV", subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        wav.seek(0)
        clip, _ = librosa.load(wav, sr=SAMPLE_RATE)
        wav.seek(0)
        slow, _ = librosa.load(wav, sr=REFERENCE_TEMPO_SR)
        bpm = float(np.ravel(librosa.feature.tempo(y=slow, sr=REFERENCE_TEMPO_SR))[0])
        return _features(librosa, clip, SAMPLE_RATE, n_frames(len(clip)), start_bpm=bpm)


def frames_of_windows(windows: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Windows (n, W, C) every ``stride`` = W/2 frames → one track ((n + 1)·stride, C): each window's
    first half, then the last window's second half (what a dance made from the windows heard)."""
    return np.concatenate([windows[:, :stride].reshape(-1, windows.shape[-1]), windows[-1, stride:]])


def seconds_to_read(dance_seconds: float | None) -> float | None:
    """Seconds of a song to decode for a dance of ``dance_seconds`` (None: the whole song): one
    window (4 s) more, because the last window's music runs past the dance's end."""
    return None if dance_seconds is None else dance_seconds + WINDOW / FPS


def covering_window_starts(n: int, window: int = WINDOW, stride: int = STRIDE) -> list[int]:
    """Start frames of the overlapping windows that cover n frames (the last may run past the end)."""
    count = 1 + -(-max(0, n - window) // stride)  # ceil division
    return [i * stride for i in range(count)]


def slice_windows(features: np.ndarray, window: int = WINDOW, stride: int = STRIDE) -> np.ndarray:
    """(T, 35) → (n_windows, window, 35): windows every ``stride`` frames covering all T frames.

    A last window that runs past the song's end is padded by repeating the final frame.
    """
    starts = covering_window_starts(len(features), window, stride)
    need = starts[-1] + window
    if need > len(features):
        pad = np.repeat(features[-1:], need - len(features), axis=0)
        features = np.concatenate([features, pad], axis=0)
    return np.stack([features[s:s + window] for s in starts])
