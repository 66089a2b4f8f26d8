"""Checkpoints in the official FineDance layout, plus the config that built the model.

A file is a dict saved with ``torch.save``:

- ``ema_state_dict``: weights used for inference (``SeqModel.state_dict()`` names);
- ``model_state_dict``: the raw training weights;
- ``optimizer_state_dict``: for resuming (may be None);
- ``normalizer``: None (FineDance trains on unnormalised data);
- ``config``: our ``ModelConfig`` as a plain dict, with the ``DiffusionConfig`` (schedule and
  sampler settings) under its ``diffusion`` key (absent from the official ``train-2000.pt``, which is
  then loaded at the official size; checkpoints saved before the diffusion entry existed, and the
  official one, get ``DiffusionConfig()``, the settings they were trained with).

Loading strips a ``module.`` prefix, accepts files with or without the ``rotary.freqs`` buffers and
raises :class:`CheckpointError` (one line, naming the file) for anything that is not such a file.
"""
from __future__ import annotations

import io
import os
import pickle
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from atomic import atomic_write
from model.config import DiffusionConfig
from model.network import ModelConfig, SeqModel

STATE_KEYS = ("ema_state_dict", "model_state_dict")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")   # DataParallel/accelerate, torch.compile
BUFFER_SUFFIX = "rotary.freqs"                 # non-learned; optional in files


class CheckpointError(ValueError):
    """A file is not a usable SeqModel checkpoint. The message names the file."""


@dataclass
class LoadedCheckpoint:
    """What ``load_checkpoint`` returns.

    model: the rebuilt model (eval mode) with the chosen weights; config: its config; diffusion:
    the schedule and sampler settings saved with it (defaults for older and official files);
    state_key: which entry the weights came from; official: True when the file had no config
    (the released layout); payload: the whole file (optimizer state etc., memory-mapped).
    """

    model: SeqModel
    config: ModelConfig
    state_key: str
    official: bool
    payload: dict
    diffusion: DiffusionConfig = DiffusionConfig()


def _state_dict(obj) -> dict | None:
    """A module's or optimizer's state dict; dicts and None pass through."""
    return obj.state_dict() if hasattr(obj, "state_dict") else obj


def save_checkpoint(path: str | os.PathLike, model: SeqModel, ema: torch.nn.Module | dict | None = None,
                    optimizer: torch.optim.Optimizer | dict | None = None,
                    diffusion: DiffusionConfig | None = None, **extra) -> Path:
    """Write ``model`` (and its EMA copy, default the model itself) atomically to ``path``.

    diffusion: the schedule and sampler settings to keep with it (default ``DiffusionConfig()``).

    extra: further picklable entries (epoch, step, …). Shared tensors are stored once, so a file
    whose EMA is the model itself is the size of one state dict. Returns the path.
    """
    path = Path(path)
    payload = {
        "ema_state_dict": _state_dict(ema) if ema is not None else model.state_dict(),
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": _state_dict(optimizer),
        "normalizer": None,
        "config": config_entry(model.config, diffusion or DiffusionConfig()),
        **extra,
    }
    return atomic_write(path, lambda f: _write(payload, f))


PAUSE_ENV = "DANCE_CHECKPOINT_PAUSE"   # "N:SECONDS": tests pause the Nth save half-way, to kill it there
_saves_in_this_process = 0


