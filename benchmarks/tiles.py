"""Tile size for engines that take any window: ms per frame and the seam error of each tile, side by side.

For the given weights (default: the shipped default) on ONNX Runtime, the CPU default engine: each tile edge
(halo fixed at tiling.DEFAULT_HALO) at several LR frame sizes, timed interleaved (every tile once per
repetition, so a shared machine slows them alike), plus the padded work (window pixels / frame pixels) and
the seam error against the whole frame (streamsr.bench.seams: worst-frame PSNR and the largest 8-bit
difference, on the sample clip's frames resized to each size). The table behind tiling.ANY_WINDOW_TILE.

    python benchmarks/tiles.py [--weights W] [--tiles 32,48,64,96,128] [--sizes 128x96,384x288,640x480]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from streamsr.backends.onnxruntime_engine import OnnxRuntimeEngine
from streamsr.bench import seams
from streamsr.machine import cpu_features, cpu_model
from streamsr.enhancer import Enhancer
from streamsr.frame import Frame
from streamsr.model import load_generator, resolve_weights
from streamsr.tiling import DEFAULT_HALO, Tiler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--tiles", default="32,48,64,96,128")
    ap.add_argument("--sizes", default="128x96,384x288,640x480")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    tiles = [int(t) for t in args.tiles.split(",")]
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    path = resolve_weights(args.weights)
    model = load_generator(path)
    engine = OnnxRuntimeEngine(load_generator(path), device=torch.device("cpu"), precision="fp32", batch=16,
                               cache_dir=tempfile.mkdtemp(prefix="streamsr-tiles-"))  # fmt: skip
    enhancers = {t: Enhancer(engine, Tiler(tile=t, halo=DEFAULT_HALO)) for t in tiles}
    clip = seams.sample_frames(every=10)  # (3, 96, 128) frames of the shipped sample clip
    frames, seam = {}, {}
    for w, h in sizes:
        resized = [F.interpolate(x[None], size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)
                   for x in clip]  # fmt: skip
        frames[(w, h)] = Frame(image=(resized[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy(), seq=0)
        for t in tiles:
            seam[(w, h, t)] = seams.seam_error(enhancers[t], model, resized[:2])
    times: dict[tuple[int, int, int], list[float]] = {}
    for key, frame in frames.items():
        for t in tiles:
            enhancers[t].enhance(frame)  # warm-up
            times[(*key, t)] = []
    for _ in range(args.reps):
        for key, frame in frames.items():
            for t in tiles:
                t0 = time.perf_counter()
                enhancers[t].enhance(frame)
                times[(*key, t)].append(time.perf_counter() - t0)

    lines = [
        f"# Tile size on ONNX Runtime (CPU): {path.name}",
        "",
        f"`python benchmarks/tiles.py`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu_model()}, "
        f"{torch.get_num_threads()} threads, CPU features: {', '.join(k for k, v in cpu_features().items() if v)}; "
        f"load average at the end {os.getloadavg()[0]:.1f}. Halo {DEFAULT_HALO}; median of {args.reps} "
        "interleaved repetitions; x fastest: this tile's ms over the fastest tile's at that size. Seams: tiled vs "
        "whole-frame output of the sample clip's frames resized to the size (worst PSNR, largest 8-bit difference).",
        "",
        "| LR size | tile | window | work / frame px | ms per frame | x fastest | seam PSNR dB | seam max diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w, h in sizes:
        med = {t: statistics.median(times[(w, h, t)]) * 1000 for t in tiles}
        best = min(med.values())
        for t in tiles:
            win = t + 2 * DEFAULT_HALO
            work = math.ceil(w / t) * math.ceil(h / t) * win * win / (w * h)
            p, d = seam[(w, h, t)]
            lines.append(f"| {w}x{h} | {t} | {win} | {work:.2f} | {med[t]:.1f} | {med[t] / best:.2f} | "
                         f"{p:.1f} | {d} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
