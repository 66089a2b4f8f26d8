"""Evaluation metrics with known answers, evaluate.py and generate_all.py end to end (SPEC §8)."""
import json

import numpy as np
import pytest
import soundfile as sf

import evaluate
import generate_all
from audio.music import BEAT_CHANNEL, FEATURE_DIM
from eval import batch
from eval import features as ft
from eval import metrics as mt
from eval.protocol import CLEAN, REFERENCE

T = 240
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def rest():
    """(55, 3) rest joints of the default body."""
    from body.body_model import BodyModel

    return BodyModel().rest_joints.numpy().astype(np.float64)


def standing(rest, n=T):
    """(n, 22, 3) the rest pose held still."""
    return np.repeat(rest[None, :22], n, axis=0)


# ---------------------------------------------------------------------------------------------
# FID and diversity


def test_fid_of_a_set_against_itself_is_zero_and_a_shift_costs_its_square():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(100, 66)) @ rng.normal(size=(66, 66)) * 0.3
    assert mt.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert mt.frechet_distance(a, a + 2.0) == pytest.approx(66 * 4.0, rel=1e-6)   # ‖Δμ‖², same Σ
    few = a[:6]                                # fewer dances than dimensions: singular covariance
    assert mt.frechet_distance(few, few) == pytest.approx(0, abs=1e-6)
    # Two Gaussians with known covariances: N(0, I) vs N(0, 4I) → tr(I + 4I − 2·2I) = d.
    x = rng.normal(size=(20000, 3))
    assert mt.frechet_distance(x, 2 * x) == pytest.approx(3.0, rel=0.02)


def test_diversity_is_the_mean_pairwise_distance():
    assert mt.diversity([[0, 0], [3, 4]]) == pytest.approx(5.0)
    assert mt.diversity([[0, 0], [3, 4], [6, 8]]) == pytest.approx((5 + 10 + 5) / 3)
    assert np.isnan(mt.diversity([[1, 2]]))


def test_zscoring_uses_ground_truth_statistics_and_guards_constant_channels():
    gt = np.array([[0.0, 1.0], [2.0, 1.0]])      # channel 1 never varies in the ground truth
    pred = np.array([[1.0, 1.5]])
    p, g = mt.zscore(pred, gt, CLEAN)
    np.testing.assert_allclose(g, [[-1, 0], [1, 0]])
    np.testing.assert_allclose(p, [[0, 0.5]])     # σ = 0 → divided by 1
    p_ref, _ = mt.zscore(pred, gt, REFERENCE)
    assert p_ref[0, 1] == pytest.approx(0.5e10)   # the published σ + 1e-10


# ---------------------------------------------------------------------------------------------
# Features


def test_kinetic_features_of_constant_velocity_and_constant_acceleration(rest):
    j = standing(rest)
    t = np.arange(T)
    j[:, 20, 0] += 0.01 * t            # left wrist slides along x at 0.01 m/frame = 0.3 m/s
    j[:, 21, 1] += 0.02 * t            # right wrist rises at 0.6 m/s
    j[:, 15, 2] += 0.5 * 0.001 * t ** 2   # head accelerates along z: 0.001 m/frame² = 0.9 m/s²
    k = ft.kinetic_features(j, 1 / 30).reshape(22, 3)
    assert k[20] == pytest.approx([0.09, 0.0, 0.0], abs=1e-9)
    assert k[21] == pytest.approx([0.0, 0.36, 0.0], abs=1e-9)
    assert k[15, 2] == pytest.approx(0.9, rel=1e-9)
    assert np.all(k[[0, 1, 7, 10]] == 0)        # still joints: no energy
    # Horizontal energy of the accelerating head: the mean of the windowed speeds squared, by hand.
    x = j[:, 15, 2]
    d = np.diff(x)
    v = [np.mean(d[max(i - 2, 1) - 1:min(i + 2, T - 1)]) * 30 for i in range(1, T)]
    assert k[15, 0] == pytest.approx(np.mean(np.square(v)), rel=1e-9)