def _write(payload: dict, f) -> None:
    """torch.save into ``f``; with PAUSE_ENV set, the chosen save writes half its bytes, says so on
    stderr and sleeps before writing the rest (tests/test_training.py kills the process there)."""
    global _saves_in_this_process
    _saves_in_this_process += 1
    which, _, seconds = os.environ.get(PAUSE_ENV, "").partition(":")
    if which != str(_saves_in_this_process):
        torch.save(payload, f)
        return
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer()
    f.write(data[:len(data) // 2])
    f.flush()
    print(f"[checkpoint] save {which} paused half-way ({PAUSE_ENV})", file=sys.stderr, flush=True)
    time.sleep(float(seconds or 60))
    f.write(data[len(data) // 2:])


def config_entry(config: ModelConfig, diffusion: DiffusionConfig) -> dict:
    """The ``config`` entry of a checkpoint: the network's config with the diffusion's under 'diffusion'."""
    return {**config.to_dict(), "diffusion": diffusion.to_dict()}


def configs_from_entry(entry: dict) -> tuple[ModelConfig, DiffusionConfig]:
    """Inverse of :func:`config_entry`; an entry without 'diffusion' (older files) gets the defaults.
    Raises ``ValueError`` or ``TypeError`` for unknown keys or bad values."""
    entry = dict(entry)
    diffusion = entry.pop("diffusion", None)
    return (ModelConfig.from_dict(entry),
            DiffusionConfig() if diffusion is None else DiffusionConfig.from_dict(dict(diffusion)))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    trusted: bool = False) -> dict:
    """The raw dict of a checkpoint file, memory-mapped where possible.

    trusted=False loads tensors and plain containers only (``weights_only``); pass True only for
    files you trust, to allow arbitrary pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    kwargs = dict(map_location=map_location, weights_only=not trusted)
    try:
        try:
            payload = torch.load(path, mmap=True, **kwargs)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            payload = torch.load(path, **kwargs)   # legacy (non-zip) format
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(f"{path}: holds objects other than tensors and plain containers{what}; "
                                  f"load it with trusted=True only if you trust its source") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({_first_line(err)})") from None
    except Exception as err:   # the unpickler raises many kinds (KeyError, EOFError, BadZipFile, …)
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({_first_line(err)})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: holds a {type(payload).__name__}, not a checkpoint dict")
    return payload


def normalize_state_dict(state: dict) -> dict:
    """Strip wrapper prefixes (``module.``, ``_orig_mod.``) from every key."""
    out = {}
    for key, value in state.items():
        for prefix in WRAPPER_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def _check_compatible(path: Path, state: dict, model: SeqModel, what: str) -> dict:
    """State ``state`` made loadable into ``model``, or a CheckpointError saying why not."""
    expected = model.state_dict()
    state = dict(state)
    for key, value in expected.items():      # non-learned buffers may be absent
        if key.endswith(BUFFER_SUFFIX) and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"{path}: {what}: weight names do not match SeqModel: {'; '.join(parts)}")
    for key, value in expected.items():
        got = state[key]
        if not isinstance(got, Tensor):
            raise CheckpointError(f"{path}: {what}: {key} is a {type(got).__name__}, not a tensor")
        if got.shape != value.shape:
            raise CheckpointError(f"{path}: {what}: {key} has shape {tuple(got.shape)}, "
                                  f"the model expects {tuple(value.shape)}")
    return state


def load_checkpoint(path: str | os.PathLike, use_ema: bool = True, map_location: str | torch.device = "cpu",
                    dtype: torch.dtype | None = None, trusted: bool = False) -> LoadedCheckpoint:
    """Rebuild the model saved in ``path`` with its EMA (default) or raw training weights.

    Files without a ``config`` entry (the official ``train-2000.pt``) are loaded at the official
    size. dtype: cast the model after loading (e.g. torch.bfloat16 for fast CPU sampling).
    """
    path = Path(path)
    payload = read_checkpoint(path, map_location, trusted)
    order = STATE_KEYS if use_ema else STATE_KEYS[::-1]
    state_key = next((k for k in order if isinstance(payload.get(k), dict)), None)
    if state_key is None:
        raise CheckpointError(f"{path}: has no 'ema_state_dict' or 'model_state_dict' "
                              f"(keys: {sorted(map(str, payload))[:6]})")
    raw_config = payload.get("config")
    official = raw_config is None
    if official:
        config, diffusion = ModelConfig.official(), DiffusionConfig()
    else:
        try:
            config, diffusion = configs_from_entry(raw_config)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: invalid 'config' entry ({_first_line(err)})") from None
    model = SeqModel(config)
    what = f"{state_key} (no config, so the official size)" if official else state_key
    state = _check_compatible(path, normalize_state_dict(payload[state_key]), model, what)
    model.load_state_dict(state)
    model.eval()
    if dtype is not None:
        model.to(dtype)
    return LoadedCheckpoint(model=model, config=config, state_key=state_key, official=official,
                            payload=payload, diffusion=diffusion)


def load_model(path: str | os.PathLike, use_ema: bool = True, dtype: torch.dtype | None = None,
               map_location: str | torch.device = "cpu") -> SeqModel:
    """Shortcut: the model of ``load_checkpoint`` (EMA weights by default), in eval mode."""
    return load_checkpoint(path, use_ema=use_ema, map_location=map_location, dtype=dtype).model
