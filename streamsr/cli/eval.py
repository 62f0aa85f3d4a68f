"""`streamsr eval FRAMES_DIR`: PSNR/SSIM of bicubic vs each generator on degraded HR frames, plus a grid."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from tqdm import tqdm

from ..degradations import SUITE
from ..enhancer import Enhancer
from ..spec import EnhancerSpec
from ..errors import InputError, OutputError
from ..eval_report import format_suite, format_table, grid_image, suite_json, write_png
from ..evaluate import bicubic_upscaler, enhancer_upscaler, evaluate_folder, list_frames
from ..model import SHIPPED_WEIGHTS
from .options import Batch, DeviceName, EngineName, HaloSize, PrecisionName, TileSize


def eval(  # noqa: A001 - the command is called eval
    frames_dir: Path = typer.Argument(..., help="A folder of HR frames (png/jpg): the ground truth."),
    weights: Optional[List[Path]] = typer.Option(
        None, "--weights", "-w", help="Generator weights to compare (repeatable); default: the shipped weights."
    ),
    engine: EngineName = "auto",
    device: DeviceName = "auto",
    precision: PrecisionName = "auto",
    batch: Batch = None,
    tile: TileSize = None,
    halo: HaloSize = None,
    grid: Optional[Path] = typer.Option(None, help="Write a picture grid PNG (LR | bicubic | SR... | HR)."),
    grid_frames: int = typer.Option(4, min=1, help="Frames (rows) in the grid."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use N frames spread evenly over the sorted folder."),
    suite: bool = typer.Option(False, "--suite", help="Every degradation of the suite (resizes, blur, noise, "
                               "JPEG, H.264), one row each, plus specular-highlight figures."),  # fmt: skip
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write every figure as JSON to this file."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Degrade each HR frame (antialiased bicubic 4x down, 8-bit; with --suite, every suite degradation),
    enhance it through the real tiled pipeline, and print PSNR/SSIM (Y and RGB) of bicubic vs each model."""
    frames = list_frames(frames_dir, limit=limit)
    if json_path is not None and not json_path.parent.is_dir():
        raise OutputError(f"cannot write {json_path}: folder {json_path.parent} does not exist")
    methods = {"bicubic": bicubic_upscaler}
    for w in weights or [SHIPPED_WEIGHTS]:
        enhancer = Enhancer.build(EnhancerSpec.resolve(w, engine=engine, device=device, precision=precision,
                                                       batch=batch, tile=tile, halo=halo))
        eng = enhancer.engine
        name = w.stem if w != SHIPPED_WEIGHTS else f"{w.stem} (shipped)"
        if name in methods:
            raise InputError(f"two --weights files are both named {w.stem!r}; rename one")
        methods[name] = enhancer_upscaler(enhancer)
        if not quiet:
            print(f"streamsr: {name}: {eng.describe()}, tile {enhancer.tiler.tile}+{enhancer.tiler.halo} halo",
                  file=sys.stderr)
    with tqdm(total=len(frames), desc="eval", unit="frame", disable=quiet, dynamic_ncols=True, file=sys.stderr) as bar:
        report = evaluate_folder(frames, methods, degradations=SUITE if suite else SUITE[:1],
                                 grid_frames=grid_frames if grid else 0, on_frame=lambda _p: bar.update(1))  # fmt: skip
    print(f"{frames_dir}: {len(frames)} frames")
    print(format_suite(report) if suite else format_table(report))
    if json_path is not None:
        tmp = json_path.with_name(f".{json_path.name}.partial")
        tmp.write_text(json.dumps(suite_json(report, source=str(frames_dir)), indent=1, allow_nan=False) + "\n")
        tmp.replace(json_path)
        print(f"json: {json_path}")
    if grid:
        write_png(grid_image(report, ["LR (nearest)", *methods, "HR"]), grid)
        print(f"grid: {grid}")
