"""PNG plots from the JSON that benchmarks/run.py and benchmarks/sweep.py write (needs matplotlib: the
project's `dev` extra).

    python benchmarks/plots.py [--results benchmarks/results] [--out benchmarks/plots]

- latency_cdf.png: per-frame latency CDF of every variant of bench.json (+ the pipeline's capture->emit);
- stages.png: per-stage p50 stacked bars (upload, tile, infer, stitch, download) for every sweep point;
- fps_vs_batch.png: engine-only and Enhancer fps vs batch size (sweep points on the batch axis), with the
  min..max over rounds as error bars.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
STAGES = ("uploaded", "tiled", "inferred", "stitched", "downloaded")
STAGE_NAMES = ("upload", "tile", "infer", "stitch", "download")
DPI = 80  # small PNGs: they are committed


def _subtitle(machine: dict) -> str:
    return (f"{machine.get('cpu')}, {machine.get('cores')} cores, torch {machine.get('torch')}, "
            f"{machine.get('date')} (1-min load avg {float(machine.get('load_avg_1m_start') or 0):.1f} at start)")


def _save(fig: plt.Figure, path: Path) -> Path:
    """Lay out, write at DPI and close `fig`; returns `path`."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def latency_cdf(bench: dict, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = {name: v["samples_ms"] for name, v in bench["variants"].items()}
    if bench.get("pipeline"):
        series["pipeline (file) captured->emitted"] = bench["pipeline"]["e2e_samples_ms"]
    if bench.get("live"):
        series["live (paced) captured->emitted"] = bench["live"]["e2e_samples_ms"]
        if bench["live"].get("e2e_received_samples_ms"):
            series["live captured->received (subscriber)"] = bench["live"]["e2e_received_samples_ms"]
    for name, xs in series.items():
        xs = np.sort(np.asarray([x for x in xs if x is not None], dtype=float))
        if xs.size:
            ax.step(xs, np.arange(1, xs.size + 1) / xs.size, where="post", label=f"{name} (n={xs.size})")
    ax.set_xscale("log")
    ax.set_xlabel("per-frame latency (ms, log)")
    ax.set_ylabel("fraction of frames")
    w, h = bench["lr_size"]
    ax.set_title(f"Latency CDF, {w}x{h} LR -> {4 * w}x{4 * h}\n{_subtitle(bench['machine'])}", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, out / "latency_cdf.png")


def stages(sweep: dict, out: Path) -> Path:
    pts = sweep["points"]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(pts) + 2), 4.5))
    bottom = np.zeros(len(pts))
    for st, name in zip(STAGES, STAGE_NAMES):
        vals = np.array([p["stage_p50_ms"][st] / 1e3 for p in pts])
        ax.bar(range(len(pts)), vals, bottom=bottom, label=name)
        bottom += vals
    ax.set_xticks(range(len(pts)))
    ax.set_xticklabels([f"{p['engine']} {p['preset'].replace('srgan-x4', 'x4')}\nb{p['batch']} {p['tile']}+{p['halo']} "
                        f"{p['width']}x{p['height']}" for p in pts], rotation=70, fontsize=6, ha="right")
    ax.set_ylabel("p50 per frame (s)")
    ax.set_title(f"Enhancer per-stage latency (p50, stacked)\n{_subtitle(sweep['machine'])}", fontsize=8)
    ax.legend(fontsize=7)
    return _save(fig, out / "stages.png")


def fps_vs_batch(sweep: dict, out: Path) -> Path:
    pts = sorted((p for p in sweep["points"] if "batch" in p["axis"].split("+")), key=lambda p: p["batch"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for v, marker in (("engine", "o"), ("streamsr", "s")):
        b = [p["batch"] for p in pts]
        med = np.array([p[f"{v}_fps"] for p in pts])
        lo = med - np.array([min(p[f"{v}_fps_rounds"]) for p in pts])
        hi = np.array([max(p[f"{v}_fps_rounds"]) for p in pts]) - med
        ax.errorbar(b, med, yerr=[lo, hi], marker=marker, capsize=3, label=f"{v} (median, min..max of rounds)")
    if pts:
        p0 = pts[0]
        ax.set_title(f"fps vs batch: {p0['engine']}, {p0['preset']}, {p0['width']}x{p0['height']} LR ({p0['tiles_per_frame']} tiles), "
                     f"{p0['tile']}+{p0['halo']}\n{_subtitle(sweep['machine'])}", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch (tiles per engine call)")
    ax.set_ylabel("frames/s")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out / "fps_vs_batch.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--out", type=Path, default=HERE / "plots")
    ap.add_argument("--bench", default="bench.json")
    ap.add_argument("--sweep", default="sweep.json")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    made = []
    b = args.results / args.bench
    if b.is_file():
        made.append(latency_cdf(json.loads(b.read_text()), args.out))
    s = args.results / args.sweep
    if s.is_file():
        sw = json.loads(s.read_text())
        made += [stages(sw, args.out), fps_vs_batch(sw, args.out)]
    if not made:
        print(f"plots: nothing to plot in {args.results} (run benchmarks/run.py and sweep.py first)", file=sys.stderr)
        return 1
    for p in made:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
