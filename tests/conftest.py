"""Fixtures and helpers shared by the test modules."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from model.checkpoint import save_checkpoint
from model.network import ModelConfig, SeqModel


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint of a tiny random-weight model: fast generation for end-to-end tests."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, SeqModel(ModelConfig.tiny()))
    return path


@pytest.fixture(scope="session")
def checkpoint(tiny_checkpoint):
    """The checkpoint end-to-end tests generate with: the tiny one."""
    return tiny_checkpoint


def write_click_track(path, seconds: float, bpm: float = 120.0, first: float = 0.25, tone: float = 0.2,
                      chord: bool = False, stereo: bool = False, sr: int = 22050) -> Path:
    """A song with known beats, as a WAV file: a click (300 samples of seeded noise) every beat from
    ``first`` seconds on, over a 220 Hz tone of amplitude ``tone`` (``chord``: plus 277 Hz at 0.1)."""
    t = np.arange(int(seconds * sr)) / sr
    y = tone * np.sin(2 * np.pi * 220 * t)
    if chord:
        y = y + 0.1 * np.sin(2 * np.pi * 277 * t)
    for b in np.arange(first, seconds, 60 / bpm):
        i = int(b * sr)
        y[i:i + 300] += np.random.default_rng(0).normal(size=len(y[i:i + 300])) * 0.5
    sf.write(path, (np.stack([y, y], 1) if stereo else y).astype(np.float32), sr)
    return Path(path)


@pytest.fixture(scope="session")
def click_track():
    """:func:`write_click_track`, for tests and fixtures that write songs."""
    return write_click_track


SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"   # ../shared/data


def needs_shared_data(*folders: str):
    """Decorator for tests that read ../shared/data/FOLDER (CMU mocap, annotated music): marks them
    ``needs_shared_data`` (deselect with ``-m "not needs_shared_data"``) and skips them where a
    folder is missing."""
    missing = [f for f in folders if not (SHARED_DATA / f).is_dir()]

    def mark(test):
        test = pytest.mark.needs_shared_data(test)
        return pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not found under {SHARED_DATA}")(test)

    return mark
