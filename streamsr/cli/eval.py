"""`streamsr eval FRAMES_DIR`: PSNR/SSIM of bicubic vs each generator on degraded HR frames, plus a grid."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from tqdm import tqdm

from ..enhancer import Enhancer
from ..errors import InputError
from ..evaluate import bicubic_upscaler, enhancer_upscaler, evaluate_folder, format_table, grid_image, list_frames, write_png
from ..model import SHIPPED_WEIGHTS
from ..tiling import DEFAULT_HALO, DEFAULT_TILE
from .options import Batch, DeviceName, EngineName, HaloSize, PrecisionName, TileSize


def eval(  # noqa: A001 - the command is called eval
    frames_dir: Path = typer.Argument(..., help="A folder of HR frames (png/jpg): the ground truth."),
    weights: Optional[List[Path]] = typer.Option(
        None, "--weights", "-w", help="Generator weights to compare (repeatable); default: the shipped weights."
    ),
    engine: EngineName = "auto",
    device: DeviceName = "auto",
    precision: PrecisionName = "auto",
    batch: Batch = 16,
    tile: TileSize = DEFAULT_TILE,
    halo: HaloSize = DEFAULT_HALO,
    grid: Optional[Path] = typer.Option(None, help="Write a picture grid PNG (LR | bicubic | SR... | HR)."),
    grid_frames: int = typer.Option(4, min=1, help="Frames (rows) in the grid."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use N frames spread evenly over the sorted folder."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Degrade each HR frame (antialiased bicubic 4x down, 8-bit), enhance it through the real tiled
    pipeline, and print PSNR/SSIM (Y and RGB) of bicubic vs each model."""
    frames = list_frames(frames_dir, limit=limit)
    methods = {"bicubic": bicubic_upscaler}
    for w in weights or [SHIPPED_WEIGHTS]:
        enhancer = Enhancer.build(engine=engine, device=device, precision=precision, batch=batch, tile=tile,
                                  halo=halo, weights=w)
        eng = enhancer.engine
        name = w.stem if w != SHIPPED_WEIGHTS else f"{w.stem} (shipped)"
        if name in methods:
            raise InputError(f"two --weights files are both named {w.stem!r}; rename one")
        methods[name] = enhancer_upscaler(enhancer)
        if not quiet:
            print(f"streamsr: {name}: {eng.describe()}, tile {tile}+{halo} halo", file=sys.stderr)
    with tqdm(total=len(frames), desc="eval", unit="frame", disable=quiet, dynamic_ncols=True, file=sys.stderr) as bar:
        report = evaluate_folder(frames, methods, grid_frames=grid_frames if grid else 0,
                                 on_frame=lambda _p: bar.update(1))  # fmt: skip
    print(f"{frames_dir}: {len(frames)} frames")
    print(format_table(report))
    if grid:
        write_png(grid_image(report, ["LR (nearest)", *methods, "HR"]), grid)
        print(f"grid: {grid}")
