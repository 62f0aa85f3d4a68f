"""`run_bench`: set up one engine and one set of frames, build a timed runner per variant, run them all
interleaved over the repetitions, and summarise (see the package doc for what is measured and how)."""

from __future__ import annotations


import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..backends.torch_engine import TorchEngine
from ..enhancer import Enhancer
from ..spec import EnhancerSpec
from ..errors import InputError
from ..frame import Frame, Timeline, now_ns
from ..machine import machine_info
from ..metrics import LatencySummary, rate_fps, stage_summaries, summarize_ms
from ..model import (
    DEFAULT_PRESET,
    SHIPPED_WEIGHTS,
    Generator,
    Preset,
    count_macs,
    fold_batchnorm,
    get_preset,
    load_generator,
    read_weights_preset,
    save_weights,
    weights_digest,
)
from ..sources import FileSource
from ..tiling import TileGrid
from .baselines import EngineAsModel, loop_windows, tile_loop_upscale, whole_frame
from .clips import encode_clip, synthetic_frames
from .config import CEILING_DTYPES, VARIANTS, BenchConfig
from .results import BenchResult, CeilingResult, LiveResult, PipelineResult, VariantResult
from .runs import LiveRun, PipelineRun, run_live_once, run_pipeline_once
from .timing import device_ms, matmul_gflops, median, wall_ms

Say = Callable[[str], None]
Runner = Callable[[int], list[float]]
"""Times k frames of one variant; returns each frame's ms."""

CLIP_OPTIONS = {"crf": "18", "preset": "veryfast"}
"""Encoder options of the generated clips: near-lossless, and fast to make."""


