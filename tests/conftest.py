"""Fixtures and hooks only (the helpers the tests share are in helpers.py): the clip of a test, tiny-preset
generator weights, and the skipping of CUDA / TensorRT tests where those are missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from streamsr.model import Generator, save_weights
from streamsr.testing import make_clip


def pytest_collection_modifyitems(config, items):
    cuda = torch.cuda.is_available()
    try:
        import torch_tensorrt  # noqa: F401

        trt = cuda
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        trt = False
    for item in items:
        if "cuda" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))
        if "tensorrt" in item.keywords and not trt:
            item.add_marker(pytest.mark.skip(reason="needs torch-tensorrt and CUDA"))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", audio=True)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weights of a freshly initialised srgan-x4-tiny generator (seed 0), made once per session."""
    torch.manual_seed(0)
    return save_weights(Generator("srgan-x4-tiny"), tmp_path_factory.mktemp("w") / "tiny.safetensors")
