"""The FineDance-layout loader, foot contacts, pre_motion and slice_music_motion, on small synthetic
dataset folders written by the tests in exactly the published layout."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from body import rotations
from body.skeleton import JOINT_NAMES, MOTION_DIM, N_JOINTS, N_MOTION_JOINTS, PARENTS
from dataset import finedance as fd
from audio.music import HOP, SAMPLE_RATE, load_audio

REPO = Path(__file__).resolve().parents[1]
J = {n: i for i, n in enumerate(JOINT_NAMES)}


def rest_skeleton() -> torch.Tensor:
    """A simple upright rest skeleton (metres, y up, +x left, +z front); legs exact, the rest
    stacked above their parents."""
    pts = {"pelvis": (0, 0.95, 0), "left_hip": (0.1, 0.9, 0), "right_hip": (-0.1, 0.9, 0),
           "left_knee": (0.1, 0.5, 0), "right_knee": (-0.1, 0.5, 0), "left_ankle": (0.1, 0.08, 0),
           "right_ankle": (-0.1, 0.08, 0), "left_foot": (0.1, 0.02, 0.1), "right_foot": (-0.1, 0.02, 0.1)}
    rest = np.zeros((N_JOINTS, 3))
    for j in range(N_JOINTS):
        name = JOINT_NAMES[j]
        rest[j] = pts[name] if name in pts else rest[PARENTS[j]] + (0, 0.1, 0)
    return torch.tensor(rest, dtype=torch.float32)


REST = rest_skeleton()
IDENTITY_6D = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), N_MOTION_JOINTS)


def moving_motion(n, seed=0):
    """(n, 315): a wandering root and every joint rotating smoothly by up to ~0.6 rad."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    freq, phase = rng.uniform(0.02, 0.08, (1, N_MOTION_JOINTS * 3)), rng.uniform(0, 6.3, (1, N_MOTION_JOINTS * 3))
    aa = 0.6 * np.sin(2 * np.pi * freq * t + phase)
    rot6d = rotations.axis_angle_to_rotation_6d(torch.tensor(aa.reshape(n, N_MOTION_JOINTS, 3), dtype=torch.float32))
    trans = np.cumsum(rng.normal(0, 0.01, (n, 3)), axis=0) + np.array([0.5, -1.2, 2.0])
    return np.concatenate([trans, rot6d.reshape(n, -1).numpy()], axis=1).astype(np.float32)


def still_motion(n):
    return np.concatenate([np.tile([0.3, -1.2, 0.1], (n, 1)), np.tile(IDENTITY_6D, (n, 1))], axis=1).astype(np.float32)


def write_song(root, name, motion, music_frames=None, seed=0):
    (root / "motion").mkdir(parents=True, exist_ok=True)
    (root / "music_npy").mkdir(parents=True, exist_ok=True)
    np.save(root / "motion" / f"{name}.npy", motion)
    n = len(motion) if music_frames is None else music_frames
    np.save(root / "music_npy" / f"{name}.npy", np.random.default_rng(seed).normal(size=(n, 35)).astype(np.float32))


def write_splits(root, train, test):
    (root / "splits.json").write_text(json.dumps({"train": train, "test": test}))


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "fd"
    write_song(root, "a", moving_motion(300, 1))
    write_song(root, "b", moving_motion(250, 2))
    write_song(root, "c", moving_motion(200, 3))
    write_splits(root, ["a", "b"], ["c"])
    return root


# ---------------------------------------------------------------------------------------------
# Foot contacts


