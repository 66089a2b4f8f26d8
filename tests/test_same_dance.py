"""A fixed seed gives the same dance as before the re-cut of issue 11.

tests/data/reference_dance.npz holds 3 s of the demo song danced at seed 0 with beat sync
(tests/record_reference_dance.py), recorded by the code before the re-cut and by main's code just
before it was merged into the re-cut:

- ``default_9261d45``: the shipped model at 9261d45 (before the re-cut; no foot locking or retrieval
  existed, so today's dance with both off must equal it);
- ``tiny_249bc73``, ``default_249bc73``: the tiny test model and the shipped model at 249bc73 (main with
  foot locking and retrieval on by default and the beat-phase sizes, the last commit merged into the
  re-cut).
"""
from pathlib import Path

import numpy as np
import pytest

from tests.record_reference_dance import DEFAULT_CHECKPOINT, reference_dance

RECORDED = np.load(Path(__file__).parent / "data" / "reference_dance.npz")


def test_tiny_model_dances_as_recorded(tiny_checkpoint):
    np.testing.assert_allclose(reference_dance(tiny_checkpoint), RECORDED["tiny_249bc73"], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_default_model_dances_as_recorded():
    np.testing.assert_allclose(reference_dance(DEFAULT_CHECKPOINT), RECORDED["default_249bc73"], rtol=0, atol=1e-5)
    before = reference_dance(DEFAULT_CHECKPOINT, foot_lock=False, retrieval=False)
    np.testing.assert_allclose(before, RECORDED["default_9261d45"], rtol=0, atol=1e-5)
