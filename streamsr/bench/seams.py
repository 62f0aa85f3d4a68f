"""How much halo hides the seams: PSNR between tiled and whole-frame output of the same generator.

The generator's receptive field is large (9x9 head + 2B+1 3x3 convs + 9x9 tail), but its influence decays
fast; a tile only needs enough context that what it cannot see no longer changes the 8-bit output.
`seam_error` measures that on real frames; benchmarks/halo.py tabulates it per halo (the table behind
`tiling.DEFAULT_HALO`, benchmarks/results/halo.md) and tests/test_seams.py holds the shipped weights to it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..enhancer import Enhancer
from ..metrics import psnr_from_mse

SAMPLE_CLIP = Path(__file__).resolve().parents[2] / "samples" / "sample.mp4"
"""The shipped sample clip of a checkout (tuning data: the halo is never chosen on held-out frames)."""


def sample_frames(path: Path = SAMPLE_CLIP, every: int = 5) -> list[torch.Tensor]:
    """(3, H, W) float32 [0, 1] RGB frames of a clip, every `every`-th."""
    import av

    with av.open(str(path)) as c:
        imgs = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % every == 0]
    return [torch.from_numpy(i).permute(2, 0, 1).float() / 255 for i in imgs]


def whole_frame(model: torch.nn.Module, x: torch.Tensor, border: int = 16) -> torch.Tensor:
    """(3, H, W) -> (3, 4H, 4W) in one pass, with the same mirrored border the Tiler uses (so only seams,
    not the zero padding of the convs at the frame edge, can differ from the tiled result)."""
    padded = torch.nn.functional.pad(x[None], (border,) * 4, mode="reflect")
    s = 4 * border
    return model(padded)[0, :, s:-s, s:-s].clamp(0, 1)


def seam_error(enhancer: Enhancer, whole: torch.nn.Module, frames: list[torch.Tensor]) -> tuple[float, int]:
    """Tiled vs whole-frame output in 8-bit RGB: (worst-frame PSNR in dB, inf when identical; largest
    absolute difference in 8-bit levels)."""
    worst, max_diff = math.inf, 0
    with torch.inference_mode():
        for x in frames:
            tiled = (enhancer.upscale(x) * 255).round()
            ref = (whole_frame(whole, x) * 255).round()
            worst = min(worst, psnr_from_mse(float(((tiled - ref) ** 2).mean())))
            max_diff = max(max_diff, int((tiled - ref).abs().max()))
    return worst, max_diff
