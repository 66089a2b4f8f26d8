"""Music features on generated audio with known answers (SPEC §2), and bad audio files."""
import subprocess

import numpy as np
import pytest
import soundfile as sf

from audio.music import (BEAT_CHANNEL, FEATURE_DIM, SAMPLE_RATE, AudioError, load_audio, music_features,
                           n_frames, slice_windows, song_features, covering_window_starts)

SR = SAMPLE_RATE


def click_track(bpm, seconds=12.0, first=0.5, sr=SR, seed=0):
    y = np.zeros(int(seconds * sr), np.float32)
    beats = np.arange(first, seconds - 0.5, 60 / bpm)
    rng = np.random.default_rng(seed)
    n = int(0.03 * sr)
    for b in beats:
        i = int(round(b * sr))
        y[i:i + n] += (rng.normal(size=n) * np.exp(-np.arange(n) / (0.005 * sr))).astype(np.float32)
    return y, beats


def tone(freq, seconds=3.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("bpm", [90, 120, 135])
def test_beat_channel_within_one_frame_of_true_beats(bpm):
    y, beats = click_track(bpm)
    f, _ = music_features(y)
    found = np.nonzero(f[:, BEAT_CHANNEL])[0]
    assert len(found) >= len(beats) - 1
    for b in beats[2:]:  # the tracker may need the first two beats to lock on
        assert np.abs(found - b * 30).min() <= 1.0 + 1e-6, f"no detected beat within a frame of {b:.3f}s"


@pytest.mark.parametrize("freq, pitch_class", [(440.0, 9), (261.63, 0), (392.0, 7)])  # A4, C4, G4
def test_chroma_peaks_at_the_tone_pitch_class(freq, pitch_class):
    f, _ = music_features(tone(freq))
    chroma = f[:, 21:33]
    assert np.bincount(chroma.argmax(axis=1), minlength=12).argmax() == pitch_class


@pytest.mark.parametrize("n_samples", [512 * 120, 512 * 120 + 1, 512 * 121 - 1, 12345, 700])
def test_shapes_for_odd_lengths(n_samples):
    y = np.random.default_rng(0).normal(size=n_samples).astype(np.float32) * 0.1
    f, _ = music_features(y)
    assert f.shape == (1 + n_samples // 512, FEATURE_DIM) == (n_frames(n_samples), FEATURE_DIM)
    assert f.dtype == np.float32 and np.isfinite(f).all()
    assert set(np.unique(f[:, 33:])) <= {0.0, 1.0}


def test_windows_cover_every_frame():
    for n in (1, 119, 120, 121, 180, 181, 900, 901):
        starts = covering_window_starts(n)
        assert starts[0] == 0 and starts[-1] + 120 >= n and (len(starts) == 1 or starts[-1] < n - 60)
        w = slice_windows(np.arange(n, dtype=np.float32)[:, None].repeat(35, 1))
        assert w.shape == (len(starts), 120, 35)
        assert w[-1, -1, 0] == n - 1  # padding repeats the last frame
    assert len(covering_window_starts(900)) == 14  # 30 s → 14 windows (SPEC §6)


@pytest.mark.parametrize("ext, args", [
    (".wav", []), (".flac", []), (".mp3", ["-b:a", "128k"]), (".ogg", ["-c:a", "libvorbis"]),
    (".m4a", ["-c:a", "aac"]),
])
def test_formats_decode_to_the_same_song(tmp_path, ext, args):
    y, beats = click_track(120, seconds=6.0, sr=44100)
    stereo = np.stack([y, y * 0.5], axis=1)
    wav = tmp_path / "src.wav"
    sf.write(wav, stereo, 44100)
    path = tmp_path / f"song{ext}"
    if ext != ".wav":
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), *args, str(path)], check=True)
    else:
        path = wav
    f, duration = song_features(path)
    assert abs(duration - 6.0) < 0.05
    found = np.nonzero(f[:, BEAT_CHANNEL])[0] / 30
    assert sum(np.abs(found - b).min() <= 1.5 / 30 for b in beats[1:]) >= len(beats) - 2


def test_silence_works_without_beats(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR * 5, np.float32), SR)
    f, duration = song_features(path)
    assert f.shape == (n_frames(SR * 5), 35) and np.isfinite(f).all()
    assert f[:, BEAT_CHANNEL].sum() == 0 and duration == 5.0


def test_short_clip_gives_its_own_length(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, tone(440, 1.5, 22050), 22050)
    f, duration = song_features(path)
    assert abs(duration - 1.5) < 1e-3 and f.shape[0] == n_frames(int(1.5 * SR))


def test_max_seconds_bounds_decoding(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(440, 10.0, 22050), 22050)
    y = load_audio(path, max_seconds=2.0)
    assert len(y) == 2 * SR


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"this is a text file, not music\n" * 20, "not a readable audio file"),
])
def test_bad_audio_names_the_file(tmp_path, content, message):
    path = tmp_path / "song.mp3"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as e:
        load_audio(path)
    assert "song.mp3" in str(e.value)