def test_contacts_planted_and_swinging_leg():
    """Left hip swings about x (left ankle and foot move), the right leg stands still."""
    n = 60
    theta = 0.3 * np.sin(2 * np.pi * np.arange(n) / 40)
    aa = np.zeros((n, N_MOTION_JOINTS, 3), np.float32)
    aa[:, J["left_hip"], 0] = theta
    motion = np.concatenate([np.zeros((n, 3), np.float32),
                             rotations.axis_angle_to_rotation_6d(torch.from_numpy(aa)).reshape(n, -1).numpy()], axis=1)
    c = fd.foot_contacts(motion, REST)
    assert c.shape == (n, 4) and c.dtype == np.float32
    assert (c[:, 1] == 1).all() and (c[:, 3] == 1).all()               # right ankle, right foot planted
    # Left ankle/foot travel on circles about the hip: chord = 2 r sin(Δθ / 2).
    dtheta = np.abs(np.diff(theta))
    for col, joint in ((0, "left_ankle"), (2, "left_foot")):
        r = np.linalg.norm((REST[J[joint]] - REST[J["left_hip"]]).numpy())
        expected = (2 * r * np.sin(dtheta / 2) < 0.01).astype(np.float32)
        np.testing.assert_array_equal(c[:-1, col], expected)
        assert c[-1, col] == 1                                        # last frame counts as contact
    assert 0 < c[:-1, 0].sum() < n - 1                                # both states occur


def test_contacts_sliding_body():
    motion = still_motion(20)
    motion[:, 0] += 0.02 * np.arange(20)                             # the whole body slides 2 cm/frame
    c = fd.foot_contacts(motion, REST)
    assert (c[:-1] == 0).all() and (c[-1] == 1).all()
    assert (fd.foot_contacts(still_motion(20), REST) == 1).all()


def test_contacts_batched_torch_matches_numpy():
    m = np.stack([moving_motion(50, 4), moving_motion(50, 5)])
    m319 = np.concatenate([np.zeros((2, 50, 4), np.float32), m], axis=-1)
    t = fd.foot_contacts(torch.from_numpy(m319), REST)
    assert torch.is_tensor(t) and t.shape == (2, 50, 4)
    for i in range(2):
        np.testing.assert_array_equal(t[i].numpy(), fd.foot_contacts(m[i], REST))


# ---------------------------------------------------------------------------------------------
# Windows


