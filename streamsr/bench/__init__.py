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

Modules: `config` (what to measure), `runner` (`run_bench`), `baselines`, `runs` (the pipeline and live
runs), `clips` (synthetic frames and clips), `timing`, `results`, `report` (`format_markdown`), `seams` (the
tiled vs whole-frame measure behind the default halo); where it ran comes from streamsr/machine.py.
"""

from __future__ import annotations

from .baselines import tile_loop_upscale
from .config import VARIANTS, BenchConfig, standard_config
from ..machine import cpu_features, cpu_has_bf16, machine_info
from .report import format_markdown
from .results import BenchResult, CeilingResult, LiveResult, PipelineResult, VariantResult
from .runner import run_bench

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
    "machine_info",
    "cpu_features",
    "cpu_has_bf16",
    "tile_loop_upscale",
    "VARIANTS",
]
