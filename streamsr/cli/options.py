"""Options shared by the commands that run the generator (enhance, stream), declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..backends import EngineConfig, select_engine
from ..enhancer import Enhancer
from ..tiling import Tiler

EngineName = Annotated[str, typer.Option(help="Inference engine: auto, or a name from `streamsr info`.")]
DeviceName = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")]
PrecisionName = Annotated[str, typer.Option(help="fp32, fp16, bf16 or auto (fp16 on CUDA).")]
Batch = Annotated[int, typer.Option(min=1, help="Tiles per engine call.")]
TileSize = Annotated[int, typer.Option(min=1, help="LR tile edge in pixels.")]
HaloSize = Annotated[int, typer.Option(min=0, help="LR context pixels around each tile (hides seams).")]
WeightsPath = Annotated[Optional[Path], typer.Option(help="Generator weights (.safetensors); default: shipped.")]
PresetName = Annotated[Optional[str], typer.Option(help="Require the weights to be of this model preset.")]


def build_enhancer(
    *, engine: str, device: str, precision: str, batch: int, tile: int, halo: int,
    weights: Path | None, preset: str | None,
) -> Enhancer:
    """The Enhancer those options describe (engine selected and built, weights loaded)."""
    tiler = Tiler(tile=tile, halo=halo)
    config = EngineConfig(
        engine=engine, device=device, precision=precision, batch=batch, window=tiler.window,
        weights=str(weights) if weights else None, preset=preset,
    )
    return Enhancer(select_engine(config), tiler)
