"""`streamsr bench [--quick] [--size WxH ...] [--weights W ...]`: latency/throughput of the critical path side by
side with baselines, for each LR size and each generator asked for, ending with one verdict line per pair."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Optional

import typer

from ..bench import format_markdown, run_bench, standard_config
from ..bench.results import BenchResult
from ..model import resolve_weights


def _size(spec: Optional[str]) -> tuple[Optional[int], Optional[int]]:
    if spec is None:
        return None, None
    try:
        w, h = (int(v) for v in spec.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"--size must look like 128x96 (LR width x height), got {spec!r}") from None
    if w < 1 or h < 1:
        raise typer.BadParameter(f"--size must be positive, got {spec!r}")
    return w, h


LIVE_RATES = (25, 30)
"""Frame rates a verdict line checks: PAL and NTSC-family scope video."""


def verdict(result: BenchResult, label: str) -> str:
    """One line: the Enhancer's fps and p99 latency at this size, and whether it keeps up with LIVE_RATES
    on this machine (if not, by what factor it falls short)."""
    v = result.variants["streamsr"]
    w, h = result.lr_size
    checks = []
    for rate in LIVE_RATES:
        if v.fps >= rate:
            checks.append(f"keeps up with {rate} fps")
        else:
            checks.append(f"{rate} fps: no ({rate / v.fps:.1f}x too slow)" if v.fps > 0 else f"{rate} fps: no")
    return f"{w}x{h} {label}: {v.fps:.2f} fps, p99 {v.latency.p99:.0f} ms; " + "; ".join(checks)


def bench(
    quick: bool = typer.Option(False, "--quick", help="Small, fast set (about a minute on a 2-core CPU)."),
    engine: str = typer.Option("auto", help="Inference engine: auto, or a name from `streamsr info`."),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:N or auto."),
    precision: str = typer.Option("auto", help="fp32, fp16, bf16 or auto (fp16 on CUDA)."),
    preset: Optional[str] = typer.Option(None, help="Model preset (default: that of the weights, else the default's)."),
    weights: Optional[list[str]] = typer.Option(
        None, help="Generator weights: a shipped name (`streamsr info`) or a .safetensors file; repeat to compare "
        "presets side by side. Default: the shipped default, else a freshly initialised generator."
    ),
    batch: Optional[int] = typer.Option(None, min=1, help="Tiles per engine call (default: 16 for 32-px tiles, "
                                        "fewer for larger ones)."),
    tile: Optional[int] = typer.Option(None, min=1, help="LR tile edge in pixels."),
    halo: Optional[int] = typer.Option(None, min=0, help="LR context pixels around each tile."),
    size: Optional[list[str]] = typer.Option(
        None, help="LR input size WxH, repeatable (default: 128x96 CPU, 480x270 CUDA; --quick CPU: 64x64)."
    ),
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
    """Measure per-stage and end-to-end latency (p50/p95/p99/max), fps, efficiency and speed-ups; print the table.

    With several --size and --weights, every pair is measured and printed in turn; the run ends with one
    verdict line per pair (fps, p99 latency, whether it keeps up with 25 and 30 fps here)."""
    sizes = [_size(s) for s in size] if size else [(None, None)]
    runs = [None] if not weights else [str(resolve_weights(w)) for w in weights]
    cuda = device.startswith("cuda") or (device == "auto" and _cuda())
    configs = []
    for width, height in sizes:
        for w in runs:
            overrides: dict[str, object] = dict(
                engine=engine, device=device, precision=precision, preset=preset, weights=w, batch=batch,
                tile=tile, halo=halo, width=width, height=height, clip=str(clip) if clip else None, frames=frames,
                repeats=repeats, x264_preset=x264_preset, live_seconds=live_seconds,
            )
            if not baselines:
                overrides["variants"] = ("engine", "streamsr")
            if not pipeline:
                overrides["pipeline_frames"] = 0
            try:
                configs.append(standard_config(quick=quick, cuda=cuda, **overrides))
            except ValueError as e:
                raise typer.BadParameter(str(e)) from None
    progress = None if quiet else (lambda msg: print(f"streamsr bench: {msg}", file=sys.stderr, flush=True))
    results: list[tuple[str, BenchResult]] = []
    for config, w in zip(configs, runs * len(sizes)):
        result = run_bench(config, progress=progress)
        label = Path(w).stem if w is not None else (preset or resolve_weights(None).stem)
        results.append((label, result))
        print(f"streamsr bench{' --quick' if quick else ''}: {label}, {result.lr_size[0]}x{result.lr_size[1]} LR")
        print(format_markdown(result))
    print("\nverdict (this machine):")
    for label, result in results:
        print(verdict(result, label))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        dicts = [r.to_dict() for _, r in results]
        # one run: its result object, as before; several: {"runs": [...]}, in the order they ran
        data = dicts[0] if len(dicts) == 1 else {"runs": dicts}
        json_out.write_text(json.dumps(data, indent=1, default=_nan_safe))
        print(f"\nwrote {json_out}", file=sys.stderr)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _nan_safe(x: object) -> object:
    if isinstance(x, float) and math.isnan(x):
        return None
    return str(x)
