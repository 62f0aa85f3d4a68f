"""Torch eager engine: the reference every other engine is checked against, and the portable fallback.

On CUDA it runs fp16 + channels_last by default; on CPU channels_last with fp32 or bf16 (autocast-free: the
model itself is cast, so there is no per-call dispatch overhead).
"""

from __future__ import annotations

import torch

from ..model import Generator
from .base import DTYPES, write_out


class TorchEngine:
    """Runs a Generator (normally in `fold_for_inference` form) with torch eager.

    See `backends.base` for the run() contract."""

    name = "torch"
    fixed_window = None

    def __init__(
        self,
        model: Generator,
        *,
        device: torch.device,
        precision: str = "fp32",
        batch: int = 16,
        channels_last: bool = True,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = DTYPES[precision]
        self.precision = precision
        self.batch = batch
        self.scale = model.preset.scale
        self.channels_last = channels_last
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(device=self.device, dtype=self.dtype, memory_format=memory_format)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.inference_mode()
    def run(self, tiles: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        x = tiles.to(device=self.device, dtype=self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return write_out(self.model(x), out)

    def describe(self) -> str:
        layout = "channels_last" if self.channels_last else "nchw"
        return f"torch eager on {self.device} ({self.precision}, {layout}, batch {self.batch})"
