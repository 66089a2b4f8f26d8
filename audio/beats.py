"""The song's beats, as a dancer hears them (issue 20): one tracker for everything in our mode.

librosa's ``beat_track`` on the 30 fps onset envelope (the official beat channel) is right on clean
rendered drums but, on recorded rock, often locks onto 2/3 of the tempo (a dotted-quarter grouping of
the eighth notes) or onto the off-beat (guitars and hi-hats put as much onset strength between the
beats as on them). This tracker keeps librosa's parts and changes what they are fed and how the
result is chosen:

1. Onset envelopes in three bands of a log-mel spectrogram at 60 frames a second (the song decoded
   at 15360 Hz, hop 256): low (under 150 Hz: kick and bass), mid (150–2000 Hz: snare, voices,
   chords) and high (hi-hats, cymbals), each scaled to unit mean; their sum drives tempo and the DP.
2. Tempo by metrical consistency, not by a prior alone: a candidate beat period τ scores the
   autocorrelation of the envelope at τ, 2τ, 3τ and 4τ (the beat, the half bar, 3/4's and 4/4's bar
   recur at whole multiples of the true beat; the dotted grouping 1.5τ does not, its 1.5 and 4.5 fall
   between beats). A log-normal preference for ~120 BPM then picks among what is left, mostly between
   a tempo and its double.
3. Local tempo: the same score on 8 s windows, searched within a third of an octave of the song's
   tempo, so a song that speeds up is followed; librosa's dynamic-programming ``beat_track`` places
   the beats with that time-varying tempo.
4. Phase: the beats or the same grid half a beat later. The harmony decides where it can: chords
   change on the beat, most of all on the bar's first beat, so the place in the bar where the
   chroma changes most must be a beat. Where the harmony does not tell (one chord, a short
   excerpt), the onsets and the kick drum vote.
5. Steadiness: frames where the music is silent or its pulse is weak (the autocorrelation of the
   local envelope at the local beat period, over 8 s, under ``MIN_CLARITY``) have no steady beat;
   beats there are dropped, and callers say so.

Everything counts time in seconds or 30 fps feature frames; :func:`track_beats` takes the same audio
as ``audio.music.music_features`` (mono, 15360 Hz).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

from audio.music import FPS, SAMPLE_RATE

TRACK_HOP = 256                      # samples: the tracker's frames, 60 a second at 15360 Hz
TRACK_FPS = SAMPLE_RATE / TRACK_HOP  # 60.0
N_FFT = 1024
N_MELS = 64
BANDS_HZ = (150.0, 2000.0)           # low | mid | high band edges
BPM_RANGE = (60.0, 200.0)            # beats the dance can follow
PREFERRED_BPM, PRIOR_OCTAVES = 120.0, 1.0   # log-normal preference among metrical levels
MULTIPLES = (1, 2, 3, 4)             # the metrical levels that recur at whole beats
LOCAL_SECONDS = 8.0                  # window of the local tempo and pulse clarity
LOCAL_RANGE = 2 ** (1 / 3)           # local tempo within a third of an octave of the song's
TIGHTNESS = 400                      # librosa beat_track: how strictly beats keep the local period
KICK_HZ, KICK_N_FFT = (30.0, 110.0), 2048   # the kick drum
MIN_CLARITY = 0.1                    # below: no steady beat (white noise and random clicks: 0.05)
BEAT_REACH = 1.5                     # beat periods: farther from any beat is not steady
SILENCE_DB, SILENCE_SECONDS = -50.0, 1.0
STRONG_ONSET = 0.3                   # × the 95th percentile of the evidence: where the music starts and ends
MIN_UNSTEADY_SECONDS = 2.0           # shorter spans without a steady beat go unreported
CHROMA_N_FFT = 2048                  # chroma of the harmony: 7.5 Hz bins
BAR_BEATS = 4                        # beats a bar, for where chords change
MIN_BARS = 4                         # fewer bars of beats: the harmony does not judge the phase
CHORD_MARGIN = 0.05                  # the harmony's evidence (a log ratio) that decides the phase
CHORD_PRESENT = 0.05                 # chroma change (cosine distance) under which the harmony does not move
                                     # (one held chord: 0.02; our recorded and rendered songs: 0.096-0.71)
TONAL_FLATNESS = 0.3                 # median spectral flatness at or over which music is not tonal (drums
                                     # alone, noise clicks: 0.53-0.60; our recorded and rendered songs: 0.10 at most)


@dataclass(frozen=True)
class BeatTrack:
    """The beats of a song.

    times: (M,) beat times in seconds (only where the beat is steady).
    bpm: the song's tempo at the tracked level (0 when it has no steady beat at all).
    steady: (T,) bool per 30 fps feature frame: whether a steady beat was heard there.
    clarity: (T,) pulse clarity per feature frame, 0–1.
    """

    times: np.ndarray
    bpm: float
    steady: np.ndarray
    clarity: np.ndarray

    def frames(self, n_frames: int | None = None) -> np.ndarray:
        """Beat positions as (integer) 30 fps feature frames, below ``n_frames`` when given."""
        f = np.unique(np.round(self.times * FPS).astype(int))
        return f if n_frames is None else f[f < n_frames]

    def unsteady_spans(self, min_seconds: float = MIN_UNSTEADY_SECONDS) -> list[tuple[float, float]]:
        """(start, end) seconds of the spans without a steady beat that last at least ``min_seconds``."""
        spans, start = [], None
        for i, s in enumerate(np.append(self.steady, True)):
            if not s and start is None:
                start = i
            elif s and start is not None:
                if (i - start) / FPS >= min_seconds:
                    spans.append((start / FPS, i / FPS))
                start = None
        return spans


def band_envelopes(y: np.ndarray) -> np.ndarray:
    """(N,) audio at 15360 Hz → (3, F) onset envelopes (low, mid, high) at 60 frames a second,
    each scaled to unit mean (zero where the band is silent)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=TRACK_HOP,
                                         n_mels=N_MELS, fmax=SAMPLE_RATE / 2)
    freqs = librosa.mel_frequencies(n_mels=N_MELS, fmax=SAMPLE_RATE / 2)
    edges = [0, *np.searchsorted(freqs, BANDS_HZ), N_MELS]
    log_mel = librosa.power_to_db(mel, ref=np.max(mel) + 1e-20)
    # spectral flux: the rise of each bin over the frame before, against the louder of its neighbours
    # there (a vibrato's sidebands do not count as onsets), half-wave rectified; frame t holds the
    # rise into frame t, so a peak sits on the onset's own frame
    before = maximum_filter1d(log_mel, size=3, axis=0)
    rise = np.zeros_like(log_mel)
    rise[:, 1:] = np.maximum(log_mel[:, 1:] - before[:, :-1], 0.0)
    env = np.stack([rise[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:])])
    mean = env.mean(axis=1, keepdims=True)
    return np.where(mean > 0, env / np.where(mean > 0, mean, 1), 0.0)


