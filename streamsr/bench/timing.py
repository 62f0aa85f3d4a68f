"""Timing helpers of the benchmark: wall-clock and CUDA-event per-call times, the matmul FLOP/s ceiling."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch

def wall_ms(fn: Callable[[int], object], n: int) -> list[float]:
    """Per-call wall time (ms) of fn(0..n-1); fn must end with its result on the host."""
    out = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def device_ms(fn: Callable[[int], object], n: int, device: torch.device) -> list[float]:
    """Per-call time (ms) of device work: CUDA events around each call and a single synchronize at the end
    (no per-call sync); wall clock on CPU."""
    if device.type != "cuda":
        return wall_ms(fn, n)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for i in range(n):
        starts[i].record()
        fn(i)
        ends[i].record()
    ends[-1].synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def matmul_gflops(n: int, dtype: torch.dtype, device: torch.device, calls: int = 3) -> float:
    """GFLOP/s of `calls` back-to-back n x n matmuls (2 n^3 FLOP each), timed as one block."""
    a = torch.rand(n, n, device=device).to(dtype)
    b = torch.rand(n, n, device=device).to(dtype)
    torch.mm(a, b)  # first call: allocation, kernel selection
    ms = device_ms(lambda _i: [torch.mm(a, b) for _ in range(calls)], 1, device)[0]
    return 2 * n**3 * calls / (ms / 1e3) / 1e9


def median(xs: Sequence[float]) -> float:
    """The median of the non-NaN values (NaN when there are none)."""
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")
