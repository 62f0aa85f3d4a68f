"""`streamsr bench [--quick]`: latency/throughput of the critical path side by side with baselines."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Optional

import typer

from ..bench import format_markdown, run_bench, standard_config


def _size(spec: Optional[str]) -> tuple[Optional[int], Optional[int]]:
    if spec is None:
        return None, None
    try:
        w, h = (int(v) for v in spec.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"--size must look like 128x96 (LR width x height), got {spec!r}") from None
    return w, h


def bench(
    quick: bool = typer.Option(False, "--quick", help="Small, fast set (about a minute on a 2-core CPU)."),
    engine: str = typer.Option("auto", help="Inference engine: auto, or a name from `streamsr info`."),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:N or auto."),
    precision: str = typer.Option("auto", help="fp32, fp16, bf16 or auto (fp16 on CUDA)."),
    preset: Optional[str] = typer.Option(None, help="Model preset (default: that of the weights, else srgan-x4-lite)."),
    weights: Optional[Path] = typer.Option(
        None, help="Generator weights (.safetensors); default: shipped, else a freshly initialised generator."
    ),
    batch: int = typer.Option(16, min=1, help="Tiles per engine call."),
    tile: Optional[int] = typer.Option(None, min=1, help="LR tile edge in pixels."),
    halo: Optional[int] = typer.Option(None, min=0, help="LR context pixels around each tile."),
    size: Optional[str] = typer.Option(None, help="LR input size WxH (default: 128x96 CPU, 480x270 CUDA; --quick CPU: 64x64)."),
    clip: Optional[Path] = typer.Option(None, help="Use this video's frames instead of generated ones."),
    frames: Optional[int] = typer.Option(None, min=1, help="Timed frames per variant per repetition."),
    repeats: Optional[int] = typer.Option(None, min=1, help="Repetitions (medians are taken over them)."),
    baselines: bool = typer.Option(True, help="Time the per-tile loop, whole-frame and bicubic baselines."),
    pipeline: bool = typer.Option(True, help="Also run the real decode ‖ enhance ‖ encode pipeline."),
    live_seconds: Optional[float] = typer.Option(
        None, min=0, help="Seconds of real-time (paced, newest-frame-wins) replay per repetition; 0 skips it."
    ),
    x264_preset: str = typer.Option("medium", help="x264 preset of the pipeline's encoder."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write every figure to this JSON file."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress lines on stderr."),
) -> None:
    """Measure per-stage and end-to-end latency (p50/p95/p99/max), fps, efficiency and speed-ups; print the table."""
    width, height = _size(size)
    overrides: dict[str, object] = dict(
        engine=engine, device=device, precision=precision, preset=preset,
        weights=str(weights) if weights else None, batch=batch, tile=tile, halo=halo, width=width,
        height=height, clip=str(clip) if clip else None, frames=frames, repeats=repeats, x264_preset=x264_preset,
        live_seconds=live_seconds,
    )
    if not baselines:
        overrides["variants"] = ("engine", "streamsr")
    if not pipeline:
        overrides["pipeline_frames"] = 0
    cuda = device.startswith("cuda") or (device == "auto" and _cuda())
    try:
        config = standard_config(quick=quick, cuda=cuda, **overrides)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    progress = None if quiet else (lambda msg: print(f"streamsr bench: {msg}", file=sys.stderr, flush=True))
    result = run_bench(config, progress=progress)
    print(f"streamsr bench{' --quick' if quick else ''}")
    print(format_markdown(result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_dict(), indent=1, default=_nan_safe))
        print(f"\nwrote {json_out}", file=sys.stderr)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _nan_safe(x: object) -> object:
    if isinstance(x, float) and math.isnan(x):
        return None
    return str(x)
