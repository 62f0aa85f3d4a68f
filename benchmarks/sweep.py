"""Sweep engine x preset x batch x tile/halo x input size; JSON + markdown table (plots: benchmarks/plots.py).

    python benchmarks/sweep.py [--repeats 3] [--frames 1] [--grid oat|full] [--out benchmarks/results]

`--grid oat` (default) varies one factor at a time around a base point (a full cartesian product is out of
reach of a 2-core CPU at ~5 tiles/s); `--grid full` runs the product of all axes (for GPU machines).
Every point times the engine alone and the Enhancer (streamsr.bench.run_bench with the baselines, the
pipeline and the ceiling left out). Points run in rounds: each repetition visits every point once, in a
rotated order, so slow drifts of a shared machine spread over all points; fps is the median over rounds,
latency percentiles pool the rounds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from streamsr.backends import available_engines
from streamsr.bench import BenchConfig, machine_info, run_bench
from streamsr.metrics import summarize_ms

HERE = Path(__file__).resolve().parent
STAGES = ("uploaded", "tiled", "inferred", "stitched", "downloaded")


@dataclass(frozen=True, slots=True, kw_only=True)
class Axes:
    """Values per axis; `base` is the point the one-at-a-time grid varies around."""

    engines: tuple[str, ...]
    presets: tuple[str, ...]
    batches: tuple[int, ...]
    tiles: tuple[tuple[int, int], ...]  # (tile, halo) in LR px
    sizes: tuple[tuple[int, int], ...]  # (width, height) in LR px
    base: BenchConfig


def default_axes(cuda: bool) -> Axes:
    """CPU: 128x128 LR (16 tiles), lite preset; the full preset only at 64x64 (it is ~5x the lite MACs).
    CUDA: 480x270 LR (1080p out)."""
    engines = tuple(available_engines())
    common = dict(engine=engines[0], variants=("engine", "streamsr"), pipeline_frames=0, ceiling_dtypes=(), warmup=1)
    if cuda:
        base = BenchConfig(preset="srgan-x4-lite", batch=64, width=480, height=270, frames=20, **common)
        return Axes(engines=engines, presets=("srgan-x4-lite", "srgan-x4"), batches=(8, 16, 32, 64, 128, 256),
                    tiles=((32, 4), (32, 8), (32, 12), (64, 6)), sizes=((240, 136), (480, 270), (960, 540)),
                    base=base)
    base = BenchConfig(preset="srgan-x4-lite", batch=16, width=128, height=128, frames=1, **common)
    return Axes(engines=engines, presets=("srgan-x4-tiny", "srgan-x4-lite", "srgan-x4"), batches=(1, 2, 4, 8, 16),
                tiles=((32, 4), (32, 8), (32, 12), (64, 6)), sizes=((64, 64), (128, 128), (160, 120)), base=base)


def points(axes: Axes, grid: str) -> list[tuple[str, BenchConfig]]:
    """(axis name, config) pairs; the base point appears once, tagged with every axis it belongs to."""
    b = axes.base
    if grid == "full":
        return [
            ("full", replace(b, engine=e, preset=p, batch=n, tile=t, halo=hh, width=w, height=h))
            for e, p, n, (t, hh), (w, h) in itertools.product(axes.engines, axes.presets, axes.batches, axes.tiles,
                                                            axes.sizes)
        ]
    out: dict[BenchConfig, list[str]] = {}

    def add(axis: str, cfg: BenchConfig) -> None:
        out.setdefault(cfg, []).append(axis)

    for e in axes.engines:
        add("engine", replace(b, engine=e))
    for p in axes.presets:
        # the full preset at a small size: ~5x the lite MACs per tile
        add("preset", replace(b, preset=p) if p != "srgan-x4" or b.width * b.height <= 64 * 64
            else replace(b, preset=p, width=64, height=64))
    for n in axes.batches:
        add("batch", replace(b, batch=n))
    for t, hh in axes.tiles:
        add("tile", replace(b, tile=t, halo=hh))
    for w, h in axes.sizes:
        add("size", replace(b, width=w, height=h))
    return [("+".join(axes_), cfg) for cfg, axes_ in out.items()]


def run_sweep(pts: list[tuple[str, BenchConfig]], *, repeats: int, weights: str | None = None,
              progress=lambda _m: None) -> list[dict]:
    """Run every point `repeats` times in rotated rounds; returns one merged record per point."""
    runs: list[list] = [[] for _ in pts]
    for r in range(repeats):
        k = r % len(pts)
        for i in list(range(k, len(pts))) + list(range(k)):
            axis, cfg = pts[i]
            progress(f"round {r + 1}/{repeats}: point {i + 1}/{len(pts)} ({axis}: {label(cfg)})")
            runs[i].append(run_bench(replace(cfg, repeats=1, weights=weights if cfg.preset in (None, "srgan-x4-lite")
                                             else None)))
    return [merge(axis, cfg, res) for (axis, cfg), res in zip(pts, runs)]


def label(c: BenchConfig) -> str:
    return f"{c.engine} {c.preset} b{c.batch} t{c.tile}+{c.halo} {c.width}x{c.height}"


def merge(axis: str, cfg: BenchConfig, results: list) -> dict:
    """One JSON record: medians over rounds of fps and of each stage's p50; pooled latency percentiles."""
    first = results[0]
    rec = {
        "axis": axis,
        "label": label(cfg),
        "engine": cfg.engine,
        "engine_desc": first.engine,
        "preset": cfg.preset,
        "batch": cfg.batch,
        "tile": cfg.tile,
        "halo": cfg.halo,
        "width": cfg.width,
        "height": cfg.height,
        "tiles_per_frame": first.tiles_per_frame,
        "halo_overhead": first.halo_overhead,
        "weights": first.weights,
        "rounds": len(results),
    }
    for v in ("engine", "streamsr"):
        fps = [res.variants[v].fps for res in results]
        samples = [x for res in results for x in res.variants[v].samples_ms]
        rec[f"{v}_fps"] = statistics.median(fps)
        rec[f"{v}_fps_rounds"] = fps
        rec[f"{v}_latency_ms"] = _summary(samples)
        rec[f"{v}_gflops"] = statistics.median([res.variants[v].gflops for res in results])
    rec["lr_mpix_s"] = rec["streamsr_fps"] * cfg.width * cfg.height / 1e6
    rec["stage_p50_ms"] = {s: statistics.median([res.stages[s].p50 for res in results]) for s in STAGES}
    return rec