def test_truncated_file(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(440, 3.0, 22050), 22050)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[:30])  # header only, no samples
    with pytest.raises(AudioError, match="cut.wav"):
        load_audio(cut)


def test_missing_file():
    with pytest.raises(AudioError, match="no such file"):
        load_audio("/nonexistent/song.mp3")


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_decoding_keeps_the_level_of_any_channel_layout(tmp_path, channels):
    y = tone(440, 1.0, SR)
    path = tmp_path / f"c{channels}.wav"
    sf.write(path, np.repeat(y[:, None], channels, axis=1), SR)
    decoded = load_audio(path)
    assert len(decoded) == len(y)
    np.testing.assert_allclose(decoded, y, atol=2e-3)  # the mean of identical channels is the signal


def test_reference_features_are_the_official_per_slice_ones(tmp_path):
    """Reference mode (issue 15): 4 s slices every 2 s of the 16-bit song at its own rate, whole
    slices only, each slice's features computed alone from its 16-bit WAV read back at 15360 Hz,
    the beat tracker started at librosa's tempo of the slice read at 22,050 Hz."""
    import io

    import librosa

    from audio.music import _features, frames_of_windows, native_sample_rate, reference_song_windows

    sr = 22050
    y, _ = click_track(120, seconds=9.0, sr=sr)
    path = tmp_path / "clicks.wav"
    sf.write(path, y, sr, subtype="PCM_16")
    assert native_sample_rate(path) == sr
    windows, seconds = reference_song_windows(path)
    assert seconds == pytest.approx(9.0)
    assert windows.shape == (3, 120, FEATURE_DIM)            # slices at 0, 2, 4 s; one at 6 s would end past 9 s
    # Slice 1 by hand, as the official code makes it.
    pcm = sf.read(path, dtype="float32")[0][2 * sr:6 * sr]
    wav = io.BytesIO()
    sf.write(wav, pcm, sr, format="WAV", subtype="PCM_16")
    wav.seek(0)
    clip, _ = librosa.load(wav, sr=SR)
    wav.seek(0)
    bpm = float(librosa.feature.tempo(y=librosa.load(wav)[0], sr=22050)[0])
    np.testing.assert_allclose(windows[1], _features(librosa, clip, SR, n_frames(len(clip)), bpm)[:120], atol=1e-5)
    assert windows[:, :, BEAT_CHANNEL].sum() > 0
    track = frames_of_windows(windows)
    assert track.shape == (240, FEATURE_DIM)
    np.testing.assert_array_equal(track[60:120], windows[1, :60])
    np.testing.assert_array_equal(track[180:], windows[2, 60:])
    # A song shorter than one slice is padded with silence to one.
    sf.write(tmp_path / "short.wav", y[:sr], sr, subtype="PCM_16")
    assert reference_song_windows(tmp_path / "short.wav")[0].shape == (1, 120, FEATURE_DIM)


def test_reference_song_features_of_an_mp3_are_those_of_its_16bit_wav(tmp_path):
    """Issue 23: the official pre_music.py's whole-song features. An mp3 gives exactly what its 16-bit
    WAV (the same 16-bit samples at 44.1 kHz) gives, and that is the official recipe by hand: the WAV
    read by librosa at 15360 Hz, features of the whole song, the beat tracker started at librosa's
    tempo of the song read at 22,050 Hz."""
    import librosa

    from audio.music import _features, reference_song_features

    sr = 44100
    y, _ = click_track(128, seconds=7.0, sr=sr)
    y = 0.7 * y / np.abs(y).max() + 0.2 * tone(330, 7.0, sr)
    sf.write(tmp_path / "src.wav", y, sr, subtype="FLOAT")
    mp3, wav = tmp_path / "song.mp3", tmp_path / "song.wav"
    ffmpeg = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i"]
    subprocess.run([*ffmpeg, str(tmp_path / "src.wav"), "-b:a", "128k", str(mp3)], check=True)
    subprocess.run([*ffmpeg, str(mp3), "-c:a", "pcm_s16le", str(wav)], check=True)
    from_mp3, seconds = reference_song_features(mp3)
    from_wav, wav_seconds = reference_song_features(wav)
    np.testing.assert_array_equal(from_mp3, from_wav)
    assert seconds == wav_seconds and abs(seconds - 7.0) < 0.1
    clip, _ = librosa.load(wav, sr=SR)
    bpm = float(librosa.feature.tempo(y=librosa.load(wav, sr=22050)[0], sr=22050)[0])
    assert from_wav.shape == (n_frames(len(clip)), FEATURE_DIM)
    np.testing.assert_array_equal(from_wav, _features(librosa, clip, SR, n_frames(len(clip)), bpm))
    assert from_wav[:, BEAT_CHANNEL].sum() >= 8
    # The same song decoded straight to float (ours) is another song to the features.
    assert np.abs(song_features(mp3)[0][:len(from_mp3)] - from_mp3).max() > 1e-3
