"""With the real shipped generator, tiled output matches whole-frame output closely enough that no seam
shows: measured by `streamsr.bench.seams` (benchmarks/halo.py tabulates it), asserted here at both default
tiles (fixed-window and any-window engines) and the default halo."""

import pytest
import torch

from streamsr.backends import TorchEngine
from streamsr.bench import seams
from streamsr.enhancer import Enhancer
from streamsr.model import SHIPPED_WEIGHTS, load_generator
from streamsr.tiling import ANY_WINDOW_TILE, DEFAULT_HALO, DEFAULT_TILE, Tiler

# Measured with the shipped weights on the sample clip (README, "Tiling and seams"): halo 6 gave a worst
# frame of 61.4 dB and at most 2 levels of 255 (halo 4: 57.1 dB / 5; no halo: 46.8 dB / 42); the bounds
# leave a little room for other BLAS builds.
MIN_SEAM_PSNR_DB = 58.0
MAX_SEAM_DIFF = 3


@pytest.mark.parametrize("tile", [DEFAULT_TILE, ANY_WINDOW_TILE], ids=["fixed-window-tile", "any-window-tile"])
def test_shipped_generator_tiles_without_visible_seams(tile):
    model = load_generator(SHIPPED_WEIGHTS)
    engine = TorchEngine(model, device=torch.device("cpu"), precision="fp32", batch=32)
    enhancer = Enhancer(engine, Tiler(tile=tile, halo=DEFAULT_HALO))
    frames = seams.sample_frames(every=10)
    psnr, max_diff = seams.seam_error(enhancer, engine.model, frames)
    assert psnr >= MIN_SEAM_PSNR_DB
    assert max_diff <= MAX_SEAM_DIFF


def test_no_halo_does_show_seams():
    """The check above can fail: without a halo the same measurement sees the seams."""
    model = load_generator(SHIPPED_WEIGHTS)
    engine = TorchEngine(model, device=torch.device("cpu"), precision="fp32", batch=32)
    enhancer = Enhancer(engine, Tiler(tile=DEFAULT_TILE, halo=0))
    psnr, max_diff = seams.seam_error(enhancer, engine.model, seams.sample_frames(every=10))
    assert psnr < MIN_SEAM_PSNR_DB and max_diff > MAX_SEAM_DIFF