def _summary(samples: list[float]) -> dict:
    s = summarize_ms(samples)
    return {"count": s.count, "p50": s.p50, "p95": s.p95, "p99": s.p99, "max": s.max, "mean": s.mean}


def markdown(records: list[dict]) -> str:
    """The sweep table: one row per point."""
    rows = [
        "| axis | engine | preset | batch | tile+halo | LR size | tiles | halo MACs | engine fps | streamsr fps "
        "| LR MP/s | engine GFLOP/s | p50 / p99 ms | upload / tile / infer / stitch / download p50 ms |",
        "|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in records:
        lat = r["streamsr_latency_ms"]
        st = " / ".join(f"{r['stage_p50_ms'][s]:.1f}" for s in STAGES)
        rows.append(
            f"| {r['axis']} | {r['engine']} | {r['preset']} | {r['batch']} | {r['tile']}+{r['halo']} | "
            f"{r['width']}x{r['height']} | {r['tiles_per_frame']} | {r['halo_overhead']:.2f}x | "
            f"{r['engine_fps']:.3g} | {r['streamsr_fps']:.3g} | {r['lr_mpix_s']:.3g} | {r['engine_gflops']:.1f} | "
            f"{lat['p50']:.0f} / {lat['p99']:.0f} | {st} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=None, help="timed frames per point per round")
    ap.add_argument("--grid", choices=("oat", "full"), default="oat")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--weights", default=None, help="weights for the srgan-x4-lite points (others: fresh init)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--stem", default="sweep")
    ap.add_argument("--axes-json", default=None, help="override axes, e.g. '{\"batches\": [1, 16]}' (testing)")
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    axes = default_axes(cuda)
    if args.axes_json:
        over = json.loads(args.axes_json)
        base_over = over.pop("base", {})
        if over.get("engines") and "engine" not in base_over:
            base_over["engine"] = over["engines"][0]  # the base point runs the first engine of the axis
        conv = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) for k, v in over.items()}
        axes = replace(axes, **conv, base=replace(axes.base, **base_over))
    base = replace(axes.base, device=args.device)
    if args.frames:
        base = replace(base, frames=args.frames)
    axes = replace(axes, base=base)
    pts = points(axes, args.grid)
    machine = machine_info()
    records = run_sweep(pts, repeats=args.repeats, weights=args.weights,
                        progress=lambda m: print(f"sweep: {m}", file=sys.stderr, flush=True))
    machine["load_avg_1m_end"] = machine_info()["load_avg_1m_start"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps({"machine": machine, "points": records}, indent=1))
    table = markdown(records)
    (args.out / f"{args.stem}.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
