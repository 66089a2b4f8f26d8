"""Training SeqModel on a FineDance-layout folder with accelerate (one CPU, one GPU, or several).

The loop every entry point shares (``train_seq.py``; tests call :func:`train` directly):
Adan (lr 4e-4, weight decay 0.02), the four diffusion losses (and optionally our speed-profile loss), an EMA copy of the weights, atomic
checkpoints in the official layout plus our config, a CSV log and a progress bar.

Reproducibility: all randomness of step k (diffusion step, noise, condition dropout, dropout) comes
from generators seeded with (seed, k, process), and each epoch's shuffle from (seed, epoch). A run
resumed from a checkpoint therefore continues exactly as the uninterrupted run would have, even
from the middle of an epoch.

EMA: the reference updates with decay 0.9999 every step, which suits its 2000 epochs on 8 GPUs but
would leave a short run's EMA close to the random initialisation. We use the usual warm-up,
decay_k = min(decay, (1 + k) / (10 + k)), which equals 0.9999 after ~90,000 steps.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import io
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from atomic import atomic_write
from model.adan import Adan
from model.checkpoint import CheckpointError, configs_from_entry, read_checkpoint, save_checkpoint
from model.config import DiffusionConfig
from model.diffusion import BEAT_MARGIN, GaussianDiffusion, LossWeights
from model.network import ModelConfig, SeqModel, with_beat_phase, with_cond_frames, with_music_norm, with_style
from dataset.styles import N_STYLES, style_index, style_of_clip

MODEL_SIZES = {"official": ModelConfig.official, "small": ModelConfig.small, "cpu": ModelConfig.cpu,
               "cpu_reference": ModelConfig.cpu_reference,
               "tiny": ModelConfig.tiny}


ADDITIONS = ("music_norm", "cond_frames", "beat_phase", "style")   # ours, in the order they were introduced
DEFAULT_INIT_ADD = ("music_norm", "cond_frames", "beat_phase")   # what --init adds unless told (style: opt-in)
STYLE_DROP = 0.25        # training: probability of the style token being replaced by the null style


@dataclass
class TrainOptions:
    data_dir: str = "data/finedance"
    split: str = "train"                 # which part of the split: train, test or all
    finedance_split: str = "genre"       # which official FineDance split: genre or dancer (--split)
    out_dir: str = "runs/train"
    model_size: str = "small"            # a key of MODEL_SIZES (ignored when resuming)
    batch_size: int = 32
    epochs: int = 200
    lr: float = 4e-4
    warmup_steps: int = 0                # lr ramps linearly from 0 over this many steps (useful with init)
    weight_decay: float = 0.02
    ema_decay: float = 0.9999
    save_every: int = 10                 # epochs between numbered checkpoints
    checkpoint: str | None = None        # resume from this file
    init: str | None = None              # start a new run from this file's weights (fresh optimiser)
    init_add: str = ",".join(DEFAULT_INIT_ADD)  # with init: which of our additions to add where the file lacks them
    seed: int = 0
    stride: int = 12                     # frames between training windows
    min_std: float = 0.07                # drop windows whose mean per-channel std is at most this
    max_steps: int | None = None         # stop (and save) after this many optimiser steps in total
    num_workers: int = 0
    body_model: str | None = None        # rest skeleton for the kinematic losses
    speed_loss: float = 0.0              # weight of the speed-profile loss (ours; 0 = the reference recipe)
    beat_loss: float = 0.0               # weight of the beat loss (ours; 0 = the reference recipe)
    beat_margin: float = BEAT_MARGIN     # the beat contrast it asks for
    style_drop: float = STYLE_DROP       # style models: chance a window's style is dropped to null (so 'any' learns)
    balance_styles: bool = False         # style models: draw windows with every style equally likely
    progress: bool = True


def _seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (stable across runs and machines)."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFF)) * 1099511628211) % (1 << 63)
    return h


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach().to(e.dtype), 1 - decay)


def ema_decay_at(step: int, decay: float) -> float:
    return min(decay, (1 + step) / (10 + step))


def lr_at(step: int, lr: float, warmup_steps: int) -> float:
    """Learning rate of step ``step`` (0-based): linear warm-up to ``lr``, then constant."""
    return lr * min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else lr


def _loader(dataset, opts: TrainOptions, epoch: int, styles: dict[str, int] | None = None) -> DataLoader:
    """The epoch's batches: a seeded shuffle, or with ``styles`` and ``opts.balance_styles`` as many
    windows drawn (with replacement, seeded) with every style equally likely."""
    generator = torch.Generator().manual_seed(_seed(opts.seed, epoch))
    drop_last = len(dataset) >= opts.batch_size
    if styles is None or not opts.balance_styles:
        return DataLoader(dataset, batch_size=opts.batch_size, shuffle=True, drop_last=drop_last,
                          num_workers=opts.num_workers, generator=generator)
    of_window = [styles[name] for name, _ in dataset.windows]
    counts = {s: of_window.count(s) for s in set(of_window)}
    weights = torch.tensor([1.0 / counts[s] for s in of_window], dtype=torch.float64)
    sampler = torch.utils.data.WeightedRandomSampler(weights, len(dataset), replacement=True, generator=generator)
    return DataLoader(dataset, batch_size=opts.batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=opts.num_workers)


def _init_weights(path: str) -> tuple[ModelConfig, dict, dict]:
    """(config, model weights, EMA weights) of a checkpoint to start a new run from: ours, or the
    official layout (official size; its EMA weights serve as both when it has no model weights)."""
    from model.checkpoint import load_checkpoint

    loaded_model = load_checkpoint(path, use_ema=False).model
    loaded_ema = load_checkpoint(path, use_ema=True)
    return loaded_ema.config, loaded_model.state_dict(), loaded_ema.model.state_dict()


def clip_styles(dataset) -> dict[str, int]:
    """Style index (``dataset.styles``) of every song of a dataset, from its label or CMU clip name
    (0, the null style, where unknown)."""
    return {name: style_index(style_of_clip(name, dataset.labels.get(name))) for name in dataset.names}


def _resume_log(log_path: Path, step: int, fields: list[str]) -> None:
    """Ready a resumed run's log: drop the rows of steps after ``step`` (a run killed after its last
    checkpoint logged steps that the resumed run does again, so the resumed log reads like the
    uninterrupted run's), and bring a log written before a column was added (``speed``, ``beat``)
    up to today's ``fields``, the missing values left empty, so every row has the header's columns."""
    with open(log_path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [r for r in rows[1:] if r]
    kept = [r for r in body if int(r[0]) <= step]
    if len(kept) == len(body) and header == fields:
        return
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(fields)
    writer.writerows([dict(zip(header, r)).get(k, "") for k in fields] for r in kept)
    atomic_write(log_path, lambda f: f.write(text.getvalue().encode()))


def train(opts: TrainOptions, log=print) -> Path:
    """Run (or resume) training; returns the path of the last checkpoint written."""
    from accelerate import Accelerator

    from body.body_model import BodyModel
    from dataset.finedance import FineDanceDataset

    accelerator = Accelerator()
    main = accelerator.is_main_process
    # Tiny optimiser statistics otherwise become denormal floats, which slow CPU arithmetic tenfold.
    torch.set_flush_denormal(True)
    out_dir = Path(opts.out_dir)
    if opts.checkpoint and opts.init:
        raise ValueError("give --checkpoint (resume a run) or --init (start from weights), not both")
    resume = read_checkpoint(opts.checkpoint) if opts.checkpoint else None
    if resume is not None and resume.get("config") is None:
        raise CheckpointError(f"{opts.checkpoint}: has no model config; only our own checkpoints can be resumed")
    init = _init_weights(opts.init) if opts.init else None
    diffusion_config = DiffusionConfig()
    if resume:
        config, diffusion_config = configs_from_entry(resume["config"])
    else:
        config = init[0] if init else MODEL_SIZES[opts.model_size]()

    rest_joints = BodyModel(opts.body_model).rest_joints
    dataset = FineDanceDataset(opts.data_dir, opts.split, window=config.window, stride=opts.stride,
                               min_std=opts.min_std, rest_joints=rest_joints, finedance=opts.finedance_split)
    torch.manual_seed(_seed(opts.seed, -1))
    model = SeqModel(config)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = Adan(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    epoch, step, skip = 0, 0, 0
    if resume is not None:
        model.load_state_dict(resume["model_state_dict"])
        ema.load_state_dict(resume["ema_state_dict"])
        if resume.get("optimizer_state_dict"):
            optimizer.load_state_dict(resume["optimizer_state_dict"])
        epoch, step, skip = resume.get("epoch", 0), resume.get("step", 0), resume.get("batch_in_epoch", 0)
    elif init is not None:
        # Upgrade to our design where the checkpoint predates it; each step keeps the function.
        _, weights, ema_weights = init
        add = {a.strip() for a in opts.init_add.split(",") if a.strip()}
        if add - set(ADDITIONS):
            raise ValueError(f"--init_add: unknown {sorted(add - set(ADDITIONS))}; choose from {', '.join(ADDITIONS)}")
        if not config.music_norm and "music_norm" in add:
            mean, std = dataset.music_stats()
            _, weights = with_music_norm(weights, config, mean, std)
            config, ema_weights = with_music_norm(ema_weights, config, mean, std)
        if not config.cond_frames and "cond_frames" in add:
            _, weights = with_cond_frames(weights, config)
            config, ema_weights = with_cond_frames(ema_weights, config)
        if not config.beat_phase and "beat_phase" in add:
            _, weights = with_beat_phase(weights, config)
            config, ema_weights = with_beat_phase(ema_weights, config)
        if not config.n_styles and "style" in add:
            _, weights = with_style(weights, config, N_STYLES)
            config, ema_weights = with_style(ema_weights, config, N_STYLES)
        model, ema = SeqModel(config), SeqModel(config).requires_grad_(False)
        optimizer = Adan(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
        model.load_state_dict(weights)
        ema.load_state_dict(ema_weights)
    elif config.music_norm:
        mean, std = dataset.music_stats()
        for m in (model, ema):
            m.set_music_stats(mean, std)
    diffusion = GaussianDiffusion.from_config(diffusion_config, rest_joints=rest_joints,
                                            loss_weights=LossWeights(speed=opts.speed_loss, beat=opts.beat_loss,
                                                                      beat_margin=opts.beat_margin)).to(accelerator.device)
    ema.to(accelerator.device)
    model, optimizer = accelerator.prepare(model, optimizer)

    n_params = sum(p.numel() for p in accelerator.unwrap_model(model).parameters())
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        log(f"training {n_params:,} parameters on {len(dataset)} windows ({len(dataset.names)} songs, "
            f"{opts.split} split of {opts.data_dir}); {accelerator.num_processes} process(es) on {accelerator.device}")
    styles = clip_styles(dataset) if config.n_styles else None
    if main and styles is not None:
        counts = {}
        for name, _ in dataset.windows:
            counts[styles[name]] = counts.get(styles[name], 0) + 1
        log(f"style token: windows per style index {dict(sorted(counts.items()))}, dropped to null "
            f"with probability {opts.style_drop}{'; styles drawn equally often' if opts.balance_styles else ''}")
    log_path = out_dir / "log.csv"
    fields = ["step", "epoch", "loss", "x0", "velocity", "fk", "foot", "speed", "beat", "lr", "seconds"]
    if main and not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(fields)
    elif main and resume is not None:
        _resume_log(log_path, step, fields)
    if main:    # half-written checkpoints of a run killed while saving (atomic_write's hidden temporaries)
        for stale in out_dir.glob(".*.pt.*.tmp"):
            stale.unlink(missing_ok=True)

    def save(name: str, batch_in_epoch: int) -> Path:
        accelerator.wait_for_everyone()
        path = out_dir / name
        if main:
            save_checkpoint(path, accelerator.unwrap_model(model), ema=ema, optimizer=optimizer,
                            diffusion=diffusion.config, epoch=epoch,
                            step=step, batch_in_epoch=batch_in_epoch, train_options=dataclasses.asdict(opts))
        return path

    last = None
    t0 = time.time()
    bar = tqdm(total=opts.max_steps or None, initial=step, disable=not (main and opts.progress), unit="step")
    model.train()
    while epoch < opts.epochs:
        loader = accelerator.prepare_data_loader(_loader(dataset, opts, epoch, styles))
        if skip:
            loader = accelerator.skip_first_batches(loader, skip)
        for i, (motion, music, names) in enumerate(loader, start=skip):
            torch.manual_seed(_seed(opts.seed, step, accelerator.process_index, 1))  # dropout
            gen = torch.Generator().manual_seed(_seed(opts.seed, step, accelerator.process_index, 2))
            if styles is None:
                losses = diffusion.training_losses(model, motion, music, generator=gen)
            else:
                style = torch.tensor([styles[n] for n in names], dtype=torch.long)
                losses = diffusion.training_losses(model, motion, music, generator=gen, style=style,
                                                   style_drop_prob=opts.style_drop)
            accelerator.backward(losses["loss"])
            lr = lr_at(step, opts.lr, opts.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            update_ema(ema, accelerator.unwrap_model(model), ema_decay_at(step, opts.ema_decay))
            step += 1
            values = {k: accelerator.gather(v.detach()[None]).mean().item() for k, v in losses.items()}
            if main:
                with open(log_path, "a", newline="") as f:
                    csv.writer(f).writerow([step, epoch] + [f"{values[k]:.6g}" for k in fields[2:-2]]
                                           + [f"{lr:.6g}", f"{time.time() - t0:.1f}"])
                bar.set_postfix(epoch=epoch, loss=f"{values['loss']:.4f}")
                bar.update()
            if opts.max_steps is not None and step >= opts.max_steps:
                last = save("latest.pt", i + 1)
                bar.close()
                return last
        skip = 0
        epoch += 1
        if epoch % opts.save_every == 0 or epoch == opts.epochs:
            last = save(f"train-{epoch}.pt", 0)
            save("latest.pt", 0)
    bar.close()
    return last if last is not None else save("latest.pt", 0)