def test_reference_kinetic_conventions_differ_as_documented(rest):
    j = standing(rest)
    j[:, 20, 0] += 0.01 * np.arange(T)
    clean = ft.kinetic_features(ft.root_relative(j), CLEAN.kinetic_frame_time, CLEAN.acceleration_bug).reshape(22, 3)
    ref = ft.kinetic_features(ft.root_relative(j), REFERENCE.kinetic_frame_time,
                              REFERENCE.acceleration_bug).reshape(22, 3)
    assert ref[20, 0] == pytest.approx(4 * clean[20, 0])          # frame time 1/60: energies ×4
    assert clean[7, 2] == 0                                      # a still ankle does not accelerate …
    p = ft.root_relative(j)[0, 7]                                # … but the precedence bug gives
    assert ref[7, 2] == pytest.approx(np.linalg.norm(p) * (60 - 1) * 60, rel=1e-9)   # ‖p‖(1/dt − 1)/dt


def test_geometric_features_of_simple_poses(rest):
    names = [f"{kind} {'/'.join(j)}" for kind, j, _ in ft.GEOMETRIC_FEATURES]
    idx = {n: i for i, n in enumerate(names)}
    still = ft.geometric_features(standing(rest), rest)
    assert still.shape == (32,) and set(np.unique(still)) <= {0.0, 1.0}
    assert still[idx["fast rwrist"]] == 0 and still[idx["fast root"]] == 0
    assert still[idx["angle relbow/rshoulder/relbow/rwrist"]] == 0      # straight arm: 180°
    assert still[idx["angle rknee/rhip/rknee/rankle"]] == 0             # straight leg
    assert still[idx["angle neck/root/rshoulder/relbow"]] == 1          # T-pose: arm 90° from spine
    assert still[idx["angle neck/root/zero/y_unit"]] == 0               # upright: spine ∥ y
    assert still[idx["nplane zero/y_unit/y_min/rankle"]] == 0           # ankle near the floor
    lying = standing(rest) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float).T   # 90° about x
    assert ft.geometric_features(lying, rest)[idx["angle neck/root/zero/y_unit"]] == 1
    # A wrist moving at 0.3 m/s: below 2.5 humerus lengths per second at the real frame time,
    # above it at the reference scripts' 1/120 s (1.2 m/s).
    hl = ft.body_dimensions(rest)["hl"]
    assert 0.3 < 2.5 * hl < 1.2
    moving = standing(rest)
    moving[:, 21, 2] += 0.01 * np.arange(T)
    assert ft.geometric_features(moving, rest, CLEAN.geometric_frame_time)[idx["fast rwrist"]] == 0
    assert ft.geometric_features(moving, rest, REFERENCE.geometric_frame_time)[idx["fast rwrist"]] == 1


# ---------------------------------------------------------------------------------------------
# Beat alignment


def pulsing(rest, period, n=T):
    """All joints move along x with speed ∝ 1 − cos(2πt/period): still exactly at t = k·period."""
    t = np.arange(n, dtype=float)
    x = 0.05 * (t - period / (2 * np.pi) * np.sin(2 * np.pi * t / period))
    j = standing(rest, n)
    j[..., 0] += x[:, None]
    return j


def test_bas_is_one_on_the_beat_and_drops_when_shifted(rest):
    period = 15                                          # 120 BPM at 30 fps
    j = pulsing(rest, period)
    beats_ = np.arange(period, T - period + 1, period)
    on = mt.bas(j, beats_)
    assert on.bas == pytest.approx(1.0, abs=1e-3)
    assert on.gain > 0.5                                 # far above the shifted-grid chance level
    off = mt.bas(j, beats_ + period / 2)
    assert off.bas < 0.1
    assert mt.bas(j, beats_ + 2).bas < on.bas            # two frames late: lower, still well above off
    assert mt.bas(j, beats_ + 2).bas > off.bas


def test_reference_bas_scores_against_the_whole_song(rest):
    period = 15
    j = pulsing(rest, period)
    song = np.arange(period, 3 * T, period)              # the music goes on after the dance ends
    clean, ref = mt.bas(j, song, CLEAN), mt.bas(j, song, REFERENCE)
    assert clean.bas == pytest.approx(1.0, abs=1e-3)
    assert ref.bas == pytest.approx(clean.bas * np.sum(song < T) / len(song), rel=0.02)
    np.testing.assert_array_equal(mt.segment_beats(song, T, CLEAN), song[song < T])


