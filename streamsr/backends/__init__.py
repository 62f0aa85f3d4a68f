"""Engine registry and `select_engine`: "auto" resolves to the fastest engine this machine has."""

from __future__ import annotations

import torch

from ..errors import EngineUnavailableError, StreamSRError
from ..model import load_generator
from .base import DTYPES, PRECISIONS, Engine, EngineConfig
from .torch_engine import TorchEngine

__all__ = ["Engine", "EngineConfig", "TorchEngine", "select_engine", "resolve_device", "available_engines"]

ENGINES = ("torch",)
"""Registry names `--engine` accepts besides "auto", in auto-selection priority order."""


def resolve_device(spec: str) -> torch.device:
    """ "auto" -> cuda when available else cpu; an explicit cuda device without CUDA is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise EngineUnavailableError(f"unknown device {spec!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailableError(f"device {spec!r} was asked for but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise EngineUnavailableError(f"device {spec!r} is not supported; use cpu, cuda, cuda:N or auto")
    return device


def default_precision(device: torch.device) -> str:
    """fp16 on CUDA; fp32 on CPU (bf16 is opt-in until its error bound is measured for the shipped weights)."""
    return "fp16" if device.type == "cuda" else "fp32"


def available_engines() -> list[str]:
    """Engine names usable on this machine, in auto-selection priority order."""
    return list(ENGINES)


def select_engine(config: EngineConfig) -> Engine:
    """Build the engine `config` asks for. Raises EngineUnavailableError / WeightsError with one clear line."""
    device = resolve_device(config.device)
    precision = default_precision(device) if config.precision == "auto" else config.precision
    name = "torch" if config.engine == "auto" else config.engine
    if name not in ENGINES:
        raise EngineUnavailableError(f"unknown engine {name!r}; available: auto, {', '.join(ENGINES)}")
    model = load_generator(config.weights, preset=config.preset)
    return TorchEngine(model, device=device, precision=precision, batch=config.batch)
