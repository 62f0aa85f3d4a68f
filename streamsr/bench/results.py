"""What `run_bench` returns: frozen result dataclasses, JSON-serialisable through `BenchResult.to_dict()`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from ..metrics import LatencySummary
from .config import BenchConfig


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
