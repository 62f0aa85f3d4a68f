"""Benchmarks of the critical path: per-stage and end-to-end latency, throughput, efficiency, baselines.

One call, `run_bench(config)`, measures side by side on the same frames, model and weights:
- `engine`: the engine alone on the frame's pre-cut tiles (the upper bound for everything else);
- `streamsr`: the Enhancer (upload, vectorized tiling, batched inference, stitch, download), per-stage
  latency from the Frame timelines;
- `tile-loop`: a straightforward per-tile Python loop, the way common SR inference scripts tile (crop each
  tile with its padding, run the model on a batch of 1, paste the centre back; the paper's layout with BNs
  folded, NCHW fp32, no_grad);
- `tile-loop-engine`: the same loop but calling our engine (its runtime, layout and `fold_for_inference`
  graph) with one tile per call, so the gain of batching + vectorized tiling is separated from the engine's;
- `whole-frame`: the same model on the whole frame, no tiling;
- `bicubic`: OpenCV INTER_CUBIC;
- `ceiling`: a large matmul (fp32, and bf16/fp16 when asked) — the machine's practical FLOP/s limit;
- `pipeline`: the real `run_pipeline` (FileSource decode thread ‖ Enhancer ‖ FileSink encode thread) on a
  generated (or given) clip, with the decode and encode time of every frame measured by thin wrappers.

Machines are noisy (other jobs share the CPU), so the variants run interleaved: every repetition runs each
variant once, in a rotated order, and ratios are medians of the per-repetition ratios (paired in time).
Warm-up frames are run before the first repetition and never timed. Latency figures are tails
(p50/p95/p99/max over all timed frames, never clipped); throughputs are medians over repetitions.

On CUDA the engine-only and matmul timings use CUDA events (one synchronize per repetition, none per frame);
the other variants end with a device-to-host copy, so their wall-clock time is the true frame latency.

The library never prints: progress goes to an optional callback, results are frozen dataclasses with
`to_dict()` (JSON) and `format_markdown()` (the table `streamsr bench` prints).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .backends import EngineConfig, select_engine
from .backends.torch_engine import TorchEngine
from .enhancer import Enhancer
from .errors import InputError
from .frame import Frame, Timeline, now_ns
from .metrics import LatencySummary, stage_summaries, summarize_ms
from .model import (
    DEFAULT_PRESET,
    SHIPPED_WEIGHTS,
    Generator,
    count_macs,
    fold_batchnorm,
    get_preset,
    load_generator,
    read_weights_preset,
    save_weights,
    weights_digest,
)
from .tiling import DEFAULT_HALO, DEFAULT_TILE, Tiler

__all__ = [
    "BenchConfig",
    "BenchResult",
    "VariantResult",
    "PipelineResult",
    "LiveResult",
    "CeilingResult",
    "standard_config",
    "run_bench",
    "format_markdown",
    "make_clip",
    "synthetic_frames",
    "machine_info",
    "VARIANTS",
]

VARIANTS: dict[str, str] = {
    "engine": "engine only, on pre-cut tiles (batched)",
    "streamsr": "Enhancer: upload, vectorized tiling, batched engine, stitch, download",
    "tile-loop": "per-tile Python loop as common SR scripts do (crop+pad, model on 1 tile, paste; NCHW fp32)",
    "tile-loop-engine": "per-tile Python loop calling our engine with 1 tile per call",
    "whole-frame": "the engine on the whole frame, no tiling (torch eager for fixed-window engines)",
    "bicubic": "OpenCV INTER_CUBIC 4x",
}
"""Names `BenchConfig.variants` accepts, with what each one times (input: host uint8 LR frame; output: host
uint8 4x frame, except `engine`, which times only the engine calls)."""

BASELINES = ("tile-loop", "tile-loop-engine", "whole-frame", "bicubic")
CEILING_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# ---- configuration ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class BenchConfig:
    """What to measure.

    preset/weights: the generator; weights None -> the shipped file when it exists (and fits `preset`),
    else a freshly initialised generator (seeded with `seed`): speed does not depend on weight values, and
    the result says which weights were used. preset None -> the weights' preset, else DEFAULT_PRESET.
    engine/device/precision/batch: passed to `select_engine` (see EngineConfig).
    tile/halo: LR pixels (see Tiler). width/height: LR input frame size in pixels (even, for yuv420p).
    clip: a video file whose first frames (and whole length, for the pipeline) replace the generated frames;
    its size then overrides width/height.
    frames: timed frames per variant per repetition; warmup: untimed frames per variant before the first
    repetition; repeats: repetitions (medians are taken over them).
    variants: which of VARIANTS to time ("engine" and "streamsr" are always timed).
    pipeline_frames: length of the generated clip pushed through run_pipeline each repetition (0: skip);
    pipeline_warmup: leading pipeline frames left out of its figures (queue fill, first-call overheads).
    x264_preset/crf: encoder options of the pipeline's FileSink (the `streamsr enhance` defaults).
    live_seconds: length of a live run per repetition (0: skip): a generated `live_fps` clip replayed at its
    frame rate through run_pipeline(live=True) into a FileSink; measures dropped frames and the latency a
    live viewer sees (captured = when the paced replay releases the frame).
    ceiling_dtypes: matmul dtypes measured for the FLOP/s ceiling (empty: skip); ceiling_size: matmul edge.
    """

    preset: str | None = None
    weights: str | None = None
    engine: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    batch: int = 16
    tile: int = DEFAULT_TILE
    halo: int = DEFAULT_HALO
    width: int = 128
    height: int = 96
    clip: str | None = None
    frames: int = 4
    warmup: int = 1
    repeats: int = 5
    variants: tuple[str, ...] = ("engine", "streamsr", *BASELINES)
    pipeline_frames: int = 12
    live_seconds: float = 0.0
    live_fps: int = 30
    pipeline_warmup: int = 2
    x264_preset: str = "medium"
    crf: int = 18
    ceiling_dtypes: tuple[str, ...] = ("fp32",)
    ceiling_size: int = 2048
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch", "tile", "width", "height", "frames", "repeats", "ceiling_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"BenchConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("halo", "warmup", "pipeline_frames", "pipeline_warmup", "live_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"BenchConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"BenchConfig.width/height must be even (yuv420p), got {self.width}x{self.height}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"BenchConfig.variants: unknown {unknown}; known: {', '.join(VARIANTS)}")
        bad = [d for d in self.ceiling_dtypes if d not in CEILING_DTYPES]
        if bad:
            raise ValueError(f"BenchConfig.ceiling_dtypes: unknown {bad}; known: {', '.join(CEILING_DTYPES)}")
        if self.live_fps < 1:
            raise ValueError(f"BenchConfig.live_fps must be >= 1, got {self.live_fps}")
        if self.pipeline_frames and self.pipeline_frames <= self.pipeline_warmup + 1:
            raise ValueError(
                f"BenchConfig.pipeline_frames ({self.pipeline_frames}) must exceed pipeline_warmup + 1 "
                f"({self.pipeline_warmup + 1}) so that a rate can be measured"
            )


def standard_config(*, quick: bool = False, cuda: bool | None = None, **overrides: object) -> BenchConfig:
    """The set `streamsr bench` runs. CPU: small frames, since a 2-core CPU does ~40 lite tiles/s (so
    `--quick` ends in about 35 s there, the full set in about 90 s); CUDA: 1080p output (480x270 LR).
    `overrides` replace fields (None values are ignored)."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda:
        base = dict(width=480, height=270, frames=10 if quick else 50, warmup=3, repeats=3 if quick else 5,
                    pipeline_frames=40 if quick else 150, pipeline_warmup=5, ceiling_size=8192,
                    live_seconds=3.0 if quick else 10.0,
                    ceiling_dtypes=("fp32", "fp16"))
    elif quick:
        # 64x64 LR = 4 tiles of 32 (one batch): ~0.1 s per frame for the lite preset on 2 quiet cores.
        base = dict(width=64, height=64, frames=4, warmup=1, repeats=5, pipeline_frames=20, pipeline_warmup=2,
                    live_seconds=2.0,
                    variants=("engine", "streamsr", "tile-loop", "whole-frame", "bicubic"),
                    ceiling_dtypes=("fp32",), ceiling_size=1536)
    else:
        # bf16 only where the CPU has bf16 arithmetic: on AVX2-only CPUs torch's bf16 matmul ran at
        # 0.17 GFLOP/s (vs 33 fp32, 2-core EPYC, 2026-11-25), i.e. minutes per measurement, and irrelevant.
        # 128x96 LR (the sample clip's size) = 12 tiles: ~0.25 s per frame, the per-tile loop ~1.1 s
        base = dict(width=128, height=96, frames=3, warmup=1, repeats=5, pipeline_frames=12, pipeline_warmup=2,
                    live_seconds=6.0,
                    ceiling_dtypes=("fp32", "bf16") if cpu_has_bf16() else ("fp32",))
    base.update({k: v for k, v in overrides.items() if v is not None})
    if base.get("precision") in ("bf16", "fp16") and base["precision"] not in base["ceiling_dtypes"]:
        base["ceiling_dtypes"] = (*base["ceiling_dtypes"], base["precision"])  # the engine's own ceiling
    return BenchConfig(**base)


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 arithmetic (AVX512-BF16 or AMX-BF16), from /proc/cpuinfo flags."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# ---- results ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class VariantResult:
    """One variant over all repetitions.

    latency: per-frame ms (input host frame -> output host frame; engine: engine calls only), pooled over
    repetitions. fps: median over repetitions of frames / summed frame time (frames/s); fps_reps: each
    repetition's. lr_mpix_s: fps x LR megapixels per frame. gflops: model FLOP/s actually computed
    (2 FLOP per MAC, incl. halo overlap), median over repetitions; None for bicubic. samples_ms: every timed
    frame's latency (for CDF plots).
    """

    name: str
    description: str
    latency: LatencySummary
    fps: float
    fps_reps: tuple[float, ...]
    lr_mpix_s: float
    gflops: float | None
    samples_ms: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CeilingResult:
    """Matmul FLOP/s ceiling: dtype, n (square matmul edge), GFLOP/s median and best over repetitions."""

    dtype: str
    n: int
    gflops: float
    gflops_best: float
    gflops_reps: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineResult:
    """`run_pipeline(FileSource, Enhancer, [FileSink])` over a clip, repeated; warm-up frames excluded.

    fps: median over repetitions of the emit rate (frames/s); ratio_engine: median of the per-repetition
    pipeline fps / engine-only fps (target >= 0.9); ratio_streamsr: the same against the Enhancer alone
    (what decode/encode and threading cost on top of the enhancer's own work).
    stages: ms summaries of decode (time inside the source's next()), `decoded->uploaded` (queue wait +
    upload), tiled, inferred, stitched, downloaded, `downloaded->emitted` (queue wait + encode) and encode
    (time inside FileSink.write); e2e: captured -> emitted. infer_slowdown: pipeline infer p50 / isolated
    infer p50 (> 1 when decode/encode threads compete with inference for cores). dropped: frames the
    pipeline dropped (0 for the lossless file policy). encoder: the FileSink options used.
    """

    clip: str
    frames: int
    fps: float
    fps_reps: tuple[float, ...]
    ratio_engine: float
    ratio_streamsr: float
    stages: dict[str, LatencySummary]
    e2e: LatencySummary
    e2e_samples_ms: tuple[float, ...]
    infer_slowdown: float
    dropped: int
    encoder: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveResult:
    """Live policy: a `rate` fps clip replayed in real time for `seconds` per repetition, newest frame wins.

    Sinks: a ZeroMQ Publisher on 127.0.0.1 and a FileSink (the recording), read back by an in-process
    Subscriber (in order, no conflation), so the latency a viewer sees is measured end to end.
    frames_in/frames_out/dropped: totals over repetitions; uncounted: their `PipelineStats.unfinished`
    (read but neither emitted nor dropped; 0 when the replay ends by itself); fps_out: median output fps;
    e2e: captured (released by the paced replay) -> emitted (written to every sink), in ms;
    received: frames the subscriber got; e2e_received: captured -> received at the subscriber, in ms.
    """

    seconds: float
    rate: int
    frames_in: int
    frames_out: int
    dropped: int
    uncounted: int
    fps_out: float
    e2e: LatencySummary
    e2e_samples_ms: tuple[float, ...]
    received: int
    e2e_received: LatencySummary
    e2e_received_samples_ms: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchResult:
    """Everything one `run_bench` measured, plus where and with what (machine, versions, weights, date)."""

    config: BenchConfig
    machine: dict[str, object]
    weights: str
    engine: str
    lr_size: tuple[int, int]
    tiles_per_frame: int
    macs_tiled: int
    macs_whole: int
    variants: dict[str, VariantResult]
    speedups: dict[str, float]
    stages: dict[str, LatencySummary]
    ceilings: tuple[CeilingResult, ...]
    efficiency: float | None
    pipeline: PipelineResult | None
    live: LiveResult | None
    wall_s: float

    @property
    def halo_overhead(self) -> float:
        """MACs of the tiled frame / MACs of the whole frame (>1: cost of halo overlap and padding)."""
        return self.macs_tiled / self.macs_whole

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (LatencySummary -> dict, tuples -> lists, NaN kept as NaN)."""
        return _jsonable(asdict(self)) | {"halo_overhead": self.halo_overhead}


def _jsonable(x: object) -> object:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, LatencySummary):
        return asdict(x)
    if isinstance(x, (Fraction, Path)):
        return str(x)
    return x


# ---- inputs ----------------------------------------------------------------------------------------------
def synthetic_frames(count: int, width: int, height: int, *, seed: int = 0) -> list[np.ndarray]:
    """`count` distinct (H, W, 3) uint8 RGB frames that look vaguely like endoscopy (reddish tissue, a
    vignette, specular blobs, fine texture) and move from frame to frame, so the encoder has real work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width / 2, height / 2
    vignette = np.clip(1.15 - ((x - cx) ** 2 + (y - cy) ** 2) / (0.55 * (cx**2 + cy**2)), 0, 1)
    texture = rng.normal(0, 6, (height + 64, width + 64)).astype(np.float32)
    out = []
    for i in range(count):
        dx, dy = 2 * i, i
        tex = texture[dy % 64 : dy % 64 + height, dx % 64 : dx % 64 + width]
        folds = 25 * np.sin((x + 3 * i) / 9.0 + np.cos((y - 2 * i) / 13.0))
        r = (170 + folds + tex) * vignette
        g = (70 + 0.6 * folds + 0.5 * tex) * vignette
        b = (60 + 0.4 * folds + 0.5 * tex) * vignette
        img = np.stack([r, g, b], axis=-1)
        for k in range(3):  # specular highlights
            bx = (0.2 + 0.3 * k) * width + 3 * i
            by = (0.3 + 0.2 * k) * height + 1.5 * i
            img += 200 * np.exp(-((x - bx % width) ** 2 + (y - by % height) ** 2) / (2 * (0.02 * width + 1) ** 2))[..., None]
        out.append(np.ascontiguousarray(img.clip(0, 255).astype(np.uint8)))
    return out


