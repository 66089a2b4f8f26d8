"""train_seq.py: the loss goes down on a handful of windows, and resuming is exact."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import train_seq
from body import rotations as R
from model.adan import Adan
from model.checkpoint import PAUSE_ENV, load_checkpoint
from model.training import TrainOptions, train


def smooth_song(n, seed):
    """(n, 315) motion with smooth joint rotations and (n, 35) music, in the FineDance layout."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None, None] / 30
    freq, phase = rng.uniform(0.5, 2, (1, 52, 3)), rng.uniform(0, 6, (1, 52, 3))
    aa = 0.4 * np.sin(2 * np.pi * freq * t + phase)
    rot6d = R.axis_angle_to_rotation_6d(torch.from_numpy(aa)).numpy().reshape(n, -1)
    trans = np.stack([0.2 * np.sin(t[:, 0, 0]), 0.9 + 0.05 * np.sin(4 * t[:, 0, 0]), 0.1 * t[:, 0, 0]], 1)
    music = rng.normal(size=(n, 35))
    return np.concatenate([trans, rot6d], 1).astype(np.float32), music.astype(np.float32)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("finedance")
    (root / "motion").mkdir()
    (root / "music_npy").mkdir()
    for i, name in enumerate(["001", "002"]):
        motion, music = smooth_song(160, i)
        np.save(root / "motion" / f"{name}.npy", motion)
        np.save(root / "music_npy" / f"{name}.npy", music)
    (root / "splits.json").write_text('{"train": ["001", "002"], "test": []}')
    return root


def options(data_dir, out, **kw):
    base = dict(data_dir=str(data_dir), out_dir=str(out), model_size="tiny", batch_size=4, stride=20,
                epochs=100, progress=False, seed=3)
    base.update(kw)
    return TrainOptions(**base)


def logged_losses(out):
    with open(out / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@pytest.mark.slow
def test_loss_goes_down(data_dir, tmp_path):
    train(options(data_dir, tmp_path, max_steps=60, lr=2e-3), log=lambda *_: None)
    losses = logged_losses(tmp_path)
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])


