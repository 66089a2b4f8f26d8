"""generate_dance.py and pipeline.py end to end with a small random-weight checkpoint."""
import numpy as np
import pytest
import soundfile as sf

import generate_dance
import pipeline
from tests.media import probe


@pytest.fixture(scope="module")
def song(tmp_path_factory, click_track):
    """3.2 s of clicks at 120 BPM over a chord, as a stereo WAV."""
    return click_track(tmp_path_factory.mktemp("songs") / "clicks.wav", 3.2, chord=True, stereo=True)


@pytest.mark.slow
def test_same_seed_same_dance_and_exact_length(checkpoint, song):
    gen = pipeline.DanceGenerator(checkpoint)
    a = gen.dance(song, pipeline.Settings(steps=4, seed=7))
    b = gen.dance(song, pipeline.Settings(steps=4, seed=7))
    c = gen.dance(song, pipeline.Settings(steps=4, seed=8))
    assert a.vector.shape == (96, 319)  # the whole 3.2 s song (shorter than the 30 s default)
    np.testing.assert_array_equal(a.vector, b.vector)
    assert not np.array_equal(a.vector, c.vector)
    short = gen.dance(song, pipeline.Settings(steps=4, duration=1.5))
    assert short.vector.shape == (45, 319)


@pytest.mark.slow
def test_beat_sync_retimes_the_sampled_dance(checkpoint, song):
    from sync.beats import music_beats_from_features
    from audio.music import song_features
    from sync.time_warp import SYNC_MAX_OFFSET, sync_to_beats

    gen = pipeline.DanceGenerator(checkpoint)
    raw = gen.dance(song, pipeline.Settings(steps=3, beat_sync=False, foot_lock=False))
    synced = gen.dance(song, pipeline.Settings(steps=3, foot_lock=False))
    assert raw.beat_sync is None and "beat_sync" not in raw.timings and "beat_sync" in synced.timings
    features, _ = song_features(song)
    beats = music_beats_from_features(features[:len(raw.vector)])
    assert len(beats) >= 4                                   # the clicks are found
    expected = sync_to_beats(raw.vector, beats, gen.rest_joints)
    np.testing.assert_array_equal(synced.vector, expected.vector)
    assert synced.vector.shape == raw.vector.shape and synced.beat_sync.max_shift <= SYNC_MAX_OFFSET + 5


@pytest.mark.slow
def test_cli_writes_video_with_audio_and_motion(checkpoint, song, tmp_path, capsys):
    rc = generate_dance.main([str(song), "--checkpoint", str(checkpoint), "--steps", "3", "--duration", "full",
                              "--out_dir", str(tmp_path), "--save_motion", "--mode", "skeleton"])
    assert rc == 0, capsys.readouterr().err
    video = tmp_path / "clicks_dance.mp4"
    info = probe(video)
    assert (info["width"], info["height"], info["fps"], info["frames"]) == (1200, 1200, 30, 96)
    assert info["audio"] and abs(info["audio_duration"] - 3.2) < 0.1
    assert np.load(tmp_path / "clicks_dance.npy").shape == (96, 319)
    assert np.load(tmp_path / "clicks_dance.npz")["poses"].shape == (96, 165)
    out = capsys.readouterr().out
    assert "sampling" in out and "render" in out and "total" in out


@pytest.mark.slow
def test_output_option_and_existing_file(checkpoint, song, tmp_path, capsys):
    target = tmp_path / "mine.mp4"
    target.write_bytes(b"keep me")
    args = [str(song), "--checkpoint", str(checkpoint), "--steps", "2", "--duration", "1", "--output", str(target),
            "--mode", "skeleton"]
    assert generate_dance.main(args) == 1
    assert "--overwrite" in capsys.readouterr().err and target.read_bytes() == b"keep me"
    assert generate_dance.main(args + ["--overwrite"]) == 0
    assert probe(target)["frames"] == 30


def missing(d):
    return d / "missing.mp3"


def text_file(d):
    (d / "notes.mp3").write_text("not audio at all")
    return d / "notes.mp3"


