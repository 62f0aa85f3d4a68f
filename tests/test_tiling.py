"""The Tiler (streamsr/tiling.py): split and stitch exact at every size, tile and halo, runs of tiles cut
and placed batch by batch equal to the whole-frame split, wrong shapes refused."""

import pytest
import torch
import torch.nn.functional as F

from streamsr.testing import NearestEngine
from streamsr.tiling import Tiler


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (31, 33), (32, 32), (40, 96), (61, 100)])
@pytest.mark.parametrize("tile,halo", [(32, 0), (32, 8), (16, 3), (8, 12)])
def test_stitch_is_exact_with_a_nearest_engine(size, tile, halo):
    h, w = size
    tiler = Tiler(tile=tile, halo=halo)
    image = torch.rand(3, h, w)
    tiles, grid = tiler.split(image)
    assert tiles.shape == (grid.rows * grid.cols, 3, tile + 2 * halo, tile + 2 * halo)
    out = tiler.stitch(NearestEngine().run(tiles), grid)
    assert torch.equal(out, F.interpolate(image[None], scale_factor=4, mode="nearest")[0])


def test_tiler_rejects_wrong_shapes():
    t = Tiler()
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        t.split(torch.rand(1, 3, 8, 8))
    tiles, grid = t.split(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="expects tiles of shape"):
        t.stitch(tiles, grid)
    with pytest.raises(ValueError, match="halo"):
        Tiler(halo=-1)


@pytest.mark.parametrize("tile,halo", [(32, 6), (8, 3), (4, 5), (16, 0)])
def test_runs_of_tiles_cut_and_placed_batch_by_batch_equal_split_and_stitch(tile, halo):
    """What the Enhancer's bounded-memory path does: tiles cut straight from the unpadded frame (uint8 HWC
    permuted, or float CHW) and centres placed run by run equal the whole-frame split / stitch exactly."""
    t = Tiler(tile=tile, halo=halo)
    for h, w in ((1, 1), (3, 7), (33, 65), (5, 100)):
        image = torch.rand(3, h, w)
        ref, grid = t.split(image)
        maps = t.pad_maps(h, w)
        u8 = (image * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().permute(2, 0, 1)
        sr = torch.rand(grid.count, 3, 4 * t.window, 4 * t.window)
        lo = 4 * halo
        centres = sr[:, :, lo : lo + 4 * tile, lo : lo + 4 * tile]
        for b in (1, 5, 1000):
            runs = range(0, grid.count, b)
            assert torch.equal(torch.cat([t.tiles(image, grid, maps, i, min(i + b, grid.count)) for i in runs]), ref)
            got = torch.cat([t.tiles(u8, grid, maps, i, min(i + b, grid.count)) for i in runs])
            assert got.dtype == torch.uint8 and torch.equal(got.float(), t.split(u8.float())[0])
            dest = torch.empty(4 * h, 4 * w, 3).permute(2, 0, 1)
            for i in runs:
                t.place(centres[i : i + b], grid, i, dest)
            assert torch.equal(dest, t.stitch(sr, grid))