@pytest.mark.parametrize("stride", [12, 60, 7])
def test_window_count(corpus, stride):
    ds = fd.FineDanceDataset(corpus, "train", stride=stride, min_std=0, rest_joints=REST)
    expected = sum((n - 120) // stride + 1 for n in (300, 250))
    assert len(ds) == expected
    assert [w for w in ds.windows if w[0] == "a"][-1][1] + 120 <= 300


def test_items_shapes_and_relative_translation(corpus):
    ds = fd.FineDanceDataset(corpus, "train", rest_joints=REST, min_std=0)
    raw = np.load(corpus / "motion" / "a.npy")
    music = np.load(corpus / "music_npy" / "a.npy")
    i = ds.windows.index(("a", 36))
    motion, feats, name = ds[i]
    assert name == "a" and motion.dtype == torch.float32 and feats.dtype == torch.float32
    assert motion.shape == (120, MOTION_DIM) and feats.shape == (120, 35)
    np.testing.assert_allclose(motion[0, 4:7].numpy(), 0, atol=1e-7)
    np.testing.assert_allclose(motion[:, 4:7].numpy(), raw[36:156, :3] - raw[36, :3], atol=1e-5)
    np.testing.assert_array_equal(motion[:, 7:].numpy(), raw[36:156, 3:])
    np.testing.assert_array_equal(feats.numpy(), music[36:156])
    np.testing.assert_array_equal(motion[:, :4].numpy(), fd.foot_contacts(raw, REST)[36:156])


def test_uncached_items_equal_cached(corpus):
    cached = fd.FineDanceDataset(corpus, "train", rest_joints=REST, min_std=0, stride=30)
    lazy = fd.FineDanceDataset(corpus, "train", rest_joints=REST, min_std=0, stride=30, cache=False)
    assert cached.windows == lazy.windows and not lazy.songs
    for i in range(len(cached)):
        for a, b in zip(cached[i][:2], lazy[i][:2]):
            torch.testing.assert_close(a, b)


def test_319_files_keep_their_contacts(tmp_path):
    root = tmp_path / "fd"
    m = moving_motion(130)
    contacts = (np.arange(130 * 4).reshape(130, 4) % 3 == 0).astype(np.float32)
    write_song(root, "x", np.concatenate([contacts, m], axis=1))
    write_splits(root, ["x"], [])
    ds = fd.FineDanceDataset(root, "train", min_std=0)                # no rest joints needed
    assert len(ds) == 1
    np.testing.assert_array_equal(ds[0][0][:, :4].numpy(), contacts[:120])


def test_low_motion_windows_dropped(tmp_path):
    root = tmp_path / "fd"
    write_song(root, "still", still_motion(240))
    write_song(root, "moving", moving_motion(240))
    write_splits(root, ["still", "moving"], [])
    ds = fd.FineDanceDataset(root, "train", rest_joints=REST)
    assert {w[0] for w in ds.windows} == {"moving"}
    assert len(ds) == 11 and ds.n_dropped == 11
    assert fd.window_std(fd.with_contacts(moving_motion(120), REST)) > fd.MIN_STD
    assert len(fd.FineDanceDataset(root, "train", rest_joints=REST, min_std=0)) == 22
    # A corpus may carry its own threshold in splits.json; an explicit argument still wins.
    (root / "splits.json").write_text(json.dumps({"train": ["still", "moving"], "test": [], "min_std": 0}))
    assert len(fd.FineDanceDataset(root, "train", rest_joints=REST)) == 22
    assert len(fd.FineDanceDataset(root, "train", rest_joints=REST, min_std=0.07)) == 11


# ---------------------------------------------------------------------------------------------
# Validation


def test_length_mismatch_is_an_error_naming_the_file(tmp_path):
    root = tmp_path / "fd"
    write_song(root, "a", moving_motion(300), music_frames=290)
    write_splits(root, ["a"], [])
    with pytest.raises(fd.DatasetError, match=r"a\.npy.*300 frames.*290"):
        fd.FineDanceDataset(root, rest_joints=REST)


def test_off_by_one_is_trimmed(tmp_path):
    root = tmp_path / "fd"
    write_song(root, "a", moving_motion(240), music_frames=241)
    write_splits(root, ["a"], [])
    ds = fd.FineDanceDataset(root, rest_joints=REST, min_std=0)
    assert ds.frames["a"] == 240
    with pytest.raises(fd.DatasetError):
        fd.FineDanceDataset(root, rest_joints=REST, max_length_mismatch=0)


@pytest.mark.parametrize("bad, match", [
    ("motion_shape", r"motion.*shape \(200, 300\)"),
    ("music_shape", r"music features.*shape \(200, 30\)"),
    ("nan", r"NaN"),
    ("not_npy", r"not a readable \.npy"),
])
def test_malformed_files(tmp_path, bad, match):
    root = tmp_path / "fd"
    write_song(root, "a", moving_motion(200))
    write_splits(root, ["a"], [])
    if bad == "motion_shape":
        np.save(root / "motion" / "a.npy", np.zeros((200, 300), np.float32))
    elif bad == "music_shape":
        np.save(root / "music_npy" / "a.npy", np.zeros((200, 30), np.float32))
    elif bad == "nan":
        m = moving_motion(200)
        m[50, 7] = np.nan
        np.save(root / "motion" / "a.npy", m)
    else:
        (root / "music_npy" / "a.npy").write_bytes(b"not an array")
    with pytest.raises(fd.DatasetError, match=match) as info:
        fd.FineDanceDataset(root, rest_joints=REST)
    assert "a.npy" in str(info.value)


def test_missing_folders_and_files(tmp_path):
    root = tmp_path / "fd"
    with pytest.raises(fd.DatasetError, match="not found"):
        fd.FineDanceDataset(root)
    (root / "motion").mkdir(parents=True)
    with pytest.raises(fd.DatasetError, match="music_npy"):
        fd.FineDanceDataset(root)
    write_song(root, "a", moving_motion(200))
    (root / "music_npy" / "a.npy").unlink()
    write_splits(root, ["a"], [])
    with pytest.raises(fd.DatasetError, match=r"music_npy/a\.npy"):
        fd.FineDanceDataset(root, rest_joints=REST)


def test_split_id_without_files(corpus):
    write_splits(corpus, ["a", "ghost"], ["c"])
    with pytest.raises(fd.DatasetError, match=r"splits\.json.*motion/ghost\.npy"):
        fd.FineDanceDataset(corpus, "train", rest_joints=REST)
    with pytest.raises(fd.DatasetError, match="ghost"):     # the test split is checked too
        fd.split_names(corpus, "test") and fd.split_names(corpus, "train")


def test_splits_json_overrides(corpus):
    assert fd.split_names(corpus, "train") == ["a", "b"]
    assert fd.split_names(corpus, "test") == ["c"]
    assert fd.split_names(corpus, "all") == ["a", "b", "c"]
    with pytest.raises(ValueError, match="split"):
        fd.split_names(corpus, "val")


def test_finedance_genre_split_without_splits_json(tmp_path):
    root = tmp_path / "fd"
    for name in ("001", "002", "063", "116", "130"):
        write_song(root, name, moving_motion(130))
    assert fd.split_names(root, "train") == ["001", "002"]           # 063 is test; 116, 130 ignored
    assert fd.split_names(root, "all") == ["001", "002", "063"]
    assert "130" not in fd.GENRE_TEST or "130" in fd.GENRE_IGNORE
    with pytest.raises(fd.DatasetError, match=r"FineDance@Genre test.*motion/012\.npy"):
        fd.split_names(root, "test")                                  # the other 18 test songs are missing


# ---------------------------------------------------------------------------------------------
# Scripts


def _script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "data" / "code" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pre_motion_converts_315_to_319(corpus, tmp_path):
    pre = _script("pre_motion")
    out = tmp_path / "out"
    counts = pre.convert_folder(corpus / "motion", out, REST, progress=False)
    assert counts == {"converted": 3, "kept": 0}
    a = np.load(out / "a.npy")
    raw = np.load(corpus / "motion" / "a.npy")
    assert a.shape == (300, MOTION_DIM) and a.dtype == np.float32
    np.testing.assert_array_equal(a[:, 4:], raw)
    np.testing.assert_array_equal(a[:, :4], fd.foot_contacts(raw, REST))
    # In place; a second run keeps the (T, 319) files as they are.
    assert pre.convert_folder(corpus / "motion", corpus / "motion", REST, progress=False)["converted"] == 3
    assert pre.convert_folder(corpus / "motion", corpus / "motion", REST, progress=False) == {"converted": 0, "kept": 3}
    assert np.load(corpus / "motion" / "a.npy").shape == (300, MOTION_DIM)


def test_slice_music_motion(tmp_path):
    root, out = tmp_path / "fd", tmp_path / "slices"
    for name, n in (("s1", 750), ("s2", 150), ("s3", 100)):
        write_song(root, name, fd.with_contacts(moving_motion(n), REST))
    write_splits(root, ["s3"], ["s1", "s2"])
    (root / "music_wav").mkdir()
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 750 * HOP).astype(np.float32)
    sf.write(root / "music_wav" / "s1.wav", audio, SAMPLE_RATE, subtype="FLOAT")
    sl = _script("slice_music_motion")
    assert sl.main(["--root", str(root), "--out", str(out), "--length", "300"]) == 0
    names = sorted(p.stem for p in (out / "motion").glob("*.npy"))
    assert names == ["s1_s00000", "s1_s00300", "s1_s00600", "s2_s00000"]   # s1's last 150 frames kept
    m = np.load(out / "motion" / "s1_s00300.npy")
    f = np.load(out / "music_npy" / "s1_s00300.npy")
    assert m.shape == (300, MOTION_DIM) and f.shape == (300, 35)
    np.testing.assert_array_equal(f, np.load(root / "music_npy" / "s1.npy")[300:600])
    y, sr = sf.read(out / "music_wav" / "s1_s00300.wav")
    assert sr == SAMPLE_RATE and y.shape == (300 * HOP, 2)
    decoded = load_audio(root / "music_wav" / "s1.wav")        # what the slicer cuts from
    np.testing.assert_allclose(y.mean(axis=1), decoded[300 * HOP:600 * HOP], atol=1 / 2 ** 14)
    np.testing.assert_allclose(load_audio(out / "music_wav" / "s1_s00300.wav"), y.mean(axis=1), atol=1e-6)
    assert not (out / "music_wav" / "s2_s00000.wav").exists()        # s2 has no audio
    assert (out / "manifest.csv").read_text().count("\n") == 5
    assert np.load(out / "motion" / "s1_s00600.npy").shape == (150, MOTION_DIM)
    assert sl.slice_starts(100, 300, 300, 120) == []
    assert sl.slice_starts(300, 120, 60, 120) == [(0, 120), (60, 120), (120, 120), (180, 120)]