def half_second(d):
    sf.write(d / "blip.wav", np.zeros(11025, np.float32), 22050)
    return d / "blip.wav"


@pytest.mark.parametrize("make, message", [
    (missing, "no such file"), (text_file, "not a readable audio file"), (half_second, "at least 1 s"),
])
def test_bad_songs_fail_cleanly(checkpoint, tmp_path, capsys, make, message):
    song = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out"
    assert generate_dance.main([str(song), "--checkpoint", str(checkpoint), "--steps", "2",
                                "--out_dir", str(out), "--mode", "skeleton"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1 and message in err[0] and song.name in err[0]
    assert not out.exists() or list(out.iterdir()) == []          # no partial output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "out") == before  # inputs untouched


def test_bad_checkpoint_and_unwritable_folder(song, tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_text("hello")
    assert generate_dance.main([str(song), "--checkpoint", str(bad), "--out_dir", str(tmp_path / "o")]) == 1
    assert "model.pt" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert generate_dance.main([str(song), "--out_dir", str(blocker / "sub")]) == 1
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.slow
def test_several_songs_in_one_call(checkpoint, song, tmp_path):
    other = tmp_path / "again.wav"
    other.write_bytes(song.read_bytes())
    assert generate_dance.main([str(song), str(other), "--checkpoint", str(checkpoint), "--steps", "2",
                                "--duration", "1", "--out_dir", str(tmp_path / "v"), "--mode", "skeleton"]) == 0
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["again_dance.mp4", "clicks_dance.mp4"]


@pytest.mark.slow
def test_the_shipped_default_model_is_used_without_a_checkpoint(song):
    gen = pipeline.DanceGenerator()
    assert gen.checkpoint == pipeline.DEFAULT_CHECKPOINT and not gen.official
    assert gen.n_params < 15_000_000  # sized for CPUs
    dance = gen.dance(song, pipeline.Settings(steps=2, duration=1.0))
    assert dance.vector.shape == (30, 319) and np.isfinite(dance.vector).all()


def test_the_checkpoint_s_sampler_settings_are_the_defaults(tmp_path, song):
    import torch

    from model.checkpoint import save_checkpoint
    from model.config import DiffusionConfig
    from model.network import ModelConfig, SeqModel

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "steps3.pt", SeqModel(ModelConfig.tiny()),
                           diffusion=DiffusionConfig(sample_steps=3, guidance=1.5))
    gen = pipeline.DanceGenerator(path, device="cpu")
    seen = []
    dance = gen.dance(song, pipeline.Settings(duration=1.0, beat_sync=False),
                      progress=lambda stage, done, total: seen.append((stage, total)))
    assert (dance.settings.steps, dance.settings.guidance) == (3, 1.5) and ("sampling", 3) in seen
    assert gen.dance(song, pipeline.Settings(duration=1.0, steps=2, beat_sync=False)).settings.steps == 2


def test_a_bad_checkpoint_is_a_generation_error(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(pipeline.GenerationError, match="notes.pt: "):
        pipeline.DanceGenerator(bad, device="cpu")



def test_reference_mode_dances_the_official_way(checkpoint, song):
    """--reference: per-slice features, the reference sampler, none of our additions."""
    from args import generate_parser

    settings = pipeline.settings_from_args(generate_parser().parse_args([str(song), "--reference"]))
    assert settings.reference
    gen = pipeline.DanceGenerator(checkpoint, device="cpu")
    dance = gen.dance(song, pipeline.Settings(steps=3, seed=1, reference=True))
    assert dance.settings.reference and not (dance.settings.beat_sync or dance.settings.foot_lock
                                             or dance.settings.retrieval)
    assert dance.beat_sync is None and dance.foot_lock is None and dance.retrieved == ()
    assert dance.vector.shape == (96, 319) and np.isfinite(dance.vector).all()     # one padded 4 s slice
    ours = gen.dance(song, pipeline.Settings(steps=3, seed=1, beat_sync=False, foot_lock=False, retrieval=False))
    assert not np.allclose(dance.vector, ours.vector)
