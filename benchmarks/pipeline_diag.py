"""Why is pipeline fps below engine-only fps? Take the pipeline apart, interleaved on the same frames.

    python benchmarks/pipeline_diag.py [--size 64x64] [--frames 6] [--rounds 3] [--out benchmarks/results]

Variants (all with the same engine, tiler and frames; fps from the emitted stamps after 1 warm-up frame,
the engine/enhancer loops from their summed frame times):
- engine: engine calls only, on pre-cut tiles;
- enhancer: Enhancer.enhance in a plain loop (adds upload/tile/stitch/download);
- pipe mem->null: run_pipeline over in-memory frames into a sink that discards (adds the threads/queues);
- pipe file->null: + PyAV decode in the reader thread;
- pipe mem->file: + x264 encode in the writer thread (no decode);
- pipe file->file: the real thing (decode + encode), x264 preset medium, as `streamsr enhance`;
- pipe file->file ultrafast: the same with x264 preset ultrafast (how much the encoder's own cost matters).
Engine: `--engine` (default auto: the CPU default, ONNX Runtime since it became the default).
cpu/frame is the process's user+sys CPU seconds per frame (getrusage: all threads, incl. x264/ffmpeg
workers); load is the 1-minute load average when the variant ran (other jobs share this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

from streamsr.backends import select_engine
from streamsr.model import load_generator
from streamsr.spec import EnhancerSpec
from streamsr.bench import BenchConfig, machine_info
from streamsr.bench.clips import encode_clip, synthetic_frames
from streamsr.bench.runner import CLIP_OPTIONS, resolve_weights
from streamsr.testing import IterableSource
from streamsr.enhancer import Enhancer
from streamsr.frame import Frame, now_ns
from streamsr.metrics import rate_fps
from streamsr.pipeline import PipelineConfig, run_pipeline
from streamsr.sinks import EncoderOptions, FileSink
from streamsr.sources import FileSource, StreamInfo
from streamsr.tiling import Tiler

HERE = Path(__file__).resolve().parent


class NullSink:
    def write(self, frame: Frame) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _memory_source(images) -> IterableSource:
    """The images as a FrameSource, each frame stamped captured/decoded when it is taken."""
    def frames():
        for i, img in enumerate(images):
            f = Frame(image=img, seq=i, pts=i, time_base=None)
            t = now_ns()
            f.timeline.stamp("captured", t)
            f.timeline.stamp("decoded", t)
            yield f

    h, w = images[0].shape[:2]
    info = StreamInfo(width=w, height=h, rate=Fraction(30), time_base=Fraction(1, 30), frames=len(images),
                      duration_s=None, codec="memory", has_audio=False)
    return IterableSource(frames(), info=info)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="64x64")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preset", default="srgan-x4-lite")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--engine", default="auto", help="engine name or auto (the CPU default)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--stem", default=None, help="output file stem (default: pipeline_diag-WxH)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="streamsr-diag-") as tmp:
        return diagnose(args, Path(tmp))


def diagnose(args: argparse.Namespace, tmp: Path) -> int:
    """Run every variant `args.rounds` times (rotated), write OUT/STEM.json and .md; scratch files in tmp."""
    w, h = (int(v) for v in args.size.split("x"))
    n = args.frames
    cfg = BenchConfig(preset=args.preset, weights=args.weights, width=w, height=h)
    weights, weights_desc = resolve_weights(cfg, tmp)
    tiler = Tiler()
    spec = EnhancerSpec.resolve(weights, engine=args.engine, device="cpu", batch=args.batch, tile=tiler.tile,
                                halo=tiler.halo)
    engine = select_engine(load_generator(spec.weights), spec)
    enhancer = Enhancer(engine, tiler)
    images = synthetic_frames(n, w, h)
    clip = encode_clip(tmp / "in.mp4", images, fps=30, options=CLIP_OPTIONS)
    tiles = [tiler.split(torch.from_numpy(im).permute(2, 0, 1).float().div(255))[0] for im in images]
    out = tmp / "out.mp4"

    def file_sink(preset: str):
        return lambda: FileSink(out, width=4 * w, height=4 * h, rate=30, options=EncoderOptions(preset=preset),
                                overwrite=True)

    def loop_engine() -> float:
        t = 0.0
        with torch.inference_mode():
            for i in range(1, n):  # frame 0: warm-up, as the pipelines
                t0 = time.perf_counter()
                for j in range(0, tiles[i].shape[0], engine.batch):
                    engine.run(tiles[i][j : j + engine.batch])
                t += time.perf_counter() - t0
        return (n - 1) / t

    def loop_enhancer() -> float:
        t = 0.0
        for i, f in enumerate(_memory_source(images)):
            t0 = time.perf_counter()
            enhancer.enhance(f)
            if i:
                t += time.perf_counter() - t0
        return (n - 1) / t

    def pipe(source_kind: str, sink_factory):
        def run() -> float:
            src = FileSource(clip) if source_kind == "file" else _memory_source(images)
            try:
                stats = run_pipeline(src, enhancer, [sink_factory()], config=PipelineConfig())
            finally:
                src.close()
            return rate_fps(stats.timelines)
        return run

    variants = {
        "engine": loop_engine,
        "enhancer": loop_enhancer,
        "pipe mem->null": pipe("mem", NullSink),
        "pipe file->null": pipe("file", NullSink),
        "pipe mem->file": pipe("mem", file_sink("medium")),
        "pipe file->file": pipe("file", file_sink("medium")),
        "pipe file->file ultrafast": pipe("file", file_sink("ultrafast")),
    }
    names = list(variants)
    fps: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    load: dict[str, list[float]] = {k: [] for k in names}
    loop_engine()  # warm-up
    for r in range(args.rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            print(f"diag: round {r + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            c0 = _cpu_s()
            fps[name].append(variants[name]())
            cpu[name].append((_cpu_s() - c0) / n)
            load[name].append(os.getloadavg()[0])
    eng = fps["engine"]
    rows = []
    for name in names:
        ratio = statistics.median([a / b for a, b in zip(fps[name], eng)])
        rows.append({"variant": name, "fps": statistics.median(fps[name]), "fps_rounds": fps[name],
                     "ratio_to_engine": ratio, "cpu_s_per_frame": statistics.median(cpu[name]),
                     "load_avg": statistics.median(load[name])})
    machine = machine_info()
    md = [f"- {machine['date']}, {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
          f"(threads {machine['torch_threads']}); {engine.describe()}; {w}x{h} LR, {args.preset} ({weights_desc}), "
          f"{n} frames per run (1 warm-up), {args.rounds} interleaved rounds; ratio = median of per-round ratios",
          "", "| variant | fps | / engine | CPU s per frame (all threads) | load avg |",
          "|---|---:|---:|---:|---:|"]
    for row in rows:
        md.append(f"| {row['variant']} | {row['fps']:.3f} | {row['ratio_to_engine']:.2f} | "
                  f"{row['cpu_s_per_frame']:.2f} | {row['load_avg']:.1f} |")
    text = "\n".join(md)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.stem or f"pipeline_diag-{w}x{h}"
    (args.out / f"{stem}.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    (args.out / f"{stem}.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
