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
DEFAULT_BATCH_PIXELS = 16 * 44 * 44
"""LR window pixels per engine call by default: 16 windows of 32 + 2x6 px, the batch every engine was
measured at. Larger windows take fewer per call (`default_batch`), so the engine's working set stays what
it was: ONNX Runtime ran srgan-x4-lite's 96-px tiles (108-px windows) at 2.07 / 2.00 / 1.96 s per 384x288
frame at batch 16 / 4 / 2 (one thread, 2026-12-04; peak RSS 1.6 GB at 16), so nothing is lost."""

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
        mirrored (reflect) as far as the frame reaches, then its outermost mirrored pixel repeated for what is
        left (frames smaller than the padding, e.g. a 64x48 frame in one 96 tile), so the pixels next to the
        frame's edge see the same mirrored context whatever the tile size.
        """
        if image.ndim != 3:
            raise ValueError(f"Tiler.split expects a (3, H, W) tensor, got shape {tuple(image.shape)}")
        _, h, w = image.shape
        grid = self.grid(h, w)
        padded = self._pad(image)
        tiles = padded.unfold(1, self.window, self.tile).unfold(2, self.window, self.tile)
        # (3, rows, cols, win, win) -> (rows*cols, 3, win, win)
        tiles = tiles.permute(1, 2, 0, 3, 4).reshape(grid.count, image.shape[0], self.window, self.window)
        return tiles.contiguous(), grid

    def pad_maps(self, height: int, width: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(rows*tile + 2*halo,) and (cols*tile + 2*halo,) int64: the source row / column of every row / column
        of the padded frame `split` cuts, mirror or edge-repeat included (the same rule as `split`'s F.pad;
        tests/test_tiling.py holds them equal; integer arithmetic, as a tiny F.pad call can cost tens of ms
        waking the thread pool of a busy machine). With them `tiles` cuts any run of tiles straight from
        the unpadded frame: the padded frame is never made. O(H + W) memory."""
        bottom, right = self._padding(height, width)
        maps = []
        for n, after in ((height, bottom), (width, right)):
            i = torch.arange(-self.halo, n + after, device=device)
            # F.pad's reflect (-1 -> 1, n -> n - 2: the edge itself is not repeated) for as many pixels as the
            # frame has beyond its edge, then the outermost mirrored pixel repeated (see `_pad`)
            before_m, after_m = min(self.halo, n - 1), min(after, n - 1)
            i = torch.where(i < 0, (-i).clamp(max=before_m), i)
            i = torch.where(i > n - 1, (2 * (n - 1) - i).clamp(min=n - 1 - after_m), i)
            maps.append(i)
        return maps[0], maps[1]

    def tiles(self, image: torch.Tensor, grid: TileGrid, maps: tuple[torch.Tensor, torch.Tensor], start: int,
              stop: int) -> torch.Tensor:
        """Tiles start..stop-1 (row-major) of the (C, H, W) frame `image` (any dtype, any strides: an HWC frame
        permuted is fine), as a new (stop-start, C, window, window) tensor of its dtype: exactly those rows of
        `split(image)`. maps: `pad_maps(H, W)` on the image's device. One gather, no Python loop."""
        ys, xs = maps
        k = torch.arange(start, stop, device=ys.device)
        offsets = torch.arange(self.window, device=ys.device)
        rows = ys[(k // grid.cols * self.tile)[:, None] + offsets]  # (n, window)
        cols = xs[(k % grid.cols * self.tile)[:, None] + offsets]
        return image[:, rows[:, :, None], cols[:, None, :]].transpose(0, 1)  # (C, n, w, w) -> (n, C, w, w)

    def place(self, centres: torch.Tensor, grid: TileGrid, start: int, dest: torch.Tensor) -> None:
        """Copy the 4x centres (n, C, s*tile, s*tile) of tiles start..start+n-1 (row-major) into their places
        in `dest`, a (C, s*H, s*W) tensor of any dtype and strides (e.g. an HWC uint8 image permuted; values
        are cast as `copy_` does), cropping what falls outside the frame. What `stitch` does for a whole
        frame, for any run of tiles: one slice copy per tile row the run touches."""
        n, st = centres.shape[0], self.scale * self.tile
        height, width = dest.shape[1], dest.shape[2]
        k = 0
        while k < n:
            row, col = divmod(start + k, grid.cols)
            m = min(n - k, grid.cols - col)  # the tiles of this run in this tile row
            y0, x0 = row * st, col * st
            h, w = min(st, height - y0), min(m * st, width - x0)
            band = centres[k : k + m].permute(1, 2, 0, 3).reshape(centres.shape[1], st, m * st)
            dest[:, y0 : y0 + h, x0 : x0 + w].copy_(band[:, :h, :w])
            k += m

    def _padding(self, height: int, width: int) -> tuple[int, int]:
        """(rows padded at the bottom, columns at the right) of `split`: `halo` on every side plus up to
        whole tiles."""
        grid = self.grid(height, width)
        return grid.rows * self.tile - height + self.halo, grid.cols * self.tile - width + self.halo

    def _pad(self, image: torch.Tensor) -> torch.Tensor:
        """(C, H, W) -> the padded (C, rows*tile + 2*halo, cols*tile + 2*halo) frame `split` cuts: mirrored as
        far as the frame reaches (reflect needs padding < size), then the outermost pixel repeated."""
        h, w = image.shape[1], image.shape[2]
        bottom, right = self._padding(h, w)
        pad = (self.halo, right, self.halo, bottom)
        mirrored = tuple(min(p, (w if i < 2 else h) - 1) for i, p in enumerate(pad))
        padded = image.unsqueeze(0)
        if any(mirrored):
            padded = F.pad(padded, mirrored, mode="reflect")
        rest = tuple(p - m for p, m in zip(pad, mirrored))
        if any(rest):
            padded = F.pad(padded, rest, mode="replicate")
        return padded[0]

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


def default_batch(window: int) -> int:
    """Windows per engine call when none is asked for: DEFAULT_BATCH_PIXELS worth, at least 1 (16 for the
    44-px windows of 32-px tiles, 2 for the 108-px windows of 96-px ones)."""
    return max(1, DEFAULT_BATCH_PIXELS // (window * window))


def default_tile(*, any_window: bool) -> int:
    """The tile an Enhancer uses when none is asked for: ANY_WINDOW_TILE for engines that take any window,
    DEFAULT_TILE for fixed-window ones."""
    return ANY_WINDOW_TILE if any_window else DEFAULT_TILE


DEFAULT_WINDOW = Tiler().window
"""The LR window edge engines are built for by default (44 = 32 + 2 * 6), derived from the Tiler."""