def _autocorrelation(env: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised autocorrelation (lag 0 = 1) of an envelope minus its mean, lags 0…max_lag (0 past
    the envelope's length)."""
    x = env - env.mean()
    n = len(x)
    ac = np.zeros(max_lag + 1)
    full = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * n)) ** 2)[: min(n, max_lag + 1)]
    ac[: len(full)] = full / np.maximum(n - np.arange(len(full)), 1)   # unbiased: each lag over its overlap
    return ac / ac[0] if ac[0] > 0 else ac


def _comb(ac: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Metrical consistency of each beat period (frames): mean autocorrelation at its MULTIPLES."""
    lags = np.arange(len(ac))
    return np.mean([np.interp(k * periods, lags, ac, right=0.0) for k in MULTIPLES], axis=0)


def _prior(bpm: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * (np.log2(bpm / PREFERRED_BPM) / PRIOR_OCTAVES) ** 2)


def _candidate_periods(lo_bpm: float, hi_bpm: float) -> np.ndarray:
    """Beat periods (tracker frames) on a fine log grid between two tempi."""
    bpm = np.geomspace(lo_bpm, hi_bpm, 400)
    return 60.0 * TRACK_FPS / bpm


def song_tempo(env: np.ndarray) -> tuple[float, float]:
    """(bpm, clarity) of a whole envelope. The most metrically consistent period in BPM_RANGE (no
    prior: a prior centred on a tempo favours the dotted grouping of fast songs), then, among it,
    its half and its double, the one the log-normal preference weighs highest."""
    periods = _candidate_periods(*BPM_RANGE)
    ac = _autocorrelation(env, int(np.ceil(max(MULTIPLES) * periods.max())) + 2)
    score = np.maximum(_comb(ac, periods), 0.0)
    best = periods[int(np.argmax(score))]
    levels = np.array([p for p in (best / 2, best, best * 2) if periods.min() <= p <= periods.max()])
    level_scores = np.maximum(_comb(ac, levels), 0.0) * _prior(60 * TRACK_FPS / levels)
    pick = levels[int(np.argmax(level_scores))]
    return float(60 * TRACK_FPS / pick), float(max(_comb(ac, np.array([pick]))[0], 0.0))


def local_tempo(env: np.ndarray, bpm: float) -> tuple[np.ndarray, np.ndarray]:
    """(bpm, clarity) per tracker frame: the most metrically consistent period within LOCAL_RANGE of
    ``bpm`` on the LOCAL_SECONDS around each frame (a window kept whole at the song's ends; computed
    every half second and interpolated). Clarity is that period's score, 0–1."""
    n = len(env)
    size = min(n, int(LOCAL_SECONDS * TRACK_FPS))
    periods = _candidate_periods(bpm / LOCAL_RANGE, min(bpm * LOCAL_RANGE, BPM_RANGE[1] * LOCAL_RANGE))
    max_lag = min(int(np.ceil(max(MULTIPLES) * periods.max())) + 2, size - 1)
    centres = np.arange(0, n, int(TRACK_FPS / 2))
    bpms, clarity = [], []
    for c in centres:
        start = int(np.clip(c - size // 2, 0, n - size))
        seg = env[start:start + size]
        score = _comb(_autocorrelation(seg, max_lag), periods) if seg.any() else np.zeros(len(periods))
        best = int(np.argmax(score))
        bpms.append(60 * TRACK_FPS / periods[best])
        clarity.append(max(float(score[best]), 0.0))
    frames = np.arange(n)
    return np.interp(frames, centres, bpms), np.interp(frames, centres, clarity)


def _loudness_db(y: np.ndarray) -> np.ndarray:
    """RMS level (dB under the song's loudest) per tracker frame, the loudest within SILENCE_SECONDS
    around it (the gaps between a click track's clicks are not silence)."""
    import librosa

    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=TRACK_HOP)[0]
    rms = maximum_filter1d(rms, size=int(SILENCE_SECONDS * TRACK_FPS), mode="nearest")
    return 20 * np.log10(np.maximum(rms, 1e-10) / max(rms.max(), 1e-10))


def kick_envelope(y: np.ndarray) -> np.ndarray:
    """(N,) audio at 15360 Hz → (F,) kick-drum onset envelope at 60 frames a second: the rise over
    two frames of the log magnitude in KICK_HZ (finer bins than the mel bands have there)."""
    import librosa

    spec = np.abs(librosa.stft(y, n_fft=KICK_N_FFT, hop_length=TRACK_HOP))
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=KICK_N_FFT)
    band = np.log1p(10 * spec[(freqs >= KICK_HZ[0]) & (freqs < KICK_HZ[1])])
    rise = np.zeros(band.shape[1])
    rise[2:] = np.maximum(band[:, 2:] - band[:, :-2], 0).mean(axis=0)
    # the rise over frames t-2..t peaks one frame after the onset: centre it
    return np.append(rise[1:], 0.0)


def chroma(y: np.ndarray) -> np.ndarray:
    """(N,) audio at 15360 Hz → (12, F) chroma (energy per pitch class) at 60 frames a second; all zero
    where the music is not tonal (the median spectral flatness of its loud frames, 100–2000 Hz, at least
    TONAL_FLATNESS: drums alone, noise), since the chroma of noise is noise. Separating the harmony from
    the drums first (HPSS) cost 5-20× more and told the phase no better on our songs."""
    import librosa

    power = np.abs(librosa.stft(y, n_fft=CHROMA_N_FFT, hop_length=TRACK_HOP)) ** 2
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=CHROMA_N_FFT)
    band = power[(freqs > 100) & (freqs < 2000)]
    energy = band.sum(axis=0)
    loud = energy > 1e-3 * energy.max() if energy.any() else np.zeros(len(energy), bool)
    if not loud.any():
        return np.zeros((12, power.shape[1]))
    flatness = np.exp(np.log(band[:, loud] + 1e-12).mean(axis=0)) / (band[:, loud].mean(axis=0) + 1e-12)
    if np.median(flatness) >= TONAL_FLATNESS:
        return np.zeros((12, power.shape[1]))
    return librosa.feature.chroma_stft(S=power, sr=SAMPLE_RATE, n_fft=CHROMA_N_FFT, hop_length=TRACK_HOP)


