"""A fixed seed gives the same dance as before the re-cut of issue 11 (recorded at commit 9261d45).

tests/data/reference_dance.npz holds 3 s of the demo song danced at seed 0 with beat sync, by the tiny
test model and by the shipped default model (tests/record_reference_dance.py wrote it).
"""
from pathlib import Path

import numpy as np
import pytest

from tests.record_reference_dance import DEFAULT_CHECKPOINT, reference_dance

RECORDED = np.load(Path(__file__).parent / "data" / "reference_dance.npz")


def test_tiny_model_dances_as_recorded(tiny_checkpoint):
    np.testing.assert_allclose(reference_dance(tiny_checkpoint), RECORDED["tiny"], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_default_model_dances_as_recorded():
    np.testing.assert_allclose(reference_dance(DEFAULT_CHECKPOINT), RECORDED["default"], rtol=0, atol=1e-5)
