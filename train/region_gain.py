"""Where whole-frame gain is lost: PSNR-Y gain over bicubic on tissue vs on the masked regions.

    python -m train.region_gain WEIGHTS FRAMES_DIR [--limit N] [--rows aa-bicubic,bicubic-aliased]

The masked region is train/data.py's `tissue_mask` (black border, text overlays, thumbnail, dilated 4 px),
which training crops avoid. Per suite row it prints, for each region, its share of the pixels, bicubic's and
the model's mean squared Y error (8-bit levels) and the gain, pooled over all frames. The model runs on the
whole LR frame (no tiling), so figures differ slightly from `streamsr eval`. Use validation frames, never
the held-out ones.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

from streamsr.degradations import SUITE, bicubic_upscale
from streamsr.evaluate import SHAVE, list_frames, read_hr, to_image, to_tensor
from streamsr.metrics import rgb_to_y
from streamsr.model import Generator, load_generator
from train.data import tissue_mask


@dataclass
class RegionError:
    """Summed squared Y error and pixel count per (method, region): methods bicubic/model, regions tissue/masked."""

    sse: np.ndarray  # (2, 2) float64
    pixels: np.ndarray  # (2,) int64, per region

    def gain(self, region: int | None = None) -> float:
        """Model's PSNR gain over bicubic in dB on one region (0 tissue, 1 masked) or both (None)."""
        sse = self.sse.sum(axis=1) if region is None else self.sse[:, region]
        return float(10.0 * np.log10(sse[0] / sse[1]))


def _y(img: np.ndarray) -> np.ndarray:
    return rgb_to_y(to_tensor(img))[0].numpy()[SHAVE:-SHAVE, SHAVE:-SHAVE]


@torch.no_grad()
def region_errors(model: Generator, frames: list[np.ndarray], rows: list[str]) -> dict[str, RegionError]:
    """{suite row: RegionError} pooled over `frames` ((H, W, 3) uint8 RGB, H and W multiples of 4)."""
    suite = {d.name: d for d in SUITE}
    unknown = [r for r in rows if r not in suite]
    if unknown:
        raise ValueError(f"unknown suite rows {unknown}; known: {', '.join(suite)}")
    out = {r: RegionError(np.zeros((2, 2)), np.zeros(2, np.int64)) for r in rows}
    for hr in frames:
        masked = tissue_mask(hr)[SHAVE:-SHAVE, SHAVE:-SHAVE]
        hr_y = _y(hr)
        for r in rows:
            lr = suite[r](hr)
            sr = to_image(model(to_tensor(lr)[None])[0].float())
            bic = to_image(bicubic_upscale(to_tensor(lr)))
            for m, img in enumerate((bic, sr)):
                err = (_y(img) - hr_y) ** 2
                out[r].sse[m] += (err[~masked].sum(), err[masked].sum())
            out[r].pixels += ((~masked).sum(), masked.sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("frames")
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--rows", default="aa-bicubic,bicubic-aliased,area+jpeg75")
    args = ap.parse_args()
    model = load_generator(args.weights).eval()
    frames = [read_hr(p) for p in list_frames(args.frames, limit=args.limit)]
    for row, e in region_errors(model, frames, args.rows.split(",")).items():
        share = e.pixels / e.pixels.sum()
        mse = e.sse / e.pixels
        sse_share = e.sse[:, 1] / e.sse.sum(axis=1)
        print(f"{row:>16}  all {e.gain():+.2f} dB | tissue {share[0]:.0%} px: bicubic {mse[0, 0]:.1f} model "
              f"{mse[1, 0]:.1f} ({e.gain(0):+.2f}) | masked {share[1]:.0%} px: bicubic {mse[0, 1]:.1f} model "
              f"{mse[1, 1]:.1f} ({e.gain(1):+.2f}) | masked share of bicubic's error {sse_share[0]:.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
