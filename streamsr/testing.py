"""Test doubles and synthetic inputs, kept once for the tests and anyone testing a stage alone: a fake
engine whose tiled output is exactly predictable, a source over frames a test made, a sink that keeps what
it is given, and synthetic frames and real (PyAV-encoded) clips made from them.

(The benchmarks' synthetic frames and clip encoder, `synthetic_frames`, `encode_clip` and `mux_tone`, live in
bench/clips.py and are importable from here; the synthetic *source* pattern, `sources.synthetic_image`, stays
with SyntheticSource in sources/synthetic.py.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .bench.clips import encode_clip, mux_tone, synthetic_frames  # noqa: F401 - tests import them from here
from .frame import Frame
from .sources import StreamInfo


class NearestEngine:
    """A fake Engine: nearest-neighbour 4x, pixel-local, so tiled output must equal the whole-frame
    nearest upsample bit for bit. tiles: (n, 3, w, w) float -> (n, 3, 4w, 4w) on the same device.

    fixed_window: pretend to be built for one window (to test the window contract); None takes any."""

    name = "nearest"
    dtype = torch.float32
    precision = "fp32"
    scale = 4

    def __init__(self, *, batch: int = 5, device: str | torch.device = "cpu", fixed_window: int | None = None) -> None:
        self.batch = batch
        self.device = torch.device(device)
        self.fixed_window = fixed_window
        self.calls = 0

    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return F.interpolate(tiles.to(self.device, self.dtype), scale_factor=self.scale, mode="nearest")

    def describe(self) -> str:
        return f"nearest {self.scale}x on {self.device} (test double, batch {self.batch})"


class IterableSource:
    """A FrameSource over frames a test made: a list, or a generator that paces itself.

    info: the StreamInfo to report; by default the first frame's size at 25 fps (then `frames` must be a
    Sequence). live: what the source says it is (the pipeline's policy comes from PipelineConfig).
    `interrupt()` ends the iteration before its next frame; `closed` says whether close() was called."""

    def __init__(self, frames: Iterable[Frame], *, live: bool = False, info: StreamInfo | None = None) -> None:
        if info is None:
            if not isinstance(frames, Sequence) or not frames:
                raise ValueError("IterableSource needs `info` unless frames is a non-empty sequence")
            first = frames[0]
            info = StreamInfo(width=first.width, height=first.height, rate=Fraction(25), time_base=Fraction(1, 25),
                              frames=len(frames), duration_s=None, codec="test", has_audio=False)
        self.info = info
        self.live = live
        self.closed = False
        self._frames = frames
        self._interrupted = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        for frame in self._frames:
            if self._interrupted.is_set():
                return
            yield frame

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self.interrupt()
        self.closed = True


class CollectingSink:
    """A Sink that keeps every frame it is given and records whether it was closed or aborted."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.closed = self.aborted = False

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def synthetic_image(i: int, width: int, height: int) -> np.ndarray:
    """Deterministic (H, W, 3) uint8 frame i: smooth moving gradients plus texture, distinct per frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin((x + 3 * i) / 7.0)
    g = 128 + 100 * np.cos((y - 2 * i) / 5.0)
    b = (x * 3 + y * 5 + 11 * i) % 256
    return np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8)


def make_clip(path: str | Path, *, frames: int = 8, width: int = 48, height: int = 40, fps: int = 10,
              audio: bool = False, codec: str = "libx264") -> Path:
    """A small real test clip of `synthetic_image` frames (H.264 yuv420p by default, optional audio)."""
    return encode_clip(path, [synthetic_image(i, width, height) for i in range(frames)], fps=fps, audio=audio,
                       codec=codec)