def make_clip(path: str | Path, frames: Sequence[np.ndarray], *, fps: int = 30) -> Path:
    """Encode `frames` ((H, W, 3) uint8 RGB, even H and W) to an H.264 yuv420p file (crf 18) with PyAV."""
    import av

    path = Path(path)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _clip_frames(path: Path, count: int) -> list[np.ndarray]:
    from .sources import FileSource

    with FileSource(path) as src:
        frames = []
        for f in src:
            frames.append(f.image)
            if len(frames) == count:
                break
    if not frames:
        raise InputError(f"clip {path} has no frames")
    return frames


def _resolve_weights(config: BenchConfig, tmpdir: Path) -> tuple[Path, str]:
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


# ---- machine ---------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, object]:
    """Date (UTC), host, CPU, cores, torch threads, GPU, library versions and the load average (1 min)."""
    import av
    import cv2

    info: dict[str, object] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "av": av.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "load_avg_1m_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


# ---- timing helpers --------------------------------------------------------------------------------------
def _wall_ms(fn: Callable[[int], object], n: int) -> list[float]:
    """Per-call wall time (ms) of fn(0..n-1); fn must end with its result on the host."""
    out = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def _device_ms(fn: Callable[[int], object], n: int, device: torch.device) -> list[float]:
    """Per-call time (ms) of device work: CUDA events around each call and a single synchronize at the end
    (no per-call sync); wall clock on CPU."""
    if device.type != "cuda":
        return _wall_ms(fn, n)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for i in range(n):
        starts[i].record()
        fn(i)
        ends[i].record()
    ends[-1].synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def _matmul_gflops(n: int, dtype: torch.dtype, device: torch.device, calls: int = 3) -> float:
    """GFLOP/s of `calls` back-to-back n x n matmuls (2 n^3 FLOP each), timed as one block."""
    a = torch.rand(n, n, device=device).to(dtype)
    b = torch.rand(n, n, device=device).to(dtype)
    torch.mm(a, b)  # first call: allocation, kernel selection
    ms = _device_ms(lambda _i: [torch.mm(a, b) for _ in range(calls)], 1, device)[0]
    return 2 * n**3 * calls / (ms / 1e3) / 1e9


