"""How much halo hides the seams: PSNR between tiled and whole-frame output of the same generator.

The generator's receptive field is large (9x9 head + 2B+1 3x3 convs + 9x9 tail), but its influence decays
fast; a tile only needs enough context that what it cannot see no longer changes the 8-bit output. This
measures PSNR(tiled, whole-frame) in dB (RGB, 8-bit, no border shave) for each halo, on the frames of the
shipped sample clip (never on held-out data: this choice is tuning), and the tiles/frame cost of each halo.

    python benchmarks/halo.py [--weights W] [--halos 0 2 4 6 8 12 16]

The measure itself is `streamsr.bench.seams` (tests/test_seams.py uses it too).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from streamsr.backends import TorchEngine
from streamsr.bench.seams import sample_frames, seam_error
from streamsr.enhancer import Enhancer
from streamsr.model import load_generator
from streamsr.tiling import Tiler


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
