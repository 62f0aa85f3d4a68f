"""Enhancer: Frame -> 4x Frame. Owns the device side: upload, tiling, batched inference, stitching, download.

Sources and sinks never see tensors; the enhancer never sees where frames come from or go to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .backends import EngineConfig, select_engine
from .backends.base import Engine
from .errors import InputError
from .frame import Frame
from .tiling import DEFAULT_HALO, DEFAULT_TILE, Tiler


class Enhancer:
    """Wraps an Engine and a Tiler. `enhance` is not thread-safe: use one Enhancer per thread.

    Timeline stamps it sets: uploaded, tiled, inferred, stitched, downloaded. On CUDA the stamps between
    upload and download are taken when work is enqueued; `downloaded` waits for the result, so
    uploaded->downloaded is the true device latency and the inner split is indicative only.
    """

    def __init__(self, engine: Engine, tiler: Tiler) -> None:
        """Raises InputError (one line) when the engine cannot run this tiler's tiles: another scale, or a
        fixed-window engine built for another window than `tiler.window`."""
        if tiler.scale != engine.scale:
            raise InputError(f"Tiler.scale {tiler.scale} != engine scale {engine.scale}")
        if engine.fixed_window is not None and engine.fixed_window != tiler.window:
            raise InputError(
                f"engine {engine.name!r} was built for {engine.fixed_window}x{engine.fixed_window} windows but "
                f"the Tiler cuts {tiler.window}x{tiler.window} (tile {tiler.tile} + 2 x halo {tiler.halo}); "
                f"build the engine with window={tiler.window} (Enhancer.build does)"
            )
        self.engine = engine
        self.tiler = tiler
        self._pinned: torch.Tensor | None = None

    @classmethod
    def build(
        cls,
        *,
        engine: str = "auto",
        device: str = "auto",
        precision: str = "auto",
        batch: int = 16,
        tile: int = DEFAULT_TILE,
        halo: int = DEFAULT_HALO,
        weights: str | Path | None = None,
        preset: str | None = None,
        cache_dir: str | Path | None = None,
    ) -> "Enhancer":
        """Select and build the engine (see `backends.select_engine` and EngineConfig for the arguments),
        load the weights (None: the shipped ones), and wrap it with a Tiler(tile, halo). The engine is built
        for the Tiler's window, so the two cannot disagree. Raises EngineUnavailableError / WeightsError
        (one line); a compiled engine's first build takes seconds to minutes (then it is cached)."""
        tiler = Tiler(tile=tile, halo=halo)
        config = EngineConfig(
            engine=engine, device=device, precision=precision, batch=batch, window=tiler.window,
            weights=str(weights) if weights is not None else None, preset=preset,
            cache_dir=str(cache_dir) if cache_dir is not None else None,
        )
        return cls(select_engine(config), tiler)

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