def test_learning_rate_warm_up_is_logged():
    from model.training import lr_at

    assert [lr_at(k, 1e-3, 4) for k in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert lr_at(0, 1e-3, 0) == 1e-3


def test_a_resumed_log_from_before_a_new_column_keeps_its_columns(tmp_path):
    """Resuming a run whose log predates the speed and beat columns: the header gains them, old rows
    get them empty (so lr and seconds stay in their columns), and steps after the checkpoint go."""
    from model.training import _resume_log

    log = tmp_path / "log.csv"
    old = ["step", "epoch", "loss", "x0", "velocity", "fk", "foot", "lr", "seconds"]
    log.write_text("\n".join([",".join(old)] + [f"{k},0,0.5,0.1,0.01,0.2,0.001,0.0006,{k}.5" for k in (1, 2, 3)]) + "\n")
    fields = ["step", "epoch", "loss", "x0", "velocity", "fk", "foot", "speed", "beat", "lr", "seconds"]
    _resume_log(log, 2, fields)
    rows = list(csv.DictReader(log.open()))
    assert list(rows[0]) == fields and [r["step"] for r in rows] == ["1", "2"]
    assert rows[1]["lr"] == "0.0006" and rows[1]["seconds"] == "2.5" and rows[1]["beat"] == ""
    before = log.read_text()
    _resume_log(log, 2, fields)                     # already current: left as it is
    assert log.read_text() == before


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_run(data_dir, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    # 10 windows, batch 4: two batches per epoch, so stopping after step 3 stops mid-epoch.
    train(options(data_dir, full, max_steps=7, stride=10, warmup_steps=5), log=lambda *_: None)
    first = train(options(data_dir, part, max_steps=3, stride=10, warmup_steps=5), log=lambda *_: None)
    assert torch.load(first, weights_only=True)["batch_in_epoch"] == 1
    train(options(data_dir, part, max_steps=7, stride=10, warmup_steps=5, checkpoint=str(first)), log=lambda *_: None)
    a, b = logged_losses(full), logged_losses(part)
    assert len(a) == len(b) == 7
    np.testing.assert_allclose(b, a, rtol=1e-5)
    ckpt_a = load_checkpoint(full / "latest.pt")
    ckpt_b = load_checkpoint(part / "latest.pt")
    for (k, va), vb in zip(ckpt_a.model.state_dict().items(), ckpt_b.model.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)
    assert ckpt_a.payload["step"] == 7 and ckpt_a.config.latent_dim == 32


@pytest.mark.slow
def test_a_run_killed_while_saving_resumes_exactly(data_dir, tmp_path):
    """kill -9 of a real training process half-way through writing a checkpoint: the previous
    checkpoint is still there and loads, and the run resumed from it ends exactly as an
    uninterrupted one (same weights, same log)."""
    killed, full = tmp_path / "killed", tmp_path / "full"
    # 10 windows, batch 4: two steps an epoch. Saves: train-1.pt, latest.pt (epoch 1), train-2.pt,
    # then latest.pt of epoch 2, the 4th, is killed half-written.
    kw = dict(stride=10, epochs=4, save_every=1, warmup_steps=5)
    cli = ["--data_dir", str(data_dir), "--out_dir", str(killed), "--model_size", "tiny", "--batch_size", "4",
           "--seed", "3", "--stride", "10", "--epochs", "4", "--save_every", "1", "--warmup_steps", "5"]
    env = {**os.environ, PAUSE_ENV: "4:120", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([sys.executable, "train_seq.py", *cli], cwd=Path(train_seq.__file__).parent, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        said = []
        for line in proc.stderr:
            said.append(line)
            if "paused half-way" in line:
                break
        else:
            pytest.fail("training ended without pausing in its 4th save: " + "".join(said[-5:]))
        half = list(killed.glob(".latest.pt.*.tmp"))
        assert len(half) == 1 and half[0].stat().st_size > 0      # caught in the middle of writing
        proc.kill()
        proc.wait(30)
    finally:
        proc.kill()
    left = load_checkpoint(killed / "latest.pt")                   # the previous one, whole
    assert (left.payload["epoch"], left.payload["step"]) == (1, 2)
    assert len(logged_losses(killed)) == 4                           # it had logged steps 3 and 4 too

    train(options(data_dir, killed, checkpoint=str(killed / "latest.pt"), **kw), log=lambda *_: None)
    train(options(data_dir, full, **kw), log=lambda *_: None)
    assert not list(killed.glob(".*.tmp"))                           # the half-written file is gone
    np.testing.assert_allclose(logged_losses(killed), logged_losses(full), rtol=1e-5)
    assert len(logged_losses(full)) == 8
    a, b = load_checkpoint(full / "latest.pt"), load_checkpoint(killed / "latest.pt")
    assert a.payload["step"] == b.payload["step"] == 8
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(vb, va, msg=k)


@pytest.mark.slow
def test_cli_writes_checkpoints_in_the_official_layout(data_dir, tmp_path):
    out = tmp_path / "cli"
    assert train_seq.main(["--data_dir", str(data_dir), "--out_dir", str(out), "--model_size", "tiny",
                           "--batch_size", "4", "--stride", "40", "--epochs", "2", "--save_every", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["latest.pt", "log.csv", "train-1.pt", "train-2.pt"]
    payload = torch.load(out / "train-2.pt", weights_only=True)
    assert {"ema_state_dict", "model_state_dict", "optimizer_state_dict", "normalizer", "config"} <= set(payload)
    assert payload["normalizer"] is None and payload["epoch"] == 2


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert train_seq.main(["--data_dir", str(tmp_path / "none"), "--out_dir", str(tmp_path / "o")]) == 1
    assert "none" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    assert train_seq.main(["--checkpoint", str(bad), "--out_dir", str(tmp_path / "o")]) == 1
    assert "bad.pt" in capsys.readouterr().err


def test_adan_minimises_a_quadratic():
    x = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    opt = Adan([x], lr=0.05, weight_decay=0.0)
    for _ in range(400):
        opt.zero_grad()
        ((x - torch.tensor([1.0, 0.5])) ** 2).sum().backward()
        opt.step()
    torch.testing.assert_close(x.detach(), torch.tensor([1.0, 0.5]), atol=1e-2, rtol=0)


@pytest.mark.slow
def test_music_normalisation_uses_the_training_set_statistics(data_dir, tmp_path):
    from dataset.finedance import FineDanceDataset

    path = train(options(data_dir, tmp_path, max_steps=2), log=lambda *_: None)
    model = load_checkpoint(path).model
    assert model.config.music_norm
    music = np.concatenate([np.load(data_dir / "music_npy" / f"{n}.npy") for n in ("001", "002")])
    np.testing.assert_allclose(model.music_mean.numpy(), music.mean(0), atol=1e-5)
    np.testing.assert_allclose(model.music_std.numpy(), music.std(0), rtol=1e-4)
    mean, std = FineDanceDataset(data_dir, min_std=0).music_stats()
    np.testing.assert_allclose(mean, music.mean(0), atol=1e-5)


@pytest.mark.slow
def test_init_upgrades_a_reference_design_model_without_changing_its_function(data_dir, tmp_path):
    import dataclasses

    from model.checkpoint import save_checkpoint
    from model.network import SeqModel
    from model.training import MODEL_SIZES

    torch.manual_seed(0)
    raw = SeqModel(dataclasses.replace(MODEL_SIZES["tiny"](), music_norm=False, cond_frames=False,
                                                           beat_phase=False)).eval()
    src = save_checkpoint(tmp_path / "raw.pt", raw, ema=raw)
    path = train(options(data_dir, tmp_path / "run", init=str(src), max_steps=1, lr=1e-12), log=lambda *_: None)
    started = load_checkpoint(path).model            # lr ≈ 0: the folded initial weights
    assert started.config.music_norm and started.config.cond_frames and started.config.beat_phase
    only = train(options(data_dir, tmp_path / "only", init=str(src), init_add="music_norm", max_steps=1),
                 log=lambda *_: None)
    cfg = load_checkpoint(only).config                  # --init_add: just the named addition
    assert cfg.music_norm and not cfg.cond_frames and not cfg.beat_phase
    with pytest.raises(ValueError, match="init_add"):
        train(options(data_dir, tmp_path / "bad", init=str(src), init_add="wings"), log=lambda *_: None)
    assert float(started.music_std.min()) > 0.5                     # the songs' music is ~N(0, 1)
    x, music = torch.randn(2, 120, 319), 5 * torch.randn(2, 120, 35)
    t = torch.tensor([10, 700])
    keep = torch.ones(2, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(started(x, music, t, keep=keep), raw(x, music, t, keep=keep), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError):
        train(options(data_dir, tmp_path / "both", init=str(src), checkpoint=str(src)), log=lambda *_: None)


def test_package_model_keeps_the_weights_and_sets_the_sampler_guidance(tiny_checkpoint, tmp_path):
    """data/code/package_model.py: the packaged model computes what the trained one does, samples with
    the guidance it was given (the run's own without --guidance), and gets a card."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("package_model", Path(__file__).parent.parent / "data" / "code" / "package_model.py")
    package_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package_model)
    out = tmp_path / "packaged.pt"
    package_model.main(["--checkpoint", str(tiny_checkpoint), "--out", str(out), "--guidance", "3"])
    packaged, trained = load_checkpoint(out), load_checkpoint(tiny_checkpoint)
    assert packaged.diffusion.guidance == 3.0 and trained.diffusion.guidance == 2.0
    for (k, a), b in zip(trained.model.state_dict().items(), packaged.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    import json
    assert json.loads(out.with_suffix(".json").read_text())["diffusion"]["guidance"] == 3.0
    package_model.main(["--checkpoint", str(tiny_checkpoint), "--out", str(out)])
    assert load_checkpoint(out).diffusion.guidance == 2.0
