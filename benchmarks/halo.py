"""How much halo hides the seams: PSNR between tiled and whole-frame output of the same generator.

The generator's receptive field is large (9x9 head + 2B+1 3x3 convs + 9x9 tail), but its influence decays
fast; a tile only needs enough context that what it cannot see no longer changes the 8-bit output. This
measures PSNR(tiled, whole-frame) in dB (RGB, 8-bit, no border shave) for each halo, on the frames of the
shipped sample clip (never on held-out data: this choice is tuning), and the tiles/frame cost of each halo.

    python benchmarks/halo.py [--weights W] [--halos 0 2 4 6 8 12 16]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import av
import numpy as np
import torch

from streamsr.backends import TorchEngine
from streamsr.enhancer import Enhancer
from streamsr.model import load_generator
from streamsr.tiling import Tiler

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.mp4"


def sample_frames(path: Path = SAMPLE, every: int = 5) -> list[torch.Tensor]:
    """(3, H, W) float32 [0, 1] RGB frames of a clip, every `every`-th."""
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
            mse = float(((tiled - ref) ** 2).mean())
            worst = min(worst, math.inf if mse == 0 else 10 * math.log10(255**2 / mse))
            max_diff = max(max_diff, int((tiled - ref).abs().max()))
    return worst, max_diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--halos", type=int, nargs="+", default=[0, 2, 4, 6, 8, 12, 16])
    ap.add_argument("--tile", type=int, default=32)
    args = ap.parse_args()
    model = load_generator(args.weights)
    engine = TorchEngine(model, device=torch.device("cpu"), precision="fp32", batch=32)
    frames = sample_frames()
    print("| halo | window | cost per tile (x 32x32) | PSNR tiled vs whole, worst frame (dB) | max diff (8-bit) |")
    print("|---:|---:|---:|---:|---:|")
    for halo in args.halos:
        tiler = Tiler(tile=args.tile, halo=halo)
        psnr, max_diff = seam_error(Enhancer(engine, tiler), engine.model, frames)
        cost = (tiler.window / args.tile) ** 2
        print(f"| {halo} | {tiler.window} | {cost:.2f} | {psnr:.1f} | {max_diff} |")


if __name__ == "__main__":
    main()