# ---------------------------------------------------------------------------------------------
# Feet


def test_feet_dragged_along_the_floor_raise_fsr_and_pfc(rest):
    t = np.arange(T)
    sway = 0.3 * np.sin(2 * np.pi * t / 30)              # up to 0.063 m/frame
    planted = standing(rest)
    upper = [0, 3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]
    planted[:, upper, 0] += sway[:, None]                # the body sways, the feet stay put
    dragged = standing(rest)
    dragged[..., 0] += sway[:, None]                     # the whole body, feet included, slides
    still = standing(rest)
    for protocol in (CLEAN, REFERENCE):
        p, d = mt.foot_skating(planted, protocol), mt.foot_skating(dragged, protocol)
        assert p.ratio == 0 and p.contact_frames[0] > 0.9 * T
        assert d.ratio > 0.6 and d.contact_frames == p.contact_frames
    assert mt.pfc(planted) == 0 and mt.pfc(dragged) > 10 * mt.pfc(planted) + 1.0
    assert mt.pfc(still) == 0 and np.isnan(mt.pfc(still, REFERENCE))   # 0 / 0 in the published script
    lifted = standing(rest)
    lifted[:, [7, 10], 1] += 0.2                         # left foot off the floor
    lifted[..., 0] += sway[:, None]
    s = mt.foot_skating(lifted)
    assert s.contact_frames[0] == 0 and np.isnan(s.left) and s.ratio == s.right


def test_pfc_matches_its_definition_by_hand(rest):
    rng = np.random.default_rng(1)
    j = standing(rest, 50) + np.cumsum(rng.normal(scale=0.01, size=(50, 22, 3)), axis=0)
    root = j[:, 0]
    acc = (root[2:] - 2 * root[1:-1] + root[:-2]) * 900
    acc[:, 1] = np.maximum(acc[:, 1], 0)
    a = np.linalg.norm(acc, axis=1)
    a /= a.max()
    speed = lambda k: np.linalg.norm((j[2:, k] - j[1:-1, k])[:, [0, 2]], axis=1)
    expected = np.mean(np.minimum(speed(7), speed(10)) * np.minimum(speed(8), speed(11)) * a) * 1e4
    assert mt.pfc(j) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# evaluate.py end to end


