"""Options shared by the commands that run the generator (enhance, stream), declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

EngineName = Annotated[str, typer.Option(help="Inference engine: auto, or a name from `streamsr info`.")]
DeviceName = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")]
PrecisionName = Annotated[str, typer.Option(help="fp32, fp16, bf16 or auto (fp16 on CUDA).")]
Batch = Annotated[Optional[int], typer.Option(
    min=1, help="Tiles per engine call; default: 16 for 32-px tiles, fewer for larger ones.", show_default=False)]
TileSize = Annotated[Optional[int], typer.Option(
    min=1, help="LR tile edge in pixels; default: 96 on engines that take any window (CPU), 32 on fixed-window ones "
    "(TensorRT, CUDA graphs).", show_default=False)]
HaloSize = Annotated[Optional[int], typer.Option(min=0, help="LR context pixels around each tile (hides seams); "
                                                 "default 6.", show_default=False)]
WeightsPath = Annotated[Optional[Path], typer.Option(help="Generator weights (.safetensors); default: shipped.")]
PresetName = Annotated[Optional[str], typer.Option(help="Require the weights to be of this model preset.")]
