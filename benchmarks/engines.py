"""Engine comparison: tiles/s of every engine on the same batches, interleaved, with its error vs fp32 eager.

CPU section (always): torch eager fp32 NCHW, eager fp32 channels_last (TorchEngine's default), eager bf16
channels_last, torch.compile fp32 (Inductor, freezing), ONNX Runtime fp32. CUDA section (when CUDA exists):
eager fp32, eager fp16, torch.compile fp16 + CUDA graph, TensorRT fp16 and fp32 (when torch-tensorrt imports).

Each repetition runs every variant once on the same batch in turn (so a noisy, shared machine slows them
alike); the table reports the median and best tiles/s over repetitions, the ratio of medians to eager
channels_last, tiles per second of process CPU time (all threads; a machine shared with other jobs
inflates wall time, while CPU time shows the work each engine needs, spin-waiting included), the build time (export / compile / TensorRT build, or cache load), and the output error vs
fp32 eager NCHW on tiles of the sample clip: PSNR over outputs clamped to [0, 1], max |diff| in 8-bit
levels, and the share of 8-bit output values that differ after rounding.

    python benchmarks/engines.py [--weights W.safetensors] [--reps 7] [--batch 16] [--cuda-batch 64]
                                 [--no-cpu] [--no-cuda] [--skip bf16,compile] [--json out.json]

Frame rates are tiles/s divided by the tiles of one frame (default tile 32, halo 6): 160x120 LR (5x4 = 20 tiles) on
CPU, 480x270 LR (15x9 = 135 tiles) on CUDA. Engine build artifacts go to a temporary folder (so build times
are cold builds) unless --engine-dir is given.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from streamsr.backends import build_engine, unavailable_reason
from streamsr.backends.torch_engine import TorchEngine
from streamsr.model import SHIPPED_WEIGHTS, Generator, fold_for_inference, load_generator
from streamsr.tiling import DEFAULT_HALO, DEFAULT_TILE, Tiler

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.mp4"
CPU_FRAME = (160, 120)
CUDA_FRAME = (480, 270)


@dataclass
class Row:
    name: str
    device: str
    precision: str
    build_s: float = float("nan")
    times: list[float] = field(default_factory=list)  # wall seconds per timed call(s)
    cpu_times: list[float] = field(default_factory=list)  # process CPU seconds (all threads) per timed call(s)
    tiles_per_call: int = 0
    psnr_db: float = float("nan")
    max_diff_255: float = float("nan")
    changed_pct: float = float("nan")
    note: str = ""

    def tiles_s(self) -> float:
        return self.tiles_per_call / statistics.median(self.times) if self.times else float("nan")

    def tiles_cpu_s(self) -> float:
        return self.tiles_per_call / statistics.median(self.cpu_times) if self.cpu_times else float("nan")

    def best_tiles_s(self) -> float:
        return self.tiles_per_call / min(self.times) if self.times else float("nan")


def sample_tiles(n: int, window: int, tile: int) -> torch.Tensor:
    """(n, 3, window, window) float32 tiles cut from the sample clip's frames (random tiles if it is absent)."""
    tiler = Tiler(tile=tile, halo=(window - tile) // 2)
    out: list[torch.Tensor] = []
    if SAMPLE.is_file():
        import av

        with av.open(str(SAMPLE)) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i % 7:
                    continue
                img = torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1).float() / 255
                out.append(tiler.split(img)[0])
                if sum(t.shape[0] for t in out) >= n:
                    break
    tiles = torch.cat(out) if out else torch.empty(0, 3, window, window)
    if tiles.shape[0] < n:
        tiles = torch.cat([tiles, torch.rand(n - tiles.shape[0], 3, window, window, generator=torch.Generator().manual_seed(0))])
    return tiles[:n].contiguous()


