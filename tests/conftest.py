"""Shared fixtures: small real videos made with PyAV (streamsr.testing), and tiny-preset generator weights."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction  # noqa: F401
from pathlib import Path

import numpy as np  # noqa: F401
import pytest
import torch

from streamsr.model import Generator, save_weights
from streamsr.testing import make_clip, synthetic_image  # noqa: F401 - the tests import them from here


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
    torch.manual_seed(0)
    return save_weights(Generator("srgan-x4-tiny"), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m streamsr ARGS` in a subprocess (the real entry point, exit code and stderr)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "streamsr", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
