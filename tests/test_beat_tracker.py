"""The beat tracker (audio/beats.py, issue 20) on generated drum patterns with known beats, songs without a
steady beat, and (where apt-get can fetch them) recorded songs with annotated beats."""
import numpy as np
import pytest

from audio.beats import track_beats
from audio.music import BEAT_CHANNEL, SAMPLE_RATE, music_features

SR = SAMPLE_RATE


def hit(y, t, freq=None, decay=0.03, gain=1.0, seed=0):
    """Add a drum hit at t seconds: a decaying sine at ``freq`` (a kick) or decaying noise (snare, hat)."""
    n = int(0.12 * SR)
    i = int(round(t * SR))
    if i >= len(y):
        return
    k = np.arange(min(n, len(y) - i))
    env = np.exp(-k / (decay * SR))
    if freq is None:
        sound = np.random.default_rng(seed + i).normal(size=len(k)) * env
    else:
        sound = np.sin(2 * np.pi * freq * k / SR) * env
    y[i:i + len(k)] += (gain * sound).astype(np.float32)


def rock_groove(bpm, seconds=20.0, first=0.5):
    """Kick on beats 1 and 3, snare on 2 and 4, hi-hat on every eighth. → (audio, beats)."""
    y = np.zeros(int(seconds * SR), np.float32)
    period = 60 / bpm
    beats = np.arange(first, seconds - 0.5, period)
    for k, b in enumerate(beats):
        if k % 2 == 0:
            hit(y, b, freq=60, decay=0.05, gain=1.0)
        else:
            hit(y, b, decay=0.04, gain=0.6)
        hit(y, b, decay=0.008, gain=0.15, seed=1)
        hit(y, b + period / 2, decay=0.008, gain=0.15, seed=2)
    return y, beats


def f_measure(found, beats, tolerance=0.07):
    """Share of annotated beats with a found beat within ±tolerance s and of found beats with an annotated one."""
    found, beats = np.asarray(found), np.asarray(beats)
    if len(found) == 0:
        return 0.0
    recall = np.mean([np.abs(found - b).min() <= tolerance for b in beats])
    precision = np.mean([np.abs(beats - f).min() <= tolerance for f in found])
    return 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)


@pytest.mark.parametrize("bpm", [96, 128, 174])
def test_rock_groove_tempo_and_beats(bpm):
    y, beats = rock_groove(bpm)
    track = track_beats(y)
    level = 2.0 if track.bpm < 0.75 * bpm else 1.0      # half time is a fine level to dance at
    assert abs(track.bpm * level - bpm) / bpm < 0.03
    grids = [beats[2:]] if level == 1 else [beats[2::2], beats[3::2]]   # half time: either phase is on a beat
    assert max(f_measure(track.times, g) for g in grids) > 0.9
    assert track.steady[30:-30].all()


def test_beats_fall_on_the_kick_and_snare_not_between_them():
    """Loud hi-hats on the off-beats: the beats stay on the kick and snare."""
    y, beats = rock_groove(120)
    for b in beats:
        hit(y, b + 0.25, decay=0.01, gain=0.6, seed=3)
    track = track_beats(y)
    mid = track.times[(track.times > 2) & (track.times < 18)]
    phase = ((mid - beats[0]) / 0.5) % 1.0
    assert np.mean(np.minimum(phase, 1 - phase) < 0.1) > 0.9


def off_beat_song(bpm=120, seconds=24.0, chords=True):
    """A song whose loudest hits are off the beat (a thrash-like skank: quiet kick on the beats, loud snare
    between them), with, if ``chords``, a held triad that changes on every bar's first beat. → (audio, beats)."""
    y = np.zeros(int(seconds * SR), np.float32)
    period = 60 / bpm
    beats = np.arange(0.5, seconds - 0.5, period)
    for b in beats:
        hit(y, b, freq=60, decay=0.05, gain=0.3)
        hit(y, b + period / 2, decay=0.04, gain=1.0, seed=4)
    if chords:
        progression = [(261.6, 329.6, 392.0), (349.2, 440.0, 523.3), (392.0, 493.9, 587.3), (220.0, 261.6, 329.6)]
        for bar, start in enumerate(beats[::4]):
            a, b = int(start * SR), min(int((start + 4 * period) * SR), len(y))
            t = np.arange(b - a) / SR
            tone = sum(np.sin(2 * np.pi * f * t) for f in progression[bar % 4])
            y[a:b] += (0.05 * tone * np.minimum(t / 0.01, 1)).astype(np.float32)
    return y, beats


def test_chord_changes_tell_the_beat_from_the_off_beat():
    """The harmony's change is larger on the beats than half a beat off them, and the tracker follows it
    where the loudest onsets are off the beat."""
    from audio.beats import TRACK_FPS, chord_phase_evidence, chroma

    y, beats = off_beat_song()
    harmony = chroma(y)
    on = beats * TRACK_FPS
    assert chord_phase_evidence(on, harmony) > 0.3
    assert chord_phase_evidence(on[:-1] + np.diff(on) / 2, harmony) < -0.3
    track = track_beats(y)
    mid = (beats > 3) & (beats < 21)
    assert f_measure(track.times[(track.times > 3) & (track.times < 21)], beats[mid]) > 0.9


