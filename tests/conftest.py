"""Fixtures shared by the test modules."""
import pytest
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
