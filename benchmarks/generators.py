"""Generator shapes side by side: frames per second of candidate presets through the real Enhancer on ONNX
Runtime (the CPU default engine), random weights, interleaved, at endoscopy LR sizes.

Chooses what to train (issue 26): the reference is today's default, srgan-x4-lite (progressive: two x2
upsamplers and a 9x9 tail at 4x) at the default tiling; the candidates keep the same residual body on the
LR grid with one sub-pixel x4 tail (`arch="lr-space"`, streamsr/model.py). Every shape, the reference too,
runs at several tile sizes (halo 6), since an engine that accepts any shape need not use small tiles.

Every repetition runs every (shape, tile) once on the same frame in turn, so a shared machine slows them
alike; the table gives the median ms per frame over repetitions, fps, and the speed ratio to the reference
measured in the same run.

    python benchmarks/generators.py [--reps 7] [--sizes 128x96,384x288] [--out benchmarks/results/generators.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from streamsr.backends.onnxruntime_engine import OnnxRuntimeEngine
from streamsr.machine import cpu_features, machine_info
from streamsr.enhancer import Enhancer
from streamsr.frame import Frame
from streamsr.model import Generator, Preset, count_macs, fold_for_inference
from streamsr.tiling import DEFAULT_HALO, DEFAULT_TILE, Tiler

REFERENCE = Preset(name="srgan-x4-lite", blocks=8, channels=32)
CANDIDATES = [(b, c) for b, c in ((4, 32), (6, 32), (8, 32), (12, 32), (16, 32), (8, 48), (16, 48), (16, 64))]


@dataclass
class Case:
    preset: Preset
    tile: int
    halo: int
    enhancer: Enhancer | None = None  # built once the engines exist
    times: dict[str, list[float]] = field(default_factory=dict)  # size -> seconds per frame


def random_model(preset: Preset) -> torch.nn.Module:
    torch.manual_seed(0)
    g = Generator(preset)
    if preset.arch == "lr-space":  # a fresh tail is zero; time a trained-looking one (no zero shortcuts)
        torch.nn.init.normal_(g.tail.weight, std=0.01)
    return fold_for_inference(g.eval())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--sizes", default="128x96,384x288")
    ap.add_argument("--tiles", default="32,64,96,128")
    ap.add_argument("--candidates", default="", help="lr-space shapes BxC, e.g. 4x32,8x32 (default: all)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    tiles = [int(x) for x in args.tiles.split(",")]
    if args.candidates:
        CANDIDATES[:] = [tuple(int(v) for v in c.split("x")) for c in args.candidates.split(",")]
    rng = np.random.default_rng(0)
    frames = {f"{w}x{h}": Frame(image=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), seq=0) for w, h in sizes}

    cases = [Case(preset=REFERENCE, tile=DEFAULT_TILE, halo=DEFAULT_HALO)]
    cases += [Case(preset=REFERENCE, tile=t, halo=DEFAULT_HALO) for t in tiles if t != DEFAULT_TILE]
    for b, c in CANDIDATES:
        p = Preset(name=f"lr-space {b}x{c}", blocks=b, channels=c, arch="lr-space")
        for t in tiles:
            cases.append(Case(preset=p, tile=t, halo=DEFAULT_HALO))
    cache = tempfile.mkdtemp(prefix="streamsr-gen-bench-")
    models: dict[str, OnnxRuntimeEngine] = {}
    for case in cases:
        key = case.preset.name
        if key not in models:
            models[key] = OnnxRuntimeEngine(random_model(case.preset), device=torch.device("cpu"),
                                            precision="fp32", batch=16, cache_dir=cache)  # fmt: skip
        case.enhancer = Enhancer(models[key], Tiler(tile=case.tile, halo=case.halo))
        for name, frame in frames.items():
            case.enhancer.enhance(frame)  # warm-up: ORT session and buffers
            case.times[name] = []
    for _ in range(args.reps):
        for case in cases:
            for name, frame in frames.items():
                t0 = time.perf_counter()
                case.enhancer.enhance(frame)
                case.times[name].append(time.perf_counter() - t0)

    info = machine_info()
    ref = {n: statistics.median(cases[0].times[n]) for n in frames}
    lines = [
        "# Generator shapes on ONNX Runtime (CPU), random weights",
        "",
        f"`python benchmarks/generators.py --reps {args.reps}`, {info['date']}; {info['cpu']}, "
        f"{torch.get_num_threads()} threads, CPU features: {', '.join(k for k, v in cpu_features().items() if v)}; "
        f"load average at the end {os.getloadavg()[0]:.1f}; torch {torch.__version__}. Median of {args.reps} interleaved repetitions per cell; ratio = "
        f"reference ms / this ms in the same run (reference: srgan-x4-lite, tile {DEFAULT_TILE}, halo {DEFAULT_HALO}).",
        "",
        "| generator | params | MMAC / LR px | tile (halo) | " + " | ".join(f"{n} ms (fps, x ref)" for n in frames) + " |",
        "|---|---:|---:|---|" + "---:|" * len(frames),
    ]
    for case in cases:
        params = sum(p.numel() for p in Generator(case.preset).parameters())
        macs = count_macs(case.preset, 1, 1) / 1e6
        cells = []
        for n in frames:
            ms = statistics.median(case.times[n]) * 1000
            cells.append(f"{ms:.1f} ({1000 / ms:.2f}, {ref[n] * 1000 / ms:.2f}x)")
        lines.append(f"| {case.preset.name} | {params / 1e3:.0f}k | {macs:.3f} | {case.tile} ({case.halo}) | "
                     + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
