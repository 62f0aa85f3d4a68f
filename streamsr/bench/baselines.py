"""The baselines streamsr is measured against: the per-tile Python loop of common SR scripts, and the model
on the whole frame."""

from __future__ import annotations

import math

import numpy as np
import torch

def tile_loop_upscale(model: torch.nn.Module, image: np.ndarray, *, tile: int, pad: int, scale: int = 4,
                      device: torch.device = torch.device("cpu")) -> np.ndarray:
    """The straightforward per-tile loop of common SR inference scripts (Real-ESRGAN's `tile_process`):
    for each tile, crop it with `pad` pixels of context (clipped at the frame border), run the model on a
    batch of 1, paste the centre into the output. image: (H, W, 3) uint8 RGB -> (sH, sW, 3) uint8."""
    img = torch.from_numpy(np.transpose(image, (2, 0, 1)).astype(np.float32) / 255.0).unsqueeze(0).to(device)
    _, c, h, w = img.shape
    output = img.new_zeros((1, c, h * scale, w * scale))
    for y in range(math.ceil(h / tile)):
        for x in range(math.ceil(w / tile)):
            x0, y0 = x * tile, y * tile
            x1, y1 = min(x0 + tile, w), min(y0 + tile, h)
            px0, py0 = max(x0 - pad, 0), max(y0 - pad, 0)
            px1, py1 = min(x1 + pad, w), min(y1 + pad, h)
            with torch.no_grad():
                out_tile = model(img[:, :, py0:py1, px0:px1])
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            output[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = out_tile[
                :, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ]
    out = output.squeeze(0).float().cpu().clamp_(0, 1).numpy()
    return (np.transpose(out, (1, 2, 0)) * 255.0).round().astype(np.uint8)


class EngineAsModel:
    """Lets `tile_loop_upscale` call an Engine (one tile per call) like a module."""

    def __init__(self, engine: object) -> None:
        self.engine = engine

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.engine.run(x).float()


@torch.inference_mode()
def whole_frame(engine: object, image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> model on the whole (1, 3, H, W) frame -> (4H, 4W, 3) uint8, same conversions as
    the Enhancer."""
    x = torch.from_numpy(image).to(engine.device).permute(2, 0, 1).float().div_(255.0).unsqueeze(0)
    sr = engine.run(x)[0].float().clamp_(0.0, 1.0)
    return np.ascontiguousarray(sr.mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy())


def loop_windows(h: int, w: int, tile: int, pad: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) input windows `tile_loop_upscale` feeds the model (context clipped at borders)."""
    out = []
    for y in range(math.ceil(h / tile)):
        for x in range(math.ceil(w / tile)):
            y0, x0 = y * tile, x * tile
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            out.append((max(y0 - pad, 0), min(y1 + pad, h), max(x0 - pad, 0), min(x1 + pad, w)))
    return out
