"""The Engine protocol: every inference backend (torch eager/compiled, TensorRT, ONNX Runtime...) looks the same
to the Enhancer.

Contract of `Engine.run(tiles)`:
    tiles: (n, 3, w, w) float tensor in [0, 1] on `engine.device`, 1 <= n <= engine.batch, w = the window
           the engine was built for (any w for engines with `fixed_window = None`).
    returns: (n, 3, 4w, 4w) float tensor on `engine.device` (dtype `engine.dtype`), unclamped.
The caller (Enhancer) splits work into chunks of at most `engine.batch` tiles; engines that need a fixed
batch pad internally and slice the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from ..tiling import DEFAULT_HALO, DEFAULT_TILE

PRECISIONS = ("fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@runtime_checkable
class Engine(Protocol):
    name: str
    """Registry name, e.g. "torch", "tensorrt", "onnxruntime"."""
    device: torch.device
    dtype: torch.dtype
    batch: int
    scale: int

    def run(self, tiles: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> str:
        """One line for logs and `streamsr info`: name, device, precision, batch."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """What the user asked for; `select_engine` resolves "auto" fields against the machine.

    engine: registry name or "auto"; device: "cpu", "cuda", "cuda:N" or "auto";
    precision: "fp32" | "fp16" | "bf16" | "auto"; batch: tiles per engine call;
    window: LR tile edge incl. halo the engine will see (compiled engines are built for it);
    weights: safetensors path or None for the shipped default; preset: required preset name or None;
    cache_dir: where compiled engines (.onnx, .engine) are cached; None = `backends.cache.default_engine_dir()`.
    """

    engine: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    batch: int = 16
    window: int = DEFAULT_TILE + 2 * DEFAULT_HALO
    weights: str | None = None
    preset: str | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"EngineConfig.batch must be >= 1, got {self.batch}")
        if self.window < 1:
            raise ValueError(f"EngineConfig.window must be >= 1, got {self.window}")
        if self.precision not in PRECISIONS + ("auto",):
            raise ValueError(f"EngineConfig.precision must be one of {PRECISIONS + ('auto',)}, got {self.precision!r}")
