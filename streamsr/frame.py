"""Frame and Timeline: the one message type that flows source -> enhancer -> sinks.

Every stage stamps the frame's Timeline with `time.monotonic_ns()`; latency figures anywhere in streamsr
(status line, benchmarks, subscriber) are differences of these stamps and nothing else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from fractions import Fraction

import numpy as np

STAGES: tuple[str, ...] = (
    "captured",
    "decoded",
    "uploaded",
    "tiled",
    "inferred",
    "stitched",
    "downloaded",
    "emitted",
    "received",
)
"""Timeline stamps in flow order. `received` is only set by a Subscriber on another process/host."""


def now_ns() -> int:
    """The single clock of streamsr: monotonic nanoseconds (comparable within one host)."""
    return time.monotonic_ns()


@dataclass(slots=True)
class Timeline:
    """Monotonic-ns stamps of one frame's trip through the pipeline; `None` where a stage did not run."""

    captured: int | None = None
    decoded: int | None = None
    uploaded: int | None = None
    tiled: int | None = None
    inferred: int | None = None
    stitched: int | None = None
    downloaded: int | None = None
    emitted: int | None = None
    received: int | None = None

    def stamp(self, stage: str, t_ns: int | None = None) -> None:
        """Record `stage` now (or at `t_ns`). Raises ValueError for a stage name not in STAGES."""
        if stage not in STAGES:
            raise ValueError(f"unknown timeline stage {stage!r}; expected one of {', '.join(STAGES)}")
        setattr(self, stage, now_ns() if t_ns is None else t_ns)

    def span_ms(self, start: str, end: str) -> float | None:
        """Milliseconds from stamp `start` to stamp `end`, or None if either is missing."""
        a, b = getattr(self, start), getattr(self, end)
        if a is None or b is None:
            return None
        return (b - a) / 1e6

    def stage_ms(self) -> dict[str, float]:
        """Per-stage durations: each present stamp minus the previous present stamp, in ms."""
        out: dict[str, float] = {}
        prev_t = None
        for name in STAGES:
            t = getattr(self, name)
            if t is None:
                continue
            if prev_t is not None:
                out[name] = (t - prev_t) / 1e6
            prev_t = t
        return out

    def to_dict(self) -> dict[str, int]:
        """Only the stamps that are set; the form used in the wire header."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, stamps: dict) -> "Timeline":
        """Inverse of to_dict; raises ValueError on unknown stages or non-integer stamps."""
        tl = cls()
        for k, v in stamps.items():
            if k not in STAGES or isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"bad timeline entry {k!r}={v!r}")
            setattr(tl, k, v)
        return tl


@dataclass(slots=True)
class Frame:
    """One video frame.

    image: (H, W, 3) uint8, RGB, C-contiguous, on the host. Sources and sinks only ever see this array;
    tensors live inside the Enhancer.
    seq: 0-based position in the source's stream (gaps mean frames were dropped).
    pts/time_base: presentation time in the source's time base (pts * time_base = seconds), None for
    sources without timestamps.
    scale: 1 for source frames, 4 after the enhancer.
    repeated: True when a corrupt source frame was replaced by the previous good one to keep sync.
    lowres: after enhancement, the (H/4, W/4, 3) source image (a reference, not a copy), for side-by-side
    comparisons; None on source frames.
    """

    image: np.ndarray
    seq: int
    pts: int | None = None
    time_base: Fraction | None = None
    scale: int = 1
    repeated: bool = False
    timeline: Timeline = field(default_factory=Timeline)
    lowres: np.ndarray | None = None

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f"Frame.image must be an (H, W, 3) uint8 array, got {getattr(img, 'dtype', type(img))} "
                f"{getattr(img, 'shape', '')}"
            )

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def seconds(self) -> float | None:
        """Presentation time in seconds, or None when the source gave no timestamp."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    def with_image(self, image: np.ndarray, *, scale: int) -> "Frame":
        """Same frame identity and timeline (shared, not copied), new pixels; when the scale changes the
        old pixels become `lowres`."""
        return Frame(
            image=image,
            seq=self.seq,
            pts=self.pts,
            time_base=self.time_base,
            scale=scale,
            repeated=self.repeated,
            timeline=self.timeline,
            lowres=self.image if scale != self.scale else self.lowres,
        )