def run_bench(config: BenchConfig, *, progress: Say | None = None) -> BenchResult:
    """Run every variant of `config` interleaved over `config.repeats` repetitions; see the package doc.

    progress: called with a short line before each step (the CLI shows it on stderr); never required.
    Raises StreamSRError subclasses for unusable inputs (weights, engine, clip).
    """
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="streamsr-bench-") as tmp:
        setup = _set_up(config, Path(tmp))
        # the tile and halo the Enhancer resolved (None asks for the engine's defaults): what the report names
        config = replace(config, tile=setup.enhancer.tiler.tile, halo=setup.enhancer.tiler.halo,
                         batch=setup.engine.batch)
        raw = _Raw()
        runners, run_streamsr = _runners(config, setup, raw.timelines, say)
        steps = _steps(config, setup, runners, raw, say)
        say(f"warm-up: {config.warmup} frame(s) per variant")
        if config.warmup:  # never timed: first calls pick kernels, allocate, fill caches
            for name, runner in runners.items():
                run_streamsr(config.warmup, keep=False) if name == "streamsr" else runner(config.warmup)
        for r in range(config.repeats):
            k = r % len(steps)  # rotated order, so no variant always runs first or after the same one
            for name, step in steps[k:] + steps[:k]:
                say(f"repetition {r + 1}/{config.repeats}: {name}")
                step()
        machine["load_avg_1m_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return _summarize(config, setup, raw, machine, wall_s=time.perf_counter() - t_start)


# ---- set-up ----------------------------------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class _Setup:
    """What every variant shares: weights, the engine and its Enhancer, the LR frames, their MACs."""

    tmpdir: Path
    weights_path: Path
    weights_desc: str
    enhancer: Enhancer
    preset: Preset
    frames: list[np.ndarray]
    grid: TileGrid
    macs_tiled: int
    macs_whole: int

    @property
    def engine(self):
        return self.enhancer.engine

    @property
    def device(self) -> torch.device:
        return self.enhancer.device


def _set_up(config: BenchConfig, tmpdir: Path) -> _Setup:
    weights_path, weights_desc = resolve_weights(config, tmpdir)
    spec = EnhancerSpec.resolve(weights_path, preset=config.preset, **config.engine_settings())
    enhancer = Enhancer.build(spec)
    preset = spec.preset
    count = max(config.frames, config.warmup)
    if config.clip is not None:
        frames = _clip_frames(Path(config.clip), count)
    else:
        frames = synthetic_frames(count, config.width, config.height, seed=config.seed)
    h, w = frames[0].shape[:2]
    tiler = enhancer.tiler
    grid = tiler.grid(h, w)
    return _Setup(tmpdir=tmpdir, weights_path=weights_path, weights_desc=weights_desc, enhancer=enhancer,
                  preset=preset, frames=frames, grid=grid,
                  macs_tiled=count_macs(preset, tiler.window, tiler.window) * grid.count,
                  macs_whole=count_macs(preset, h, w))


def _clip_frames(path: Path, count: int) -> list[np.ndarray]:
    with FileSource(path) as src:
        frames = []
        for f in src:
            frames.append(f.image)
            if len(frames) == count:
                break
    if not frames:
        raise InputError(f"clip {path} has no frames")
    return frames


def resolve_weights(config: BenchConfig, tmpdir: Path) -> tuple[Path, str]:
    """(weights path, one-line description). Saves a seeded fresh generator when no weights exist."""
    if config.weights is not None:
        path = Path(config.weights)
        preset = read_weights_preset(path)
        return path, f"{path} ({preset.name}, sha256 {weights_digest(path)})"
    preset_name = config.preset or DEFAULT_PRESET
    if SHIPPED_WEIGHTS.is_file() and read_weights_preset(SHIPPED_WEIGHTS).name == preset_name:
        return SHIPPED_WEIGHTS, f"shipped {SHIPPED_WEIGHTS.name} (sha256 {weights_digest(SHIPPED_WEIGHTS)})"
    preset = get_preset(preset_name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = Generator(preset)
    path = save_weights(model, tmpdir / f"{preset.name}-random.safetensors")
    why = "no shipped weights" if not SHIPPED_WEIGHTS.is_file() else "shipped weights are another preset"
    return path, f"freshly initialised {preset.name} (seed {config.seed}; {why}; speed does not depend on values)"


# ---- the timed variants ----------------------------------------------------------------------------------
@dataclass(slots=True)
class _Raw:
    """Everything the repetitions record, summarised at the end."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    fps_reps: dict[str, list[float]] = field(default_factory=dict)
    ceilings: dict[str, list[float]] = field(default_factory=dict)
    timelines: list[Timeline] = field(default_factory=list)
    pipeline: list[PipelineRun] = field(default_factory=list)
    live: list[LiveRun] = field(default_factory=list)


def _runners(config: BenchConfig, setup: _Setup, timelines: list[Timeline],
             say: Say) -> tuple[dict[str, Runner], Callable[..., list[float]]]:
    """The runner of every variant in `config` (engine and streamsr always), and streamsr's own runner,
    which appends its frames' timelines to `timelines` unless `keep=False` (warm-up)."""
    engine, device, frames, enhancer = setup.engine, setup.device, setup.frames, setup.enhancer
    h, w = frames[0].shape[:2]
    tiler = enhancer.tiler
    dev_tiles = [tiler.split(torch.from_numpy(f).to(device).permute(2, 0, 1).float().div_(255.0))[0]
                 for f in frames]

    def run_engine(k: int) -> list[float]:
        def one(i: int) -> None:
            tiles = dev_tiles[i % len(frames)]
            for j in range(0, tiles.shape[0], engine.batch):
                engine.run(tiles[j : j + engine.batch])

        with torch.inference_mode():
            return device_ms(one, k, device)

    def run_streamsr(k: int, keep: bool = True) -> list[float]:
        out = []
        for i in range(k):
            f = Frame(image=frames[i % len(frames)], seq=i)
            t0 = now_ns()
            f.timeline.stamp("captured", t0)
            f.timeline.stamp("decoded", t0)
            enhancer.enhance(f)
            out.append((f.timeline.downloaded - t0) / 1e6)
            if keep:
                timelines.append(f.timeline)
        return out

    runners: dict[str, Runner] = {"engine": run_engine, "streamsr": run_streamsr}
    if "tile-loop" in config.variants:
        # the paper's layout as a common script would load it, NCHW fp32 (BNs folded, which only helps
        # the baseline); not the engines' `fold_for_inference` form, whose sub-pixel tail is streamsr's work
        loop_model = fold_batchnorm(load_generator(setup.weights_path, fold=False)).to(device).eval()
        runners["tile-loop"] = lambda k: wall_ms(
            lambda i: tile_loop_upscale(loop_model, frames[i % len(frames)], tile=tiler.tile,
                                        pad=tiler.halo, device=device), k)
    if "tile-loop-engine" in config.variants and engine.fixed_window is not None:
        # the loop crops border tiles smaller (clipped context): a fixed-shape engine cannot take them
        say(f"skipping tile-loop-engine: {engine.describe()} only takes {engine.fixed_window}px windows")
    elif "tile-loop-engine" in config.variants:
        as_model = EngineAsModel(engine)
        runners["tile-loop-engine"] = lambda k: wall_ms(
            lambda i: tile_loop_upscale(as_model, frames[i % len(frames)], tile=tiler.tile,
                                        pad=tiler.halo, device=device), k)
    if "whole-frame" in config.variants:
        # the engine itself when it takes any window; fixed-shape engines (TensorRT) -> torch eager
        whole = engine if engine.fixed_window is None else TorchEngine(
            load_generator(setup.weights_path), device=device, precision=engine.precision, batch=1)
        runners["whole-frame"] = lambda k: wall_ms(lambda i: whole_frame(whole, frames[i % len(frames)]), k)
    if "bicubic" in config.variants:
        import cv2

        runners["bicubic"] = lambda k: wall_ms(
            lambda i: cv2.resize(frames[i % len(frames)], (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC), k)
    return runners, run_streamsr


def _steps(config: BenchConfig, setup: _Setup, runners: dict[str, Runner], raw: _Raw,
           say: Say) -> list[tuple[str, Callable[[], None]]]:
    """One repetition's steps: every variant, the ceilings, the live run and the pipeline (these join the
    rotation so they see the same machine conditions). Generates the clips they need."""
    h, w = setup.frames[0].shape[:2]
    pipe_clip: Path | None = None
    if config.pipeline_frames:
        if config.clip is not None:
            pipe_clip = Path(config.clip)
        else:
            say(f"generating a {config.pipeline_frames}-frame {w}x{h} clip")
            pipe_clip = encode_clip(setup.tmpdir / "bench-input.mp4",
                                    synthetic_frames(config.pipeline_frames, w, h, seed=config.seed + 1),
                                    options=CLIP_OPTIONS)
    n = config.frames
    steps: list[tuple[str, Callable[[], None]]] = []
    for name, runner in runners.items():
        raw.samples[name], raw.fps_reps[name] = [], []

        def step(name: str = name, runner: Runner = runner) -> None:
            ms = runner(n)
            raw.samples[name].extend(ms)
            raw.fps_reps[name].append(n / (sum(ms) / 1e3))
        steps.append((name, step))
    for d in config.ceiling_dtypes:
        raw.ceilings[d] = []
        steps.append((f"ceiling {d}", lambda d=d: raw.ceilings[d].append(
            matmul_gflops(config.ceiling_size, CEILING_DTYPES[d], setup.device))))
    if config.live_seconds:
        n_live = max(2, round(config.live_seconds * config.live_fps))
        say(f"generating a {n_live}-frame {w}x{h} {config.live_fps} fps clip for the live run")
        live_clip = encode_clip(setup.tmpdir / "live-input.mp4", synthetic_frames(n_live, w, h, seed=config.seed + 2),
                                fps=config.live_fps, options=CLIP_OPTIONS)
        steps.append(("live", lambda: raw.live.append(run_live_once(
            live_clip, setup.enhancer, setup.tmpdir / "live-output.mp4", x264_preset=config.x264_preset,
            crf=config.crf))))
    if pipe_clip is not None:
        steps.append(("pipeline", lambda: raw.pipeline.append(run_pipeline_once(
            pipe_clip, setup.enhancer, setup.tmpdir / "bench-output.mp4", warmup=config.pipeline_warmup,
            x264_preset=config.x264_preset, crf=config.crf))))
    return steps


# ---- summaries -------------------------------------------------------------------------------------------
def _summarize(config: BenchConfig, setup: _Setup, raw: _Raw, machine: dict[str, object], *,
               wall_s: float) -> BenchResult:
    h, w = setup.frames[0].shape[:2]
    # the loop baselines crop border tiles smaller (clipped context): count their real MACs
    loop_macs = sum(count_macs(setup.preset, y1 - y0, x1 - x0)
                    for y0, y1, x0, x1 in loop_windows(h, w, config.tile, config.halo))
    model_macs = {"engine": setup.macs_tiled, "streamsr": setup.macs_tiled, "tile-loop": loop_macs,
                  "tile-loop-engine": loop_macs, "whole-frame": setup.macs_whole, "bicubic": None}
    variants: dict[str, VariantResult] = {}
    for name, fr in raw.fps_reps.items():
        macs = model_macs[name]
        variants[name] = VariantResult(
            name=name,
            description=VARIANTS[name],
            latency=summarize_ms(raw.samples[name]),
            fps=median(fr),
            fps_reps=tuple(fr),
            lr_mpix_s=median(fr) * w * h / 1e6,
            gflops=None if macs is None else median([2 * macs * f / 1e9 for f in fr]),
            samples_ms=tuple(raw.samples[name]),
        )
    speedups = {
        name: median([a / b for a, b in zip(raw.fps_reps["streamsr"], raw.fps_reps[name])])
        for name in raw.fps_reps if name not in ("streamsr", "engine")
    }
    ceilings = tuple(
        CeilingResult(dtype=d, n=config.ceiling_size, gflops=median(v), gflops_best=max(v), gflops_reps=tuple(v))
        for d, v in raw.ceilings.items() if v
    )
    efficiency = None
    ceil_match = raw.ceilings.get(setup.engine.precision) or raw.ceilings.get("fp32")
    if ceil_match:
        efficiency = median([2 * setup.macs_tiled * f / 1e9 / c for f, c in zip(raw.fps_reps["engine"], ceil_match)])
    # captured == decoded for in-memory frames: only the enhancer's own stages
    stages = {k: v for k, v in stage_summaries(raw.timelines).items() if k != "decoded"}
    return BenchResult(
        config=config,
        machine=machine,
        weights=setup.weights_desc,
        engine=setup.engine.describe(),
        lr_size=(w, h),
        tiles_per_frame=setup.grid.count,
        macs_tiled=setup.macs_tiled,
        macs_whole=setup.macs_whole,
        variants=variants,
        speedups=speedups,
        stages=stages,
        ceilings=ceilings,
        efficiency=efficiency,
        pipeline=_pipeline_result(config, raw, stages, (w, h)) if raw.pipeline else None,
        live=_live_result(config, raw.live) if raw.live else None,
        wall_s=wall_s,
    )


def _pipeline_result(config: BenchConfig, raw: _Raw, stages: dict[str, LatencySummary],
                     size: tuple[int, int]) -> PipelineResult:
    runs = raw.pipeline
    tls = [t for run in runs for t in run.timelines]
    pstages: dict[str, LatencySummary] = {"decode": summarize_ms([x for run in runs for x in run.decode_ms])}
    per = stage_summaries(tls)
    pstages["decoded->uploaded"] = per.get("uploaded", summarize_ms([]))
    for st in ("tiled", "inferred", "stitched", "downloaded"):
        pstages[st] = per.get(st, summarize_ms([]))
    pstages["downloaded->emitted"] = per.get("emitted", summarize_ms([]))
    pstages["encode"] = summarize_ms([x for run in runs for x in run.encode_ms])
    e2e = [t.span_ms("captured", "emitted") for t in tls]
    p_fps = [run.fps for run in runs]
    iso_infer = stages.get("inferred")
    w, h = size
    return PipelineResult(
        clip=str(config.clip) if config.clip else f"generated {w}x{h} H.264, {config.pipeline_frames} frames",
        frames=len(tls),
        fps=median(p_fps),
        fps_reps=tuple(p_fps),
        ratio_engine=median([p / e for p, e in zip(p_fps, raw.fps_reps["engine"])]),
        ratio_streamsr=median([p / e for p, e in zip(p_fps, raw.fps_reps["streamsr"])]),
        stages=pstages,
        e2e=summarize_ms(e2e),
        e2e_samples_ms=tuple(x for x in e2e if x is not None),
        infer_slowdown=(pstages["inferred"].p50 / iso_infer.p50) if iso_infer else float("nan"),
        dropped=sum(run.dropped for run in runs),
        encoder=f"libx264 preset {config.x264_preset} crf {config.crf}",
    )


def _live_result(config: BenchConfig, runs: list[LiveRun]) -> LiveResult:
    e2e_live = [t.span_ms("captured", "emitted") for run in runs for t in run.stats.timelines]
    e2e_recv = [t.span_ms("captured", "received") for run in runs for t in run.received]
    return LiveResult(
        seconds=config.live_seconds,
        rate=config.live_fps,
        frames_in=sum(run.stats.frames_in for run in runs),
        frames_out=sum(run.stats.frames_out for run in runs),
        dropped=sum(run.stats.dropped for run in runs),
        uncounted=sum(run.stats.unfinished for run in runs),
        fps_out=median([rate_fps(run.stats.timelines) for run in runs]),
        e2e=summarize_ms(e2e_live),
        e2e_samples_ms=tuple(x for x in e2e_live if x is not None),
        received=sum(len(run.received) for run in runs),
        e2e_received=summarize_ms(e2e_recv),
        e2e_received_samples_ms=tuple(x for x in e2e_recv if x is not None),
    )
