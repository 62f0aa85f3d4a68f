"""Enhancer: Frame -> 4x Frame. Owns the device side: upload, tiling, batched inference, stitching, download.

Sources and sinks never see tensors; the enhancer never sees where frames come from or go to.
"""

from __future__ import annotations

import numpy as np
import torch

from .backends.base import Engine
from .frame import Frame
from .tiling import Tiler


class Enhancer:
    """Wraps an Engine and a Tiler. `enhance` is not thread-safe: use one Enhancer per thread.

    Timeline stamps it sets: uploaded, tiled, inferred, stitched, downloaded. On CUDA the stamps between
    upload and download are taken when work is enqueued; `downloaded` waits for the result, so
    uploaded->downloaded is the true device latency and the inner split is indicative only.
    """

    def __init__(self, engine: Engine, tiler: Tiler) -> None:
        if tiler.scale != engine.scale:
            raise ValueError(f"Tiler.scale {tiler.scale} != engine scale {engine.scale}")
        self.engine = engine
        self.tiler = tiler
        self._pinned: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def _upload(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 host -> (3, H, W) float32 in [0, 1] on the engine device."""
        host = torch.from_numpy(np.require(image, requirements="W"))  # torch warns on read-only (PIL) arrays
        if self.device.type == "cuda":
            if self._pinned is None or self._pinned.shape != host.shape:
                self._pinned = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
            self._pinned.copy_(host)
            host = self._pinned
        dev = host.to(self.device, non_blocking=True)
        return dev.permute(2, 0, 1).float().div_(255.0)

    def upscale(self, image: torch.Tensor, frame: Frame | None = None) -> torch.Tensor:
        """(3, H, W) float in [0, 1] on the device -> (3, 4H, 4W) float32 clamped to [0, 1]."""
        tiles, grid = self.tiler.split(image)
        if frame is not None:
            frame.timeline.stamp("tiled")
        b = self.engine.batch
        outs = [self.engine.run(tiles[i : i + b]) for i in range(0, tiles.shape[0], b)]
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        if frame is not None:
            frame.timeline.stamp("inferred")
        sr = self.tiler.stitch(out, grid).float().clamp_(0.0, 1.0)
        if frame is not None:
            frame.timeline.stamp("stitched")
        return sr

    @torch.inference_mode()
    def enhance(self, frame: Frame) -> Frame:
        """Return the 4x frame (same seq/pts/timeline object), image (4H, 4W, 3) uint8 RGB."""
        image = self._upload(frame.image)
        frame.timeline.stamp("uploaded")
        sr = self.upscale(image, frame)
        out = sr.mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        frame.timeline.stamp("downloaded")
        return frame.with_image(np.ascontiguousarray(out), scale=self.tiler.scale)