# ---- baselines -------------------------------------------------------------------------------------------
def tile_loop_upscale(model: torch.nn.Module, image: np.ndarray, *, tile: int, pad: int, scale: int = 4,
                      device: torch.device = torch.device("cpu")) -> np.ndarray:
    """The straightforward per-tile loop of common SR inference scripts (Real-ESRGAN's `tile_process`):
    for each tile, crop it with `pad` pixels of context (clipped at the frame border), run the model on a
    batch of 1, paste the centre into the output. image: (H, W, 3) uint8 RGB -> (sH, sW, 3) uint8."""
    img = torch.from_numpy(np.transpose(image, (2, 0, 1)).astype(np.float32) / 255.0).unsqueeze(0).to(device)
    _, c, h, w = img.shape
    output = img.new_zeros((1, c, h * scale, w * scale))
    for y in range(math.ceil(h / tile)):
        for x in range(math.ceil(w / tile)):
            x0, y0 = x * tile, y * tile
            x1, y1 = min(x0 + tile, w), min(y0 + tile, h)
            px0, py0 = max(x0 - pad, 0), max(y0 - pad, 0)
            px1, py1 = min(x1 + pad, w), min(y1 + pad, h)
            with torch.no_grad():
                out_tile = model(img[:, :, py0:py1, px0:px1])
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            output[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = out_tile[
                :, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ]
    out = output.squeeze(0).float().cpu().clamp_(0, 1).numpy()
    return (np.transpose(out, (1, 2, 0)) * 255.0).round().astype(np.uint8)


class _EngineAsModel:
    """Lets `tile_loop_upscale` call an Engine (one tile per call) like a module."""

    def __init__(self, engine: object) -> None:
        self.engine = engine

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.engine.run(x).float()


@torch.inference_mode()
def _whole_frame(engine: object, image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> model on the whole (1, 3, H, W) frame -> (4H, 4W, 3) uint8, same conversions as
    the Enhancer."""
    x = torch.from_numpy(image).to(engine.device).permute(2, 0, 1).float().div_(255.0).unsqueeze(0)
    sr = engine.run(x)[0].float().clamp_(0.0, 1.0)
    return np.ascontiguousarray(sr.mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy())


# ---- pipeline --------------------------------------------------------------------------------------------
class _TimedSink:
    """Wraps a Sink and records how long each write takes (ms): the encode (+mux) cost per frame."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.write_ms: list[float] = []

    def write(self, frame: Frame) -> None:
        t0 = time.perf_counter_ns()
        self.inner.write(frame)
        self.write_ms.append((time.perf_counter_ns() - t0) / 1e6)

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


def _timed_iter(source: Iterable[Frame], next_ms: list[float]) -> Iterator[Frame]:
    """Yields source's frames, recording the time spent inside each next() (demux + decode + RGB)."""
    it = iter(source)
    while True:
        t0 = time.perf_counter_ns()
        try:
            frame = next(it)
        except StopIteration:
            return
        next_ms.append((time.perf_counter_ns() - t0) / 1e6)
        yield frame


@dataclass(slots=True)
class _PipelineRun:
    fps: float
    timelines: list[Timeline]
    decode_ms: list[float]
    encode_ms: list[float]
    dropped: int


def _run_pipeline_once(clip: Path, enhancer: Enhancer, out_path: Path, *, warmup: int, x264_preset: str,
                       crf: int) -> _PipelineRun:
    from .pipeline import PipelineConfig, run_pipeline
    from .sinks import EncoderOptions, FileSink
    from .sources import FileSource

    s = enhancer.tiler.scale
    with FileSource(clip) as source:
        info = source.info
        sink = _TimedSink(
            FileSink(out_path, width=info.width * s, height=info.height * s, rate=info.rate,
                     time_base=info.time_base, options=EncoderOptions(crf=crf, preset=x264_preset),
                     overwrite=True)
        )
        decode_ms: list[float] = []
        stats = run_pipeline(_timed_iter(source, decode_ms), enhancer, [sink], config=PipelineConfig(live=False))
    out_path.unlink(missing_ok=True)
    tls = stats.timelines
    emitted = [t.emitted for t in tls[max(warmup - 1, 0):]]
    fps = (len(emitted) - 1) / ((emitted[-1] - emitted[0]) / 1e9) if len(emitted) > 1 else float("nan")
    return _PipelineRun(fps=fps, timelines=tls[warmup:], decode_ms=decode_ms[warmup:],
                        encode_ms=sink.write_ms[warmup:], dropped=stats.dropped)


def _paced(source: Iterable[Frame], rate: float) -> Iterator[Frame]:
    """Release frames at `rate` fps from the first one on (a camera), re-stamping captured/decoded at release."""
    start = None
    for frame in source:
        if start is None:
            start = time.perf_counter()
        delay = start + frame.seq / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = now_ns()
        frame.timeline.stamp("captured", t)
        frame.timeline.stamp("decoded", t)
        yield frame


@dataclass(slots=True)
class _LiveRun:
    stats: object  # PipelineStats
    received: list[Timeline]


def _run_live_once(clip: Path, enhancer: Enhancer, out_path: Path, *, rate: float, x264_preset: str,
                   crf: int) -> _LiveRun:
    import threading

    from .pipeline import PipelineConfig, run_pipeline
    from .sinks import EncoderOptions, FileSink
    from .sources import FileSource
    from .transport import Publisher, Subscriber

    s = enhancer.tiler.scale
    received: list[Timeline] = []
    done = threading.Event()
    with FileSource(clip) as source, Publisher("tcp://127.0.0.1:*", name="streamsr-bench") as pub:
        sub = Subscriber(pub.endpoint, conflate=False)

        def listen() -> None:
            while True:
                frame = sub.recv(timeout=0.1)
                if frame is not None:
                    received.append(frame.timeline)
                elif done.is_set():
                    return

        listener = threading.Thread(target=listen, name="streamsr-bench-subscriber", daemon=True)
        try:
            pub.wait_for_subscribers(1, timeout=5.0)
            listener.start()
            info = source.info
            sink = FileSink(out_path, width=info.width * s, height=info.height * s, rate=info.rate,
                            time_base=info.time_base, options=EncoderOptions(crf=crf, preset=x264_preset),
                            overwrite=True)
            # viewers first: the recording's encode must not delay the publish
            stats = run_pipeline(_paced(source, rate), enhancer, [pub, sink], config=PipelineConfig(live=True))
        finally:
            done.set()
            if listener.is_alive():
                listener.join(timeout=5)
            sub.close()
    out_path.unlink(missing_ok=True)
    return _LiveRun(stats=stats, received=received)


# ---- the benchmark ---------------------------------------------------------------------------------------
def _median(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def run_bench(config: BenchConfig, *, progress: Callable[[str], None] | None = None) -> BenchResult:
    """Run every variant of `config` interleaved over `config.repeats` repetitions; see the module doc.

    progress: called with a short line before each step (the CLI shows it on stderr); never required.
    Raises StreamSRError subclasses for unusable inputs (weights, engine, clip).
    """
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="streamsr-bench-") as tmp:
        tmpdir = Path(tmp)
        weights_path, weights_desc = _resolve_weights(config, tmpdir)
        tiler = Tiler(tile=config.tile, halo=config.halo)
        engine = select_engine(
            EngineConfig(engine=config.engine, device=config.device, precision=config.precision,
                         batch=config.batch, window=tiler.window, weights=str(weights_path), preset=config.preset)
        )
        device = engine.device
        enhancer = Enhancer(engine, tiler)
        preset = read_weights_preset(weights_path)

        # inputs: the same frames for every variant
        if config.clip is not None:
            clip = Path(config.clip)
            frames = _clip_frames(clip, max(config.frames, config.warmup))
        else:
            frames = synthetic_frames(max(config.frames, config.warmup), config.width, config.height,
                                      seed=config.seed)
            clip = None
        h, w = frames[0].shape[:2]
        grid = tiler.grid(h, w)
        macs_tile = count_macs(preset, tiler.window, tiler.window)
        macs_tiled = macs_tile * grid.count
        macs_whole = count_macs(preset, h, w)
        n = config.frames

        # the runners: each times n frames and returns per-frame ms
        dev_tiles = [tiler.split(torch.from_numpy(f).to(device).permute(2, 0, 1).float().div_(255.0))[0]
                     for f in frames]
        timelines: list[Timeline] = []

        def run_engine(k: int) -> list[float]:
            def one(i: int) -> None:
                tiles = dev_tiles[i % len(frames)]
                for j in range(0, tiles.shape[0], engine.batch):
                    engine.run(tiles[j : j + engine.batch])

            with torch.inference_mode():
                return _device_ms(one, k, device)

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

        runners: dict[str, Callable[[int], list[float]]] = {"engine": run_engine,
                                                             "streamsr": run_streamsr}
        if "tile-loop" in config.variants:
            # the paper's layout as a common script would load it, NCHW fp32 (BNs folded, which only helps
            # the baseline); not the engines' `fold_for_inference` form, whose sub-pixel tail is streamsr's work
            loop_model = fold_batchnorm(load_generator(weights_path, fold=False)).to(device).eval()
            runners["tile-loop"] = lambda k: _wall_ms(
                lambda i: tile_loop_upscale(loop_model, frames[i % len(frames)], tile=config.tile,
                                            pad=config.halo, device=device), k)
        if "tile-loop-engine" in config.variants and getattr(engine, "fixed_window", None) is not None:
            # the loop crops border tiles smaller (clipped context): a fixed-shape engine cannot take them
            say(f"skipping tile-loop-engine: {engine.describe()} only takes {engine.fixed_window}px windows")
        elif "tile-loop-engine" in config.variants:
            as_model = _EngineAsModel(engine)
            runners["tile-loop-engine"] = lambda k: _wall_ms(
                lambda i: tile_loop_upscale(as_model, frames[i % len(frames)], tile=config.tile,
                                            pad=config.halo, device=device), k)
        if "whole-frame" in config.variants:
            # the engine itself when it takes any window; fixed-shape engines (TensorRT) -> torch eager
            whole = engine if getattr(engine, "fixed_window", None) is None else TorchEngine(
                load_generator(weights_path), device=device, precision=getattr(engine, "precision", "fp32"), batch=1)
            runners["whole-frame"] = lambda k: _wall_ms(lambda i: _whole_frame(whole, frames[i % len(frames)]), k)
        if "bicubic" in config.variants:
            import cv2

            runners["bicubic"] = lambda k: _wall_ms(
                lambda i: cv2.resize(frames[i % len(frames)], (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC), k)

        # ceilings and pipeline join the rotation so they see the same machine conditions
        ceil_reps: dict[str, list[float]] = {d: [] for d in config.ceiling_dtypes}
        ceil_n = config.ceiling_size
        pipe_runs: list[_PipelineRun] = []
        pipe_clip: Path | None = None
        if config.pipeline_frames:
            if clip is not None:
                pipe_clip = clip
            else:
                say(f"generating a {config.pipeline_frames}-frame {w}x{h} clip")
                pipe_clip = make_clip(tmpdir / "bench-input.mp4",
                                      synthetic_frames(config.pipeline_frames, w, h, seed=config.seed + 1))

        steps: list[tuple[str, Callable[[], None]]] = []
        samples: dict[str, list[float]] = {name: [] for name in runners}
        fps_reps: dict[str, list[float]] = {name: [] for name in runners}
        for name, runner in runners.items():
            def step(name: str = name, runner: Callable[[int], list[float]] = runner) -> None:
                ms = runner(n)
                samples[name].extend(ms)
                fps_reps[name].append(n / (sum(ms) / 1e3))
            steps.append((name, step))
        for d in config.ceiling_dtypes:
            steps.append((f"ceiling {d}", lambda d=d: ceil_reps[d].append(
                _matmul_gflops(ceil_n, CEILING_DTYPES[d], device))))
        live_runs: list = []
        if config.live_seconds:
            n_live = max(2, round(config.live_seconds * config.live_fps))
            say(f"generating a {n_live}-frame {w}x{h} {config.live_fps} fps clip for the live run")
            live_clip = make_clip(tmpdir / "live-input.mp4", synthetic_frames(n_live, w, h, seed=config.seed + 2),
                                  fps=config.live_fps)
            steps.append(("live", lambda: live_runs.append(_run_live_once(
                live_clip, enhancer, tmpdir / "live-output.mp4", rate=config.live_fps,
                x264_preset=config.x264_preset, crf=config.crf))))
        if pipe_clip is not None:
            steps.append(("pipeline", lambda: pipe_runs.append(_run_pipeline_once(
                pipe_clip, enhancer, tmpdir / "bench-output.mp4", warmup=config.pipeline_warmup,
                x264_preset=config.x264_preset, crf=config.crf))))

        # warm-up (never timed): first calls pick kernels, allocate, fill caches
        say(f"warm-up: {config.warmup} frame(s) per variant")
        if config.warmup:
            for name, runner in runners.items():
                if name == "streamsr":
                    run_streamsr(config.warmup, keep=False)
                else:
                    runner(config.warmup)

        for r in range(config.repeats):
            k = r % len(steps)
            for name, step in steps[k:] + steps[:k]:
                say(f"repetition {r + 1}/{config.repeats}: {name}")
                step()

        # ---- summaries
        variants: dict[str, VariantResult] = {}
        model_macs = {"engine": macs_tiled, "streamsr": macs_tiled, "tile-loop": None, "tile-loop-engine": None,
                      "whole-frame": macs_whole, "bicubic": None}
        # the loop baselines crop border tiles smaller (clipped context): count their real MACs
        loop_macs = sum(count_macs(preset, y1 - y0, x1 - x0) for y0, y1, x0, x1 in
                        _loop_windows(h, w, config.tile, config.halo))
        model_macs["tile-loop"] = model_macs["tile-loop-engine"] = loop_macs
        for name in runners:
            fr = fps_reps[name]
            macs = model_macs[name]
            variants[name] = VariantResult(
                name=name,
                description=VARIANTS[name],
                latency=summarize_ms(samples[name]),
                fps=_median(fr),
                fps_reps=tuple(fr),
                lr_mpix_s=_median(fr) * w * h / 1e6,
                gflops=None if macs is None else _median([2 * macs * f / 1e9 for f in fr]),
                samples_ms=tuple(samples[name]),
            )
        speedups = {
            name: _median([a / b for a, b in zip(fps_reps["streamsr"], fps_reps[name])])
            for name in runners if name not in ("streamsr", "engine")
        }
        ceilings = tuple(
            CeilingResult(dtype=d, n=ceil_n, gflops=_median(v), gflops_best=max(v), gflops_reps=tuple(v))
            for d, v in ceil_reps.items() if v
        )
        efficiency = None
        eng_prec = getattr(engine, "precision", "fp32")
        ceil_match = ceil_reps.get(eng_prec) or ceil_reps.get("fp32")
        if ceil_match:
            efficiency = _median([2 * macs_tiled * f / 1e9 / c for f, c in zip(fps_reps["engine"], ceil_match)])
        # captured == decoded for in-memory frames: only the enhancer's own stages
        stages = {k: v for k, v in stage_summaries(timelines).items() if k != "decoded"}

        pipeline = None
        if pipe_runs:
            tls = [t for run in pipe_runs for t in run.timelines]
            pstages: dict[str, LatencySummary] = {
                "decode": summarize_ms([x for run in pipe_runs for x in run.decode_ms]),
            }
            per = stage_summaries(tls)
            pstages["decoded->uploaded"] = per.get("uploaded", summarize_ms([]))
            for st in ("tiled", "inferred", "stitched", "downloaded"):
                pstages[st] = per.get(st, summarize_ms([]))
            pstages["downloaded->emitted"] = per.get("emitted", summarize_ms([]))
            pstages["encode"] = summarize_ms([x for run in pipe_runs for x in run.encode_ms])
            e2e = [t.span_ms("captured", "emitted") for t in tls]
            p_fps = [run.fps for run in pipe_runs]
            iso_infer = stages.get("inferred")
            pipeline = PipelineResult(
                clip=str(config.clip) if config.clip else f"generated {w}x{h} H.264, {config.pipeline_frames} frames",
                frames=len(tls),
                fps=_median(p_fps),
                fps_reps=tuple(p_fps),
                ratio_engine=_median([p / e for p, e in zip(p_fps, fps_reps["engine"])]),
                ratio_streamsr=_median([p / e for p, e in zip(p_fps, fps_reps["streamsr"])]),
                stages=pstages,
                e2e=summarize_ms(e2e),
                e2e_samples_ms=tuple(x for x in e2e if x is not None),
                infer_slowdown=(pstages["inferred"].p50 / iso_infer.p50) if iso_infer else float("nan"),
                dropped=sum(run.dropped for run in pipe_runs),
                encoder=f"libx264 preset {config.x264_preset} crf {config.crf}",
            )
        live = None
        if live_runs:
            e2e_live = [t.span_ms("captured", "emitted") for run in live_runs for t in run.stats.timelines]
            e2e_recv = [t.span_ms("captured", "received") for run in live_runs for t in run.received]
            live = LiveResult(
                seconds=config.live_seconds,
                rate=config.live_fps,
                frames_in=sum(run.stats.frames_in for run in live_runs),
                frames_out=sum(run.stats.frames_out for run in live_runs),
                dropped=sum(run.stats.dropped for run in live_runs),
                uncounted=sum(run.stats.unfinished for run in live_runs),
                fps_out=_median([_rate(run.stats.timelines) for run in live_runs]),
                e2e=summarize_ms(e2e_live),
                e2e_samples_ms=tuple(x for x in e2e_live if x is not None),
                received=sum(len(run.received) for run in live_runs),
                e2e_received=summarize_ms(e2e_recv),
                e2e_received_samples_ms=tuple(x for x in e2e_recv if x is not None),
            )
        machine["load_avg_1m_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return BenchResult(
            config=config,
            machine=machine,
            weights=weights_desc,
            engine=engine.describe(),
            lr_size=(w, h),
            tiles_per_frame=grid.count,
            macs_tiled=macs_tiled,
            macs_whole=macs_whole,
            variants=variants,
            speedups=speedups,
            stages=stages,
            ceilings=ceilings,
            efficiency=efficiency,
            pipeline=pipeline,
            live=live,
            wall_s=time.perf_counter() - t_start,
        )


def _rate(timelines: Sequence[Timeline]) -> float:
    e = sorted(t.emitted for t in timelines if t.emitted is not None)
    return (len(e) - 1) / ((e[-1] - e[0]) / 1e9) if len(e) > 1 and e[-1] > e[0] else float("nan")


def _loop_windows(h: int, w: int, tile: int, pad: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) input windows `tile_loop_upscale` feeds the model (context clipped at borders)."""
    out = []
    for y in range(math.ceil(h / tile)):
        for x in range(math.ceil(w / tile)):
            y0, x0 = y * tile, x * tile
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            out.append((max(y0 - pad, 0), min(y1 + pad, h), max(x0 - pad, 0), min(x1 + pad, w)))
    return out


# ---- report ----------------------------------------------------------------------------------------------
def _f(x: float | None, nd: int = 1) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:.{nd}f}"


def _lat_cells(s: LatencySummary) -> str:
    return f"{_f(s.p50)} | {_f(s.p95)} | {_f(s.p99)} | {_f(s.max)}"


STAGE_LABELS = {
    "uploaded": "upload",
    "tiled": "tile",
    "inferred": "infer",
    "stitched": "stitch",
    "downloaded": "download",
}


def _stage_table(header: str, stages: dict[str, LatencySummary], span: str, e2e: LatencySummary) -> list[str]:
    """Markdown rows: one per stage (p50/p95/p99/max ms), then the end-to-end row for `span`."""
    rows = [f"| {header} | p50 | p95 | p99 | max |", "|---|---:|---:|---:|---:|"]
    rows += [f"| {STAGE_LABELS.get(st, st)} | {_lat_cells(s)} |" for st, s in stages.items()]
    return rows + [f"| **end to end ({span})** | {_lat_cells(e2e)} |"]


def format_markdown(result: BenchResult) -> str:
    """The human-readable report: setup lines, then markdown tables (variants, stages, pipeline, efficiency)."""
    c, m = result.config, result.machine
    w, h = result.lr_size
    lines = [
        f"- date: {m['date']}; machine: {m['cpu']}, {m['cores']} cores (torch threads {m['torch_threads']}, "
        f"{m['cpu_capability']}){'; GPU ' + str(m['gpu']) if m.get('gpu') else ''}; load average (1 min) "
        f"{_f(m.get('load_avg_1m_start'), 2)} at start, {_f(m.get('load_avg_1m_end'), 2)} at end",
        f"- versions: python {m['python']}, torch {m['torch']}, av {m['av']}, opencv {m['opencv']}, "
        f"numpy {m['numpy']}{', onnxruntime ' + str(m['onnxruntime']) if m.get('onnxruntime') else ''}",
        f"- engine: {result.engine}; weights: {result.weights}",
        f"- input {w}x{h} LR -> {4 * w}x{4 * h}; tile {c.tile} + halo {c.halo} (window {c.tile + 2 * c.halo}): "
        f"{result.tiles_per_frame} tiles/frame = {result.halo_overhead:.2f}x the whole-frame MACs "
        f"({result.macs_tiled / 1e9:.2f} vs {result.macs_whole / 1e9:.2f} GMAC)",
        f"- {c.repeats} repetitions x {c.frames} timed frames per variant, interleaved (rotated order), after "
        f"{c.warmup} warm-up frame(s); latency percentiles pool all timed frames, fps is the median over "
        f"repetitions, speed-ups are medians of per-repetition ratios; wall time {result.wall_s:.0f} s",
        "",
        "| variant | fps | LR MP/s | GFLOP/s | latency p50 | p95 | p99 | max (ms) | streamsr speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in result.variants.items():
        sp = result.speedups.get(name)
        lines.append(
            f"| {name} | {_f(v.fps, 2)} | {_f(v.lr_mpix_s, 3)} | {_f(v.gflops)} | {_lat_cells(v.latency)} | "
            f"{'–' if sp is None else f'{sp:.3g}x'} |"
        )
    lines += [""] + [f"- {name}: {v.description}" for name, v in result.variants.items()]
    lines += ["", "Per-stage latency of the Enhancer (streamsr variant, from the Frame timelines), ms:", ""]
    lines += _stage_table("stage", result.stages, "upload..download", result.variants["streamsr"].latency)
    p = result.pipeline
    if p is not None:
        lines += [
            "",
            f"Pipeline: run_pipeline(FileSource ‖ Enhancer ‖ FileSink) on {p.clip}, encoder {p.encoder}; "
            f"{p.frames} frames measured (warm-up excluded), {p.dropped} dropped:",
            "",
            f"- pipeline {_f(p.fps, 2)} fps; **pipeline / engine-only = {_f(p.ratio_engine, 2)}** (target >= 0.9); "
            f"pipeline / enhancer-alone = {_f(p.ratio_streamsr, 2)}; infer p50 in the pipeline is "
            f"{_f(p.infer_slowdown, 2)}x the isolated one",
            "",
        ]
        lines += _stage_table("stage (pipeline)", p.stages, "captured..emitted", p.e2e)
    lv = result.live
    if lv is not None:
        lines += [
            "",
            f"Live: a {lv.rate} fps clip replayed in real time ({lv.seconds:g} s per repetition), newest frame wins: "
            f"{lv.frames_out} of {lv.frames_in} frames enhanced, **{lv.dropped} dropped**, output "
            f"{_f(lv.fps_out, 2)} fps, into a FileSink and a ZeroMQ Publisher read back by a Subscriber:",
            f"  - latency captured..emitted: {lv.e2e.format()}",
            f"  - latency captured..received at the subscriber ({lv.received} frames): {lv.e2e_received.format()}",
        ]
        if lv.uncounted:
            lines.append(f"  ({lv.uncounted} frame(s) neither enhanced nor counted as dropped: lost at the end "
                         f"of the stream)")
    if result.ceilings:
        lines += ["", "Efficiency (2 FLOP per MAC; tiled MACs include the halo overlap):", ""]
        eng = result.variants["engine"]
        for ce in result.ceilings:
            lines.append(f"- ceiling: {ce.dtype} {ce.n}x{ce.n} matmul {_f(ce.gflops)} GFLOP/s median "
                         f"(best {_f(ce.gflops_best)})")
        lines.append(f"- engine: {_f(eng.gflops)} GFLOP/s = **{_f(100 * (result.efficiency or float('nan')))}% "
                     f"of the matmul ceiling**; useful work (whole-frame MACs at engine fps): "
                     f"{_f(eng.gflops / result.halo_overhead if eng.gflops else None)} GFLOP/s")
    return "\n".join(lines)