def _chord_change(chroma: np.ndarray, points: np.ndarray, width: int) -> np.ndarray:
    """Harmonic change at each point (tracker frames): the cosine distance between the mean chroma of
    the ``width`` frames before it and of the ``width`` frames from it (NaN where either runs off)."""
    cum = np.concatenate([np.zeros((chroma.shape[0], 1)), np.cumsum(chroma, axis=1)], axis=1)
    p = np.round(points).astype(int)
    ok = (p - width >= 0) & (p + width <= chroma.shape[1])
    out = np.full(len(p), np.nan)
    if width < 1 or not ok.any():
        return out
    before = (cum[:, p[ok]] - cum[:, p[ok] - width]).T
    after = (cum[:, p[ok] + width] - cum[:, p[ok]]).T
    norms = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
    out[ok] = 1 - np.sum(before * after, axis=1) / np.maximum(norms, 1e-12)
    return out


def _log_ratio(on: float, off: float) -> float:
    return float(np.log((on + 1e-9) / (off + 1e-9)))


def chord_phase_evidence(beats: np.ndarray, chroma: np.ndarray) -> float:
    """How much more the harmony changes on the beats than half a beat off them, as a log ratio
    (> 0: the beats are on the beat). Chords change on the beat, most of all on the bar's first beat:
    the half-beat points are grouped by their place in a bar of BAR_BEATS beats, and the strongest
    on-beat place is set against the strongest off-beat one (so one bar line a bar weighs fully,
    whichever beat of the tracked grid it falls on). 0 with fewer than MIN_BARS bars of beats, or where the
    harmony hardly changes (under CHORD_PRESENT on and off the beat) or there is none (``chroma`` all zero)."""
    if len(beats) < MIN_BARS * BAR_BEATS or not chroma.any():
        return 0.0
    half = np.empty(2 * len(beats) - 1)
    half[0::2], half[1::2] = beats, beats[:-1] + np.diff(beats) / 2
    width = int(round(np.median(np.diff(beats))))
    change = _chord_change(chroma, half, width)
    place = np.arange(len(half)) % (2 * BAR_BEATS)
    means = np.array([np.nanmean(change[place == k]) if np.isfinite(change[place == k]).any() else np.nan
                      for k in range(2 * BAR_BEATS)])
    if not np.isfinite(means).any():
        return 0.0
    on, off = np.nanmax(means[0::2], initial=0.0), np.nanmax(means[1::2], initial=0.0)
    if max(on, off) < CHORD_PRESENT:      # one held chord
        return 0.0
    return _log_ratio(on, off)