def beat_features(n, period=15, offset=0):
    f = np.zeros((n, FEATURE_DIM), np.float32)
    f[offset::period, BEAT_CHANNEL] = 1
    return f


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Ground truth: three 90-frame pieces of the demo dance; generated: three others, one in .pkl."""
    import pickle

    from motion.formats import load_motion

    root = tmp_path_factory.mktemp("evaluate")
    demo = np.load("assets/motion/demo_dance.npy")
    (root / "gt").mkdir()
    (root / "pred" / "music").mkdir(parents=True)
    for i in range(3):
        np.save(root / "gt" / f"gt{i}.npy", demo[i * 90:i * 90 + 90])
        np.save(root / "pred" / "music" / f"dance{i}.npy", beat_features(120, offset=3 * i))
    np.save(root / "pred" / "dance0.npy", demo[10:100])
    np.save(root / "pred" / "dance1.npy", demo[150:300])
    m = load_motion(root / "gt" / "gt2.npy")
    with open(root / "pred" / "dance2.pkl", "wb") as f:
        pickle.dump({"smpl_poses": m.poses.reshape(len(m), -1), "smpl_trans": m.trans}, f)
    return root


@pytest.mark.slow
def test_evaluate_writes_json_markdown_and_plots(folders, tmp_path, capsys):
    out = tmp_path / "out"
    rc = evaluate.main(["--pred", str(folders / "pred"), "--gt", str(folders / "gt"), "--out", str(out),
                        "--plot_song", "dance1"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "metrics.json").read_text())
    table = result["table"]["generated"]
    assert table["files"] == 3 and table["with_music"] == 3
    for key in ("fid_k", "fid_g", "div_k", "div_g", "fsr", "pfc", "bas", "bas_chance", "bas_gain"):
        assert table[key] is not None and np.isfinite(table[key]), key
    assert result["table"]["ground truth"]["bas"] is None          # no music beside the ground truth
    assert result["protocol"]["name"] == "clean" and result["settings"]["max_frames"] == 1024
    frames = {d["name"]: d["frames"] for d in result["dances"]["generated"]}
    assert frames == {"dance0": 90, "dance1": 150, "dance2": 90}
    md = (out / "metrics.md").read_text()
    assert "| generated | 3 |" in md and "FID_k" in md and "BAS chance" in md
    for png in ("kinetic_features.png", "beats_dance1.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    # The same files again: deterministic. dance2 (.pkl) equals gt2 (.npy) frame for frame.
    again = tmp_path / "again"
    assert evaluate.main(["--pred", str(folders / "pred"), "--gt", str(folders / "gt"), "--out", str(again)]) == 0
    assert json.loads((again / "metrics.json").read_text())["table"] == result["table"]
    # A set against itself: FID ≈ 0.
    assert evaluate.main(["--pred", str(folders / "gt"), "--gt", str(folders / "gt"),
                          "--out", str(tmp_path / "self")]) == 0
    self_table = json.loads((tmp_path / "self" / "metrics.json").read_text())["table"]["generated"]
    assert self_table["fid_k"] == pytest.approx(0, abs=1e-6) and self_table["fid_g"] == pytest.approx(0, abs=1e-6)


def test_evaluate_reference_protocol_and_max_frames(folders, tmp_path):
    out = tmp_path / "ref"
    assert evaluate.main(["--pred", str(folders / "pred"), "--gt", str(folders / "gt"), "--out", str(out),
                          "--protocol", "reference", "--max_frames", "60"]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["protocol"]["kinetic_frame_time"] == pytest.approx(1 / 60)
    assert {d["frames"] for d in result["dances"]["generated"]} == {60}


def test_evaluate_errors_name_the_problem(folders, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert evaluate.main(["--pred", str(empty), "--gt", str(folders / "gt"), "--out", str(tmp_path / "o")]) == 2
    assert f"{empty}: no motion files" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.npy").write_bytes(b"not numpy")
    assert evaluate.main(["--pred", str(bad), "--gt", str(folders / "gt"), "--out", str(tmp_path / "o")]) == 2
    assert "broken.npy" in capsys.readouterr().err
    music = tmp_path / "music"
    music.mkdir()
    np.save(music / "dance0.npy", beat_features(120))
    assert evaluate.main(["--pred", str(folders / "pred"), "--gt", str(folders / "gt"), "--music", str(music),
                          "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no music for" in err and "dance1.npy" in err and "dance0" not in err.split("no music for")[1].split(":")[0]


# ---------------------------------------------------------------------------------------------
# generate_all.py


@pytest.fixture(scope="module")
def songs(tmp_path_factory, click_track):
    """Two short click tracks (2.5 s at 120 BPM, 3 s at 100 BPM)."""
    folder = tmp_path_factory.mktemp("songs")
    for name, seconds, bpm in (("one", 2.5, 120), ("two", 3.0, 100)):
        click_track(folder / f"{name}.wav", seconds, bpm=bpm, first=0.1, tone=0.1)
    return folder


@pytest.mark.slow
def test_generate_all_on_songs_is_resumable_and_feeds_evaluate(checkpoint, songs, tmp_path, capsys):
    out = tmp_path / "gen"
    args = ["--motion_save_dir", str(out), "--save_motions", "--data_dir", str(songs), "--checkpoint", str(checkpoint),
            "--steps", "2", "--seed", "3"]
    assert generate_all.main(args) == 0, capsys.readouterr().err
    assert "2 generated, 0 already done" in capsys.readouterr().out
    one, two = np.load(out / "one.npy"), np.load(out / "two.npy")
    assert one.shape == (75, 319) and two.shape == (90, 319)
    assert np.load(out / "music" / "one.npy").shape == (75, FEATURE_DIM)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [j["name"] for j in manifest["jobs"]] == ["one", "two"] and manifest["settings"]["steps"] == 2
    stamp = (out / "one.npy").stat().st_mtime_ns
    assert generate_all.main(args) == 0
    assert "0 generated, 2 already done" in capsys.readouterr().out
    assert (out / "one.npy").stat().st_mtime_ns == stamp
    # Deterministic: a finished job deleted and made again is the same dance.
    (out / "two.npy").unlink()
    assert generate_all.main(args) == 0
    assert "1 generated, 1 already done" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(out / "two.npy"), two)
    # evaluate.py finds the music generate_all wrote.
    assert evaluate.main(["--pred", str(out), "--gt", str(out), "--out", str(tmp_path / "ev")]) == 0
    table = json.loads((tmp_path / "ev" / "metrics.json").read_text())["table"]["generated"]
    assert table["with_music"] == 2


def test_generate_all_needs_save_motions_and_input(tmp_path, capsys):
    assert generate_all.main(["--motion_save_dir", str(tmp_path / "o"), "--data_dir", str(tmp_path)]) == 2
    assert "--save_motions" in capsys.readouterr().err
    assert generate_all.main(["--motion_save_dir", str(tmp_path / "o"), "--save_motions", "--data_dir",
                              str(tmp_path)]) == 2
    assert f"{tmp_path}: no test slices" in capsys.readouterr().err


def test_jobs_from_test_slices_seeds_and_sharding(tmp_path):
    slices = tmp_path / "slices"
    for sub in ("music_npy", "music_wav", "motion"):
        (slices / sub).mkdir(parents=True)
    rows = ["name,song,start_frame,frames,seconds,wav"]
    for name in ("b_s00000", "a_s00000", "a_s01024"):
        np.save(slices / "music_npy" / f"{name}.npy", beat_features(30))
        sf.write(slices / "music_wav" / f"{name}.wav", np.zeros((15360, 2), np.float32), 15360)
        rows.append(f"{name},{name[0]},0,30,1.0,{name}.wav")
    (slices / "manifest.csv").write_text("\n".join(rows) + "\n")
    jobs = batch.list_jobs(slices, samples_per_song=2, seed=7)
    assert [j.name for j in jobs] == ["a_s00000_k0", "a_s00000_k1", "a_s01024_k0", "a_s01024_k1",
                                      "b_s00000_k0", "b_s00000_k1"]
    assert jobs[0].audio.endswith("music_wav/a_s00000.wav") and jobs[0].music.endswith("music_npy/a_s00000.npy")
    assert len({j.seed for j in jobs}) == 6
    assert batch.list_jobs(slices, 2, 7) == jobs and batch.list_jobs(slices, 2, 8) != jobs
    shards = [batch.shard(jobs, i, 4) for i in range(4)]
    assert sorted(j.name for s in shards for j in s) == sorted(j.name for j in jobs)
    (slices / "music_wav" / "b_s00000.wav").unlink()
    with pytest.raises(batch.JobListError, match="music_wav.*b_s00000"):
        batch.list_jobs(slices)


@pytest.mark.slow
def test_heldout_songs_scores_raw_and_synced_dances(checkpoint, click_track, tmp_path, capsys):
    from eval import heldout_songs

    beats = np.arange(0.25, 3.0, 0.5)
    click_track(tmp_path / "d90_clicks_test.wav", 3.0, tone=0.1)
    (tmp_path / "d90_clicks_test.json").write_text(json.dumps({"beat_times_s": beats.tolist()}))
    out = tmp_path / "heldout.json"
    rc = heldout_songs.main(["--checkpoint", str(checkpoint), "--music_dir", str(tmp_path), "--tracks", "d90",
                             "--seconds", "3", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert set(result["summary"]) == {"raw/annotated", "raw/heard", "synced/annotated", "synced/heard"}
    track = result["tracks"][0]
    assert track["track"] == "d90" and track["frames"] == 90
    for label in ("raw", "synced"):
        for bas_value, chance in track["scores"][label].values():
            assert 0 <= bas_value <= 1 and 0 <= chance <= 1
    assert "mean BAS" in capsys.readouterr().out
    for summary in result["summary"].values():
        assert np.isnan(summary["phase_locking_r"]) or 0 <= summary["phase_locking_r"] <= 1
    # The random-clip baseline: a real clip, as drawn and beat-synced, scored the same way.
    train = tmp_path / "train"
    for sub in ("motion", "music_npy"):
        (train / sub).mkdir(parents=True)
    np.save(train / "motion" / "a.npy", np.load("assets/motion/demo_dance.npy"))
    np.save(train / "music_npy" / "a.npy", np.zeros((300, FEATURE_DIM), np.float32))
    (train / "splits.json").write_text(json.dumps({"train": ["a"], "test": []}))
    rc = heldout_songs.main(["--checkpoint", str(checkpoint), "--music_dir", str(tmp_path), "--tracks", "d90",
                             "--seconds", "3", "--json", str(out), "--baseline", "random_clip",
                             "--train_root", str(train)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["baseline"] == "random_clip" and result["tracks"][0]["frames"] == 90
    assert "random clips" in capsys.readouterr().out
    assert heldout_songs.main(["--music_dir", str(tmp_path), "--tracks", "d91"]) == 1
    assert "no audio file for track d91" in capsys.readouterr().err


def test_phase_locking_finds_where_in_the_beat_the_motion_pauses():
    """A joint swinging with a 60-frame period pauses every 30 frames (frames 15, 45, …); against
    beats at 12, 42, … those pauses fall a tenth of a beat late, every time: R = 1 at +0.1."""
    t = np.arange(300)
    joints = np.zeros((300, 22, 3))
    joints[:, :, 0] = 0.3 * np.sin(2 * np.pi * t / 60)[:, None]
    phases = mt.beat_phases(joints, np.arange(12, 300, 30))
    assert len(phases) >= 8
    np.testing.assert_allclose(phases, 0.1, atol=1e-9)
    r, mean = mt.phase_locking(phases)
    assert r == pytest.approx(1.0) and mean == pytest.approx(0.1)
    r, _ = mt.phase_locking(np.random.default_rng(0).uniform(-0.5, 0.5, 2000))
    assert r < 0.06                                   # unrelated timing: R ≈ 1/√K
    assert np.isnan(mt.phase_locking([])[0])


def test_random_clip_sync_baseline_moves_the_same_clips_onto_the_beat(rest, tmp_path, capsys):
    """eval.baselines random_clip_sync: the clips random_clip draws, re-timed by the product's beat
    sync — same draws and length, different timing, closer to the test music's beats."""
    from sync.beats import body_joints
    from eval import baselines

    demo = np.load("assets/motion/demo_dance.npy")            # (300, 315)
    train, test = tmp_path / "train", tmp_path / "test"
    for root in (train, test):
        (root / "motion").mkdir(parents=True)
        (root / "music_npy").mkdir()
    np.save(train / "motion" / "a.npy", demo)
    np.save(train / "music_npy" / "a.npy", np.zeros((300, FEATURE_DIM), np.float32))
    (train / "splits.json").write_text(json.dumps({"train": ["a"], "test": []}))
    np.save(test / "motion" / "x.npy", demo[:240])
    np.save(test / "music_npy" / "x.npy", beat_features(240, period=16, offset=5))
    for kind in ("random_clip", "random_clip_sync"):
        assert baselines.main([kind, "--test", str(test), "--train_root", str(train), "--out",
                               str(tmp_path / kind), "--seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(" (")[0] == lines[1].split(" (")[0] and "synced" in lines[1]
    plain, synced = np.load(tmp_path / "random_clip" / "x.npy"), np.load(tmp_path / "random_clip_sync" / "x.npy")
    assert plain.shape == synced.shape == (240, 315) and np.abs(plain - synced).max() > 1e-3
    beats = np.arange(5, 240, 16)
    gains = [mt.bas(body_joints(m, rest), beats).gain for m in (plain, synced)]
    assert gains[1] > gains[0]


def test_seam_ratio_sees_joins_between_disagreeing_windows():
    from eval.seams import seam_ratio

    t = np.arange(420)[:, None, None]
    smooth = np.sin(0.1 * t + np.arange(22)[None, :, None] * 0.3) * np.ones((1, 1, 3)) * 0.1
    assert seam_ratio(smooth) == pytest.approx(1.0, abs=0.2)
    # Windows of the same motion, every other one offset by 0.2 m, cross-faded over each overlap
    # as the sampler joins them: the fade edges show.
    offset = np.zeros(420)
    w = np.linspace(0, 1, 60)
    for i, start in enumerate(range(60, 360, 60)):
        a, b = 0.2 * (i % 2), 0.2 * ((i + 1) % 2)
        offset[start:start + 60] = (1 - w) * a + w * b
        offset[start + 60:start + 120] = b
    assert seam_ratio(smooth + offset[:, None, None]) > 2
