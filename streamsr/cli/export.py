"""`streamsr export`: build (or load) an engine ahead of time, so the first video does not pay for it."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from ..enhancer import Enhancer
from ..spec import EnhancerSpec
from .options import Batch, HaloSize, TileSize


def export(
    engine: str = typer.Option(..., help="Engine to build: tensorrt, onnxruntime, torch-compile (or auto)."),
    batch: Batch = None,
    precision: str = typer.Option("auto", help="fp32, fp16, bf16 or auto (fp16 on CUDA, fp32 on CPU)."),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:N or auto."),
    tile: TileSize = None,
    halo: HaloSize = None,
    weights: Optional[Path] = typer.Option(None, help="Generator weights (.safetensors); default: shipped."),
    preset: Optional[str] = typer.Option(None, help="Require the weights to be of this model preset."),
    engine_dir: Optional[Path] = typer.Option(
        None, "--engine-dir", help="Cache folder (default: $STREAMSR_ENGINE_DIR, else engines/ of the checkout)."
    ),
) -> None:
    """Build and cache an engine for --tile/--halo/--batch/--precision; print where it went."""
    if precision not in ("fp32", "fp16", "bf16", "auto"):
        raise typer.BadParameter(f"--precision must be fp32, fp16, bf16 or auto, got {precision!r}")
    t0 = time.perf_counter()
    spec = EnhancerSpec.resolve(weights, preset=preset, engine=engine, device=device, precision=precision,
                                batch=batch, tile=tile, halo=halo, cache_dir=engine_dir)
    built = Enhancer.build(spec).engine
    seconds = time.perf_counter() - t0
    artifact = getattr(built, "artifact", None)
    verb = "loaded" if getattr(built, "reused", False) else "built"
    print(f"streamsr: {verb} {built.describe()} in {seconds:.1f} s", file=sys.stderr)
    if artifact is None:
        print(f"{built.name} keeps no artifact; nothing was cached")
    elif built.name == "torch-compile":
        print(f"{artifact} (Inductor cache; torch.compile recompiles per process, faster with it warm)")
    else:
        print(artifact)