def error_stats(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float, float]:
    """(PSNR dB, max |diff| in 8-bit levels, % of 8-bit values changed) of clamped outputs."""
    a = out.detach().float().cpu().clamp(0, 1)
    b = ref.detach().float().cpu().clamp(0, 1)
    mse = float(((a - b) ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * math.log10(1 / mse)
    q = lambda t: (t * 255).round()  # noqa: E731
    changed = float((q(a) != q(b)).float().mean()) * 100
    return psnr, float((a - b).abs().max()) * 255, changed


def _model(weights: str | None, preset: str) -> tuple[Generator, str]:
    if weights:
        return load_generator(weights), f"weights {weights}"
    if SHIPPED_WEIGHTS.is_file():
        return load_generator(), f"shipped weights {SHIPPED_WEIGHTS.name}"
    torch.manual_seed(0)
    return fold_for_inference(Generator(preset)), f"randomly initialised {preset} (no shipped weights yet)"


def _cpu_variants(skip: set[str]) -> list[tuple[str, str, str, dict]]:
    """(label, engine, precision, extra kwargs)."""
    v = [
        ("eager fp32 NCHW", "torch", "fp32", {"channels_last": False}),
        ("eager fp32 channels_last", "torch", "fp32", {}),
        ("eager bf16 channels_last", "torch", "bf16", {}),
        ("torch.compile fp32", "torch-compile", "fp32", {}),
        ("onnxruntime fp32", "onnxruntime", "fp32", {}),
    ]
    short = {"eager fp32 NCHW": "nchw", "eager bf16 channels_last": "bf16", "torch.compile fp32": "compile",
             "onnxruntime fp32": "onnxruntime"}
    return [x for x in v if short.get(x[0]) not in skip]


def _cuda_variants(skip: set[str]) -> list[tuple[str, str, str, dict]]:
    v = [
        ("eager fp32 channels_last", "torch", "fp32", {}),
        ("eager fp16 channels_last", "torch", "fp16", {}),
        ("torch.compile fp16 + CUDA graph", "torch-compile", "fp16", {}),
        ("tensorrt fp16", "tensorrt", "fp16", {}),
        ("tensorrt fp32", "tensorrt", "fp32", {}),
    ]
    short = {"torch.compile fp16 + CUDA graph": "compile", "tensorrt fp16": "tensorrt", "tensorrt fp32": "tensorrt"}
    return [x for x in v if short.get(x[0]) not in skip]


def _build(label, name, precision, extra, model, device, batch, window, engine_dir, say) -> tuple[object | None, float, str]:
    reason = unavailable_reason(name, device, precision)
    if reason is not None:
        return None, float("nan"), reason
    say(f"building {label} on {device}")
    t0 = time.perf_counter()
    try:
        if name == "torch":
            engine = TorchEngine(copy.deepcopy(model), device=device, precision=precision, batch=batch, **extra)
        else:
            engine = build_engine(name, copy.deepcopy(model), device=device, precision=precision, batch=batch,
                                  window=window, cache_dir=engine_dir)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    except Exception as e:  # noqa: BLE001 - a benchmark reports a failed variant and goes on
        return None, float("nan"), f"build failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return engine, time.perf_counter() - t0, ""


def run_section(variants, *, model, device, batch, window, tile, reps, engine_dir, say, inner: int = 1) -> list[Row]:
    tiles = sample_tiles(batch, window, tile)
    ref_engine = TorchEngine(copy.deepcopy(model), device=torch.device("cpu"), precision="fp32", batch=batch,
                             channels_last=False)
    with torch.inference_mode():
        ref = ref_engine.run(tiles)
    rows, engines = [], []
    for label, name, precision, extra in variants:
        row = Row(name=label, device=str(device), precision=precision, tiles_per_call=batch * inner)
        engine, row.build_s, row.note = _build(label, name, precision, extra, model, device, batch, window,
                                               engine_dir, say)
        if engine is not None:
            x = tiles.to(device)
            with torch.inference_mode():
                out = engine.run(x)  # warm-up (and the error sample)
            row.psnr_db, row.max_diff_255, row.changed_pct = error_stats(out, ref)
            if getattr(engine, "reused", False):
                row.note = "cached artifact"
        rows.append(row)
        engines.append((engine, tiles.to(device)))
    for r in range(reps):
        say(f"repetition {r + 1}/{reps}")
        for row, (engine, x) in zip(rows, engines):
            if engine is None:
                continue
            with torch.inference_mode():
                if device.type == "cuda":
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    for _ in range(inner):
                        engine.run(x)
                    end.record()
                    end.synchronize()
                    row.times.append(start.elapsed_time(end) / 1000)
                else:
                    t0, c0 = time.perf_counter(), time.process_time()
                    for _ in range(inner):
                        engine.run(x)
                    row.times.append(time.perf_counter() - t0)
                    row.cpu_times.append(time.process_time() - c0)
    return rows


def frame_section(names, *, model, batch, tile, halo, frame, reps, engine_dir, say) -> list[dict]:
    """Whole-frame Enhancer.upscale (split -> engine in chunks of `batch` -> stitch) per engine, interleaved:
    what a CPU user sees per frame, partial last chunk and tiling overhead included."""
    from streamsr.enhancer import Enhancer

    tiler = Tiler(tile=tile, halo=halo)
    w, h = frame
    image = sample_tiles(1, max(w, h), max(w, h))[0][:, :h, :w].contiguous()  # a real picture when the clip exists
    runs = []
    for label, name, extra in names:
        engine, build_s, note = _build(label, name, "fp32", extra, model, torch.device("cpu"), batch,
                                       tiler.window, engine_dir, say)
        runs.append({"name": label, "build_s": build_s, "note": note, "ms": [],
                     "enhancer": Enhancer(engine, tiler) if engine is not None else None})
    with torch.inference_mode():
        for run in runs:
            if run["enhancer"] is not None:
                run["enhancer"].upscale(image)
        for r in range(reps):
            say(f"frames: repetition {r + 1}/{reps}")
            for run in runs:
                if run["enhancer"] is not None:
                    t0 = time.perf_counter()
                    run["enhancer"].upscale(image)
                    run["ms"].append((time.perf_counter() - t0) * 1000)
    for run in runs:
        run.pop("enhancer")
    return runs


def markdown(rows: list[Row], *, baseline: str, frame: tuple[int, int], tile: int) -> str:
    base = next((r for r in rows if r.name == baseline and r.times), None)
    per_frame = math.ceil(frame[0] / tile) * math.ceil(frame[1] / tile)
    lines = [
        f"| engine | tiles/s (median) | best | x {baseline} | tiles per CPU-s | x | frames/s {frame[0]}x{frame[1]} | build s | PSNR vs fp32 dB | max diff /255 | 8-bit values changed | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if not r.times:
            lines.append(f"| {r.name} | – | – | – | – | – | – | – | – | – | – | {r.note} |")
            continue
        ratio = r.tiles_s() / base.tiles_s() if base else float("nan")
        cpu_ratio = r.tiles_cpu_s() / base.tiles_cpu_s() if base and r.cpu_times else float("nan")
        cpu = f"{r.tiles_cpu_s():.2f} | {cpu_ratio:.2f}" if r.cpu_times else "– | –"
        psnr = "identical" if r.psnr_db == float("inf") else f"{r.psnr_db:.1f}"
        lines.append(
            f"| {r.name} | {r.tiles_s():.2f} | {r.best_tiles_s():.2f} | {ratio:.2f} | {cpu} | {r.tiles_s() / per_frame:.2f} | "
            f"{r.build_s:.1f} | {psnr} | {r.max_diff_255:.3f} | {r.changed_pct:.3f}% | {r.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="generator weights (.safetensors); default shipped, else random init")
    p.add_argument("--preset", default="srgan-x4-lite", help="preset when no weights are found")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE)
    p.add_argument("--halo", type=int, default=DEFAULT_HALO)
    p.add_argument("--batch", type=int, default=16, help="CPU tiles per call")
    p.add_argument("--cuda-batch", type=int, default=64, help="CUDA tiles per call")
    p.add_argument("--cuda-inner", type=int, default=20, help="CUDA calls per timed repetition")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--skip", default="", help="comma list of nchw, bf16, compile, onnxruntime, tensorrt")
    p.add_argument("--no-cpu", action="store_true")
    p.add_argument("--no-cuda", action="store_true")
    p.add_argument("--no-frames", action="store_true", help="skip the whole-frame Enhancer comparison")
    p.add_argument("--engine-dir", help="cache folder for built engines (default: a fresh temporary folder)")
    p.add_argument("--json", type=Path, help="also write every figure here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    window = args.tile + 2 * args.halo
    say = lambda msg: print(f"engines: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    model, model_desc = _model(args.weights, args.preset)
    result: dict[str, object] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "model": model_desc, "preset": model.preset.name, "window": window,
    }
    print(f"# engines: {model.preset.name}, window {window} ({args.tile}+2x{args.halo}), {model_desc}")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {platform.processor() or platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="streamsr-engines-") as tmp:
        engine_dir = args.engine_dir or tmp
        if not args.no_cpu:
            rows = run_section(_cpu_variants(skip), model=model, device=torch.device("cpu"), batch=args.batch,
                               window=window, tile=args.tile, reps=args.reps, engine_dir=engine_dir, say=say)
            print(f"\n## CPU, batch {args.batch}, {args.reps} interleaved repetitions\n")
            print(markdown(rows, baseline="eager fp32 channels_last", frame=CPU_FRAME, tile=args.tile))
            result["cpu"] = {"batch": args.batch, "rows": [asdict(r) for r in rows]}
            if not args.no_frames:
                names = [("eager fp32 channels_last", "torch", {})]
                if "onnxruntime" not in skip:
                    names.append(("onnxruntime fp32", "onnxruntime", {}))
                runs = frame_section(names, model=model, batch=args.batch, tile=args.tile, halo=args.halo,
                                     frame=CPU_FRAME, reps=args.reps, engine_dir=engine_dir, say=say)
                base_ms = statistics.median(runs[0]["ms"]) if runs[0]["ms"] else float("nan")
                print(f"\n## CPU, whole {CPU_FRAME[0]}x{CPU_FRAME[1]} LR frames through Enhancer.upscale, batch {args.batch}\n")
                print("| engine | ms/frame (median) | p95 | frames/s | x eager |\n|---|---:|---:|---:|---:|")
                for run in runs:
                    if not run["ms"]:
                        print(f"| {run['name']} | – | – | – | – | {run['note']} |")
                        continue
                    ms = sorted(run["ms"])
                    med = statistics.median(ms)
                    p95 = ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)]
                    print(f"| {run['name']} | {med:.0f} | {p95:.0f} | {1000 / med:.2f} | {base_ms / med:.2f} |")
                result["cpu_frames"] = runs
        if not args.no_cuda and torch.cuda.is_available():
            dev = torch.device("cuda")
            rows = run_section(_cuda_variants(skip), model=model, device=dev, batch=args.cuda_batch, window=window,
                               tile=args.tile, reps=args.reps, engine_dir=engine_dir, say=say, inner=args.cuda_inner)
            print(f"\n## CUDA ({torch.cuda.get_device_name(dev)}), batch {args.cuda_batch}, "
                  f"{args.cuda_inner} calls x {args.reps} interleaved repetitions\n")
            print(markdown(rows, baseline="eager fp32 channels_last", frame=CUDA_FRAME, tile=args.tile))
            result["cuda"] = {"batch": args.cuda_batch, "device": torch.cuda.get_device_name(dev),
                              "rows": [asdict(r) for r in rows]}
        elif not args.no_cuda:
            print("\n(no CUDA device: CUDA section skipped)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