def _phase_choice(beats: np.ndarray, env: np.ndarray, kick: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """The beats, or the grid half a beat later: whichever is on the beat.

    The harmony decides where it can: chords change on the beat (``chord_phase_evidence``), in rock
    and metal as in hip-hop and breakbeats. The onsets cannot be the judge there: the dynamic
    programming has put the beats on the strongest onsets already, and guitars, hi-hats and off-beat
    snares are often stronger off the beat than on it. Where the harmony does not tell (its evidence
    under CHORD_MARGIN: a one-chord riff, a short excerpt), the onsets do: the whole envelope and the
    kick drum vote by the log ratio of their strength on the beats over half a beat off them."""
    if len(beats) < 4:
        return beats
    off = beats[:-1] + np.diff(beats) / 2
    chord = chord_phase_evidence(beats, chroma)
    if abs(chord) >= CHORD_MARGIN:
        return off if chord < 0 else beats
    frames = np.arange(len(env))

    def onsets(curve):
        return _log_ratio(np.interp(beats[:-1], frames, curve).mean(), np.interp(off, frames, curve).mean())

    return off if onsets(env) + onsets(kick[: len(env)]) < 0 else beats


def _near_beats(beats: np.ndarray, local_bpm: np.ndarray) -> np.ndarray:
    """(F,) bool: tracker frames within BEAT_REACH local beat periods of a beat (a steady beat needs
    beats: a span the dynamic programming left empty has none)."""
    frames = np.arange(len(local_bpm))
    if len(beats) == 0:
        return np.zeros(len(frames), bool)
    i = np.clip(np.searchsorted(beats, frames), 1, len(beats) - 1) if len(beats) > 1 else np.zeros(len(frames), int)
    nearest = np.minimum(np.abs(frames - beats[i]), np.abs(frames - beats[np.maximum(i - 1, 0)]))
    return nearest <= BEAT_REACH * 60 * TRACK_FPS / local_bpm


def track_beats(y: np.ndarray, n_frames: int | None = None) -> BeatTrack:
    """(N,) mono audio at 15360 Hz → its :class:`BeatTrack` (``n_frames`` feature frames; default
    that of ``music_features``, 1 + N // 512)."""
    import librosa

    from audio.music import n_frames as feature_frames

    y = np.asarray(y, np.float32)
    t_out = feature_frames(len(y)) if n_frames is None else n_frames
    empty = BeatTrack(np.zeros(0), 0.0, np.zeros(t_out, bool), np.zeros(t_out))
    if len(y) < N_FFT or not np.any(y):
        return empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        bands = band_envelopes(y)
        env = bands.sum(axis=0)
        if not env.any():
            return empty
        bpm, _ = song_tempo(env)
        local_bpm, clarity = local_tempo(env, bpm)
        kick = kick_envelope(y)[: len(env)]
        kick = kick / kick.mean() if kick.any() else kick
        harmony = chroma(y)[:, : len(env)]
        # the beats' evidence: the three bands' mean and the kick drum, weighed alike
        evidence = env / len(bands) + kick
        _, beats = librosa.beat.beat_track(onset_envelope=evidence, sr=SAMPLE_RATE, hop_length=TRACK_HOP,
                                           bpm=local_bpm, tightness=TIGHTNESS, trim=False)
    beats = _phase_choice(np.asarray(beats, float), env, kick, harmony)
    # the music's first and last strong onset bound the beats (librosa's own trim cut whole songs short)
    strong = np.nonzero(evidence > STRONG_ONSET * np.percentile(evidence, 95))[0]
    if len(strong):
        reach = 0.25 * 60 * TRACK_FPS / bpm
        beats = beats[(beats >= strong[0] - reach) & (beats <= strong[-1] + reach)]
    loud = _loudness_db(y)[: len(env)]
    steady_track = (clarity >= MIN_CLARITY) & (loud > SILENCE_DB)
    beats = beats[steady_track[np.clip(np.round(beats).astype(int), 0, len(env) - 1)]]
    steady_track &= _near_beats(beats, local_bpm)
    # per feature frame (30 fps): steady where the tracker frames under it are
    t_track = np.arange(t_out) * TRACK_FPS / FPS
    pick = np.clip(np.round(t_track).astype(int), 0, len(env) - 1)
    steady = steady_track[pick]
    times = beats / TRACK_FPS
    return BeatTrack(times, bpm if steady.any() else 0.0, steady, clarity[pick])