def test_finedance_dancer_split(tmp_path):
    """FineDance@Dancer (issue 15): test 001–013, 124, 126, 128, 130, 132 without 130 (ignored wins);
    the validation songs and 116, 118, 120, 123, 202, 159 ignored; every other song trains."""
    root = tmp_path / "fd"
    names = ("001", "014", "063", "115", "124", "130", "159", "200")
    for name in names:
        write_song(root, name, moving_motion(130))
    assert len([n for n in fd.DANCER_TEST if n not in fd.DANCER_IGNORE]) == 17
    assert fd.split_names(root, "train", "dancer") == ["014", "063", "200"]
    assert fd.split_names(root, "all", "dancer") == ["001", "014", "063", "124", "200"]
    assert fd.split_names(root, "train") == ["001", "014", "115", "124", "159", "200"]   # genre: 063 tests
    with pytest.raises(fd.DatasetError, match=r"FineDance@Dancer test.*motion/002\.npy"):
        fd.split_names(root, "test", "dancer")
    for name in fd.DANCER_TEST:
        write_song(root, name, moving_motion(130))
    test = fd.split_names(root, "test", "dancer")
    assert len(test) == 17 and "130" not in test and test[:2] == ["001", "002"]
    assert fd.FineDanceDataset(root, "train", finedance="dancer", rest_joints=REST, min_std=0).names == \
        ["014", "063", "200"]
    with pytest.raises(ValueError, match="genre"):
        fd.split_names(root, "train", "style")


def test_dancer_split_needs_finedance_itself(corpus):
    with pytest.raises(fd.DatasetError, match="own split"):
        fd.split_names(corpus, "train", "dancer")


def test_split_options_of_the_scripts():
    from args import generate_all_parser, train_parser

    args = train_parser().parse_args(["--split", "dancer"])
    assert (args.finedance_split, args.split) == ("dancer", "train")
    args = train_parser().parse_args(["--split", "test"])                 # the older meaning still works
    assert (args.finedance_split, args.split) == ("genre", "test")
    args = train_parser().parse_args(["--split", "dancer", "--subset", "all"])
    assert (args.finedance_split, args.split) == ("dancer", "all")
    assert generate_all_parser().parse_args(["--motion_save_dir", "x", "--split", "dancer"]).finedance_split == "dancer"
    assert generate_all_parser().parse_args(["--motion_save_dir", "x"]).finedance_split == "genre"
    with pytest.raises(SystemExit):
        generate_all_parser().parse_args(["--motion_save_dir", "x", "--split", "train"])