def test_too_few_bars_give_no_harmonic_evidence():
    """Under MIN_BARS bars of beats the harmony abstains (and the onsets choose the phase)."""
    from audio.beats import BAR_BEATS, MIN_BARS, TRACK_FPS, chord_phase_evidence, chroma

    y, beats = off_beat_song()
    few = beats[: MIN_BARS * BAR_BEATS - 1] * TRACK_FPS
    assert chord_phase_evidence(few, chroma(y)) == 0.0
    assert chord_phase_evidence(beats[: MIN_BARS * BAR_BEATS + 4] * TRACK_FPS, chroma(y)) > 0.3


def test_drums_alone_give_no_harmonic_evidence():
    """The chroma of drums alone is noise (and moves a little on every hit); it is not a chord change."""
    from audio.beats import TRACK_FPS, chord_phase_evidence, chroma

    for bpm in (96, 128, 174):
        y, beats = rock_groove(bpm)
        assert not chroma(y).any()
        assert chord_phase_evidence(beats * TRACK_FPS, chroma(y)) == 0.0


def test_one_held_chord_does_not_judge_the_phase():
    from audio.beats import TRACK_FPS, chord_phase_evidence, chroma

    y, beats = off_beat_song(chords=False)
    t = np.arange(len(y)) / SR
    y += (0.05 * np.sin(2 * np.pi * 261.6 * t) + 0.03 * np.sin(2 * np.pi * 392.0 * t)).astype(np.float32)
    assert chroma(y).any()
    assert chord_phase_evidence(beats * TRACK_FPS, chroma(y)) == 0.0


def test_beat_channel_of_our_features_is_the_trackers():
    y, _ = rock_groove(128, seconds=10)
    features, track = music_features(y)
    assert np.array_equal(np.nonzero(features[:, BEAT_CHANNEL])[0], track.frames(len(features)))


@pytest.mark.parametrize("kind", ["silence", "noise", "pad", pytest.param("random_clicks", marks=pytest.mark.xfail(
    reason="known limitation (issue 20 note): clicks 0.3-0.9 s apart at random pass as a steady beat over "
           "about half of 20 s: the pulse clarity of 8 s windows reaches 0.1 by chance"))])
def test_no_steady_beat_where_there_is_none(kind):
    rng = np.random.default_rng(0)
    n = 20 * SR
    t = np.arange(n) / SR
    if kind == "silence":
        y = np.zeros(n, np.float32)
    elif kind == "noise":
        y = rng.normal(0, 0.1, n).astype(np.float32)
    elif kind == "pad":     # held chords swelling slowly: no onsets
        y = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.1 * t))
             + 0.1 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    else:                   # rubato: clicks 0.3-0.9 s apart at random
        y = np.zeros(n, np.float32)
        at = 0.5
        while at < 19.5:
            hit(y, at, decay=0.01)
            at += rng.uniform(0.3, 0.9)
    track = track_beats(y)
    assert len(track.times) == 0 and not track.steady.any() and track.bpm == 0.0
    assert track.unsteady_spans() == [(0.0, len(track.steady) / 30)]


def test_a_silent_middle_is_reported_and_has_no_beats():
    y, beats = rock_groove(120, seconds=30)
    y[int(10 * SR):int(20 * SR)] = 0.0
    track = track_beats(y)
    assert not np.any((track.times > 11) & (track.times < 19))
    spans = track.unsteady_spans()
    assert len(spans) == 1 and 9 <= spans[0][0] <= 11.5 and 18.5 <= spans[0][1] <= 21
    assert f_measure(track.times[(track.times > 1.5) & (track.times < 9.5)], beats[(beats > 1.5) & (beats < 9.5)]) > 0.85


def test_tempo_change_is_followed():
    """100 BPM for 15 s, then 124 BPM: the beats follow both halves."""
    first, _ = rock_groove(100, seconds=15)
    second, _ = rock_groove(124, seconds=15, first=0.0)
    y = np.concatenate([first, second])
    beats_a = np.arange(0.5, 14.5, 0.6)
    beats_b = 15 + np.arange(0.0, 14.5, 60 / 124)
    track = track_beats(y)
    assert f_measure(track.times[(track.times > 3) & (track.times < 12)], beats_a[(beats_a > 3) & (beats_a < 12)]) > 0.8
    assert f_measure(track.times[(track.times > 19) & (track.times < 28)], beats_b[(beats_b > 19) & (beats_b < 28)]) > 0.8


@pytest.mark.slow
def test_recorded_songs_beat_the_old_tracker():
    """Debian's recorded sectoid songs (fetched with apt-get; skipped where that cannot be done): our
    tracker's mean F-measure at ±70 ms is far above the old beat channel's (0.82 against 0.28 on the
    20 excerpts of benchmarks/bench_beats.py; here the 30 s excerpts from 60 s)."""
    import librosa

    from audio.music import FPS, _features, n_frames
    from eval.real_songs import RealSongsUnavailable, real_songs

    pytest.importorskip("mido")
    try:
        songs = real_songs(SR)
    except RealSongsUnavailable as e:
        pytest.skip(str(e))
    ours, old = [], []
    for song in songs:
        y, beats = song.excerpt(60.0, 30.0)
        beats = beats[beats > 5]
        ours.append(f_measure(track_beats(y).times, beats))
        feats = _features(librosa, y, SR, n_frames(len(y)))
        old.append(f_measure(np.nonzero(feats[:, BEAT_CHANNEL])[0] / FPS, beats))
    assert np.mean(ours) > np.mean(old) + 0.3, (ours, old)
    assert all(60 / 200 < np.median(np.diff(s.beats)) < 60 / 60 for s in songs)
