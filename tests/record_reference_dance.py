"""Record (or check) the dances a fixed seed gives, to prove a refactor changes no behaviour.

    python tests/record_reference_dance.py OUT.npz      # record with the code checked out now

Makes 3 s of the demo song at seed 0, 50 steps, guidance 2, with beat sync, once with the tiny test
model (random weights from torch.manual_seed(0), as tests/conftest.py builds it) and once with
assets/checkpoints/default.pt, and saves each (T, 319) vector. tests/test_same_dance.py compares today's dances with the recorded ones.
"""
import sys
from pathlib import Path

import numpy as np
import torch

import pipeline
from model.checkpoint import save_checkpoint
from model.network import ModelConfig, SeqModel

ROOT = Path(__file__).resolve().parent.parent
SONG = ROOT / "assets" / "music" / "soldiers_joy_house.mp3"
DEFAULT_CHECKPOINT = ROOT / "assets" / "checkpoints" / "default.pt"
SECONDS = 3.0


def save_tiny_checkpoint(path) -> Path:
    """The tests' tiny random-weight model (tests/conftest.py's tiny_checkpoint)."""
    torch.manual_seed(0)
    save_checkpoint(path, SeqModel(ModelConfig.tiny()))
    return Path(path)


def reference_dance(checkpoint, **settings) -> np.ndarray:
    """(T, 319) float32: the beat-synced dance for SECONDS of the demo song at seed 0 (``settings``:
    further pipeline.Settings fields, e.g. foot_lock=False)."""
    generator = pipeline.DanceGenerator(checkpoint, device="cpu")
    dance = generator.dance(SONG, pipeline.Settings(duration=SECONDS, seed=0, steps=50, guidance=2.0,
                                                     beat_sync=True, **settings))
    return dance.vector.astype(np.float32)


if __name__ == "__main__":
    import tempfile

    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        tiny = save_tiny_checkpoint(Path(tmp) / "tiny.pt")
        np.savez_compressed(out, tiny=reference_dance(tiny), default=reference_dance(DEFAULT_CHECKPOINT))
    print(f"wrote {out}")
