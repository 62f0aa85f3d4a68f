"""The synthetic source: a deterministic moving test pattern, paced like a camera (`synthetic[:WxH[@FPS]]`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction

import numpy as np

from ..errors import InputError
from ..frame import Frame, now_ns
from .base import StreamInfo, Waiter

SYNTHETIC_PREFIXES = ("synthetic", "test")
"""Spec prefixes `open_source` reads as a synthetic source."""


def synthetic_image(seq: int, width: int, height: int) -> np.ndarray:
    """The synthetic source's frame `seq`: (height, width, 3) uint8 RGB, a pure function of its arguments.

    A diagonal gradient scrolling one pixel per frame, a white square moving across it, and the frame's seq
    as a 16-bit bar code (black/white blocks) in the top rows so a viewer can read which frame it got.
    """
    y = np.arange(height, dtype=np.int32)[:, None]
    x = np.arange(width, dtype=np.int32)[None, :]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (x * 4 + seq * 3) % 256
    img[..., 1] = (y * 4 + seq) % 256
    img[..., 2] = ((x + y) * 2 + seq * 5) % 256
    side = max(2, min(width, height) // 4)
    sx = (seq * 2) % max(1, width - side)
    sy = (seq) % max(1, height - side)
    img[sy : sy + side, sx : sx + side] = 255
    bit_w = max(1, width // 16)
    bar_h = max(1, height // 12)
    for b in range(min(16, width // bit_w)):
        img[:bar_h, b * bit_w : (b + 1) * bit_w] = 255 if (seq >> b) & 1 else 0
    return img


class SyntheticSource:
    """A deterministic moving test pattern (`synthetic_image`), paced at `rate` fps when `realtime`.

    frames: how many to produce (None = until interrupted). pts counts frames (time_base = 1/rate).
    """

    live = True

    def __init__(self, *, width: int = 320, height: int = 240, rate: Fraction | float = 25,
                 frames: int | None = None, realtime: bool = True) -> None:
        if width < 1 or height < 1:
            raise InputError(f"synthetic source size must be positive, got {width}x{height}")
        rate = Fraction(rate).limit_denominator(1001)
        if rate <= 0:
            raise InputError(f"synthetic source rate must be > 0 fps, got {rate}")
        self.realtime = realtime
        self.frames = frames
        self.info = StreamInfo(width=width, height=height, rate=rate, time_base=1 / rate, frames=frames,
                               duration_s=None if frames is None else float(frames / rate), codec="synthetic",
                               has_audio=False)
        self._waiter = Waiter()

    def __iter__(self) -> Iterator[Frame]:
        period = float(1 / self.info.rate)
        t0 = time.monotonic()
        seq = 0
        while (self.frames is None or seq < self.frames) and not self._waiter.interrupted:
            if self.realtime:
                late = time.monotonic() - (t0 + seq * period)
                if late < 0 and not self._waiter.sleep(-late):
                    return
                if late > 1.0:  # we were stalled (e.g. suspended): restart the clock rather than burst
                    t0 = time.monotonic() - seq * period
            captured = now_ns()
            frame = Frame(image=synthetic_image(seq, self.info.width, self.info.height), seq=seq, pts=seq,
                          time_base=self.info.time_base)
            frame.timeline.stamp("captured", captured)
            frame.timeline.stamp("decoded")
            seq += 1
            yield frame

    def interrupt(self) -> None:
        self._waiter.interrupt()

    def close(self) -> None:
        self.interrupt()

    def __enter__(self) -> "SyntheticSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_synthetic(spec: str, *, realtime: bool) -> SyntheticSource:
    """'synthetic', 'synthetic:WxH', 'synthetic:WxH@FPS' (also 'test:...')."""
    _, _, params = spec.partition(":")
    width, height, rate = 320, 240, Fraction(25)
    try:
        if params:
            size, _, fps = params.partition("@")
            if size:
                w, _, h = size.lower().partition("x")
                width, height = int(w), int(h)
            if fps:
                rate = Fraction(fps)
    except ValueError:
        raise InputError(f"synthetic source spec {spec!r} is not synthetic[:WxH[@FPS]]") from None
    return SyntheticSource(width=width, height=height, rate=rate, realtime=realtime)
