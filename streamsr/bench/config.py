"""What `run_bench` measures: the variants, the configuration, and the standard sets `streamsr bench` runs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..machine import cpu_has_bf16
from ..spec import EngineSettings

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


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchConfig(EngineSettings):
    """What to measure: how to run the generator (the EngineSettings fields: engine, device, precision, batch,
    tile, halo, cache_dir; see `spec.EngineSettings`) and what to time.

    preset/weights: the generator; weights None -> the shipped file when it exists (and fits `preset`),
    else a freshly initialised generator (seeded with `seed`): speed does not depend on weight values, and
    the result says which weights were used. preset None -> the weights' preset, else DEFAULT_PRESET.
    width/height: LR input frame size in pixels (even, for yuv420p).
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
        EngineSettings.__post_init__(self)
        for name in ("width", "height", "frames", "repeats", "ceiling_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"BenchConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup", "pipeline_frames", "pipeline_warmup", "live_seconds"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
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
