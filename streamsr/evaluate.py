"""Degradation model and bicubic baseline shared by training (train/) and `streamsr eval`.

THE degradation (training and evaluation must use the same one, so it lives here, once):
    HR RGB uint8 -> crop to a multiple of 4 -> float [0, 1] -> torch bicubic resize to (H/4, W/4) with
    antialias=True (a proper anti-aliased bicubic downscale, the kernel MATLAB's imresize uses) ->
    clamp to [0, 1] -> quantise to 8 bits (a real LR frame arrives as uint8).
The bicubic baseline upscales with torch bicubic (align_corners=False, no antialias: upsampling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SCALE = 4


def crop_to_multiple(hr: torch.Tensor, multiple: int = SCALE) -> torch.Tensor:
    """(..., H, W) -> (..., H - H % m, W - W % m): the top-left part, so LR and HR align exactly."""
    h, w = hr.shape[-2:]
    return hr[..., : h - h % multiple, : w - w % multiple]


def degrade(hr: torch.Tensor, *, scale: int = SCALE, quantize: bool = True) -> torch.Tensor:
    """Bicubic (antialiased) downscale by `scale`.

    hr: (3, H, W) or (N, 3, H, W) float in [0, 1], H and W multiples of `scale` (crop_to_multiple first).
    Returns (…, 3, H/scale, W/scale) float32 in [0, 1], rounded to multiples of 1/255 when `quantize`.
    """
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of {scale}; crop_to_multiple first")
    batched = hr.dim() == 4
    x = hr if batched else hr.unsqueeze(0)
    lr = F.interpolate(x.float(), size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)
    lr = lr.clamp_(0.0, 1.0)
    if quantize:
        lr = lr.mul_(255.0).round_().div_(255.0)
    return lr if batched else lr[0]


def bicubic_upscale(lr: torch.Tensor, *, scale: int = SCALE) -> torch.Tensor:
    """The baseline. lr: (3, h, w) or (N, 3, h, w) float in [0, 1] -> (…, 3, scale*h, scale*w) float32 clamped."""
    batched = lr.dim() == 4
    x = lr if batched else lr.unsqueeze(0)
    up = F.interpolate(x.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp_(0.0, 1.0)
    return up if batched else up[0]
