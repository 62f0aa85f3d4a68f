"""Tiler: cut a frame into fixed-size LR tiles with a halo, and stitch the 4x centres back.

The halo gives every tile's centre the context the generator's receptive field needs, so the stitched
frame has no seams. Fixed tile shapes let compiled engines (TensorRT, CUDA graphs, ONNX) be built once for
any frame size. Everything is pad/unfold/reshape on the tensor's own device: no Python loop over tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

DEFAULT_TILE = 32
"""The tile of fixed-window engines (TensorRT, torch.compile with CUDA graphs): one window shape, built once."""
ANY_WINDOW_TILE = 96
"""The tile of engines that take any window (ONNX Runtime, torch eager: the CPU engines). Small tiles buy
nothing there and cost halo work: a 32 + 2x6 window computes 1.89x the frame's pixels at every size, a
96 + 2x6 one 1.27x at 384x288 and 1.33-1.42x at 256x192..640x480 (96 divides 192, 288, 384 and 480;
padded-work table and timings in benchmarks/results/tiles.md). The halo rule is the same."""
DEFAULT_HALO = 6
"""Chosen by measurement with the shipped weights: benchmarks/halo.py on the sample clip, whose table
(worst-frame PSNR and largest 8-bit difference of tiled vs whole-frame output, and the MAC cost, per halo)
is benchmarks/results/halo.md, summarised in the README ("Tiling and seams"). Halo 6 is the smallest halo
whose tiled output stays within 2 of 255 levels of the whole-frame output; tests/test_seams.py holds the
shipped weights to that bound."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TileGrid:
    """Where the tiles of one frame came from: needed to stitch them back.

    height/width: the LR frame size; rows/cols: tile grid (rows*cols tiles, row-major).
    """

    height: int
    width: int
    rows: int
    cols: int

    @property
    def count(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True, slots=True, kw_only=True)
class Tiler:
    """tile: LR tile edge in pixels; halo: LR context pixels on each side; scale: the engine's upscale."""

    tile: int = DEFAULT_TILE
    halo: int = DEFAULT_HALO
    scale: int = 4

    def __post_init__(self) -> None:
        if self.tile < 1:
            raise ValueError(f"Tiler.tile must be >= 1, got {self.tile}")
        if self.halo < 0:
            raise ValueError(f"Tiler.halo must be >= 0, got {self.halo}")
        if self.scale < 1:
            raise ValueError(f"Tiler.scale must be >= 1, got {self.scale}")

    @property
    def window(self) -> int:
        """Edge of one LR tile as the engine sees it: tile + 2 * halo."""
        return self.tile + 2 * self.halo

    def grid(self, height: int, width: int) -> TileGrid:
        return TileGrid(
            height=height, width=width, rows=-(-height // self.tile), cols=-(-width // self.tile)
        )

    def split(self, image: torch.Tensor) -> tuple[torch.Tensor, TileGrid]:
        """(3, H, W) float tensor -> (rows*cols, 3, window, window) tiles (a new contiguous tensor), grid.

        The frame is padded by `halo` on every side and up to a whole number of tiles at the bottom/right:
        mirrored (reflect) as far as the frame reaches, then its edge pixels repeated for what is left (frames
        smaller than the padding, e.g. a 64x48 frame in one 96 tile), so the pixels next to the frame's
        edge see the same mirrored context whatever the tile size.
        """
        if image.ndim != 3:
            raise ValueError(f"Tiler.split expects a (3, H, W) tensor, got shape {tuple(image.shape)}")
        _, h, w = image.shape
        grid = self.grid(h, w)
        pad_bottom = grid.rows * self.tile - h + self.halo
        pad_right = grid.cols * self.tile - w + self.halo
        pad = (self.halo, pad_right, self.halo, pad_bottom)
        mirrored = tuple(min(p, (w if i < 2 else h) - 1) for i, p in enumerate(pad))  # reflect needs p < size
        padded = image.unsqueeze(0)
        if any(mirrored):
            padded = F.pad(padded, mirrored, mode="reflect")
        rest = tuple(p - m for p, m in zip(pad, mirrored))
        if any(rest):
            padded = F.pad(padded, rest, mode="replicate")
        padded = padded[0]
        tiles = padded.unfold(1, self.window, self.tile).unfold(2, self.window, self.tile)
        # (3, rows, cols, win, win) -> (rows*cols, 3, win, win)
        tiles = tiles.permute(1, 2, 0, 3, 4).reshape(grid.count, image.shape[0], self.window, self.window)
        return tiles.contiguous(), grid

    def gather_index(self, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """(rows*cols * 3 * window * window,) int64 index into a flattened (height, width, 3) HWC frame such that
        `frame.reshape(-1)[index].view(rows*cols, 3, window, window)` equals `split` of the (3, H, W) frame,
        padding included (it is `split` applied to the frame of flat positions, so the two cannot disagree).

        Lets the Enhancer's device-resident path cut tiles with one `torch.take(..., out=)` into a
        preallocated buffer, straight from the uploaded HWC frame: no pad, permute or contiguous copy per frame.
        Built once per frame size; float64 holds the positions exactly (< 2**53)."""
        positions = torch.arange(height * width * 3, dtype=torch.float64, device=device)
        tiles, _ = self.split(positions.view(height, width, 3).permute(2, 0, 1))
        return tiles.reshape(-1).to(torch.int64)

    def stitch(self, tiles: torch.Tensor, grid: TileGrid) -> torch.Tensor:
        """(rows*cols, 3, s*window, s*window) engine output -> (3, s*H, s*W) frame (crop of the centres)."""
        s, t = self.scale, self.tile
        expected = (grid.count, tiles.shape[1], s * self.window, s * self.window)
        if tuple(tiles.shape) != expected:
            raise ValueError(f"Tiler.stitch expects tiles of shape {expected}, got {tuple(tiles.shape)}")
        lo = s * self.halo
        centres = tiles[:, :, lo : lo + s * t, lo : lo + s * t]
        c = tiles.shape[1]
        frame = centres.reshape(grid.rows, grid.cols, c, s * t, s * t).permute(2, 0, 3, 1, 4)
        frame = frame.reshape(c, grid.rows * s * t, grid.cols * s * t)
        return frame[:, : s * grid.height, : s * grid.width]


def default_tile(*, any_window: bool) -> int:
    """The tile an Enhancer uses when none is asked for: ANY_WINDOW_TILE for engines that take any window,
    DEFAULT_TILE for fixed-window ones."""
    return ANY_WINDOW_TILE if any_window else DEFAULT_TILE


DEFAULT_WINDOW = Tiler().window
"""The LR window edge engines are built for by default (44 = 32 + 2 * 6), derived from the Tiler."""
