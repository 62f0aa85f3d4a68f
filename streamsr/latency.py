"""Latency percentiles and rates from Frame timelines: tails, not means (p50/p95/p99/max, never clipped).

numpy only, so a viewer can report latency without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .frame import Timeline


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles in milliseconds over `count` samples (NaN everywhere when count == 0)."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    def format(self) -> str:
        return f"p50 {self.p50:.1f} / p95 {self.p95:.1f} / p99 {self.p99:.1f} / max {self.max:.1f} ms"


def summarize_ms(samples_ms: Sequence[float]) -> LatencySummary:
    """Percentiles (linear interpolation, numpy's default) of a list of millisecond samples."""
    a = np.asarray([s for s in samples_ms if s is not None], dtype=np.float64)
    if a.size == 0:
        nan = float("nan")
        return LatencySummary(0, nan, nan, nan, nan, nan)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return LatencySummary(int(a.size), float(p50), float(p95), float(p99), float(a.max()), float(a.mean()))


def span_summary(timelines: Sequence[Timeline], start: str, end: str) -> LatencySummary:
    """Latency summary of `end - start` over the timelines that have both stamps."""
    return summarize_ms([t.span_ms(start, end) for t in timelines])


def stage_summaries(timelines: Sequence[Timeline]) -> dict[str, LatencySummary]:
    """Per-stage latency (each stamp minus the previous present stamp), keyed by the later stage's name."""
    per_stage: dict[str, list[float]] = {}
    for t in timelines:
        for stage, ms in t.stage_ms().items():
            per_stage.setdefault(stage, []).append(ms)
    return {stage: summarize_ms(v) for stage, v in per_stage.items()}


def rate_fps(timelines: Sequence[Timeline], stage: str = "emitted") -> float:
    """Frames per second at `stage`: (n - 1) / (last - first stamp). NaN with fewer than two stamps."""
    stamps = sorted(getattr(t, stage) for t in timelines if getattr(t, stage) is not None)
    if len(stamps) < 2 or stamps[-1] == stamps[0]:
        return float("nan")
    return (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9)
