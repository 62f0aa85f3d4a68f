"""Test doubles and synthetic inputs, kept once for the tests, the benchmarks and anyone testing a stage
alone: a fake engine whose tiled output is exactly predictable, a source over frames a test made, a sink
that keeps what it is given, and synthetic frames and real (PyAV-encoded) clips made from them.

(The synthetic *source* pattern, `sources.synthetic_image`, stays with SyntheticSource in
sources/synthetic.py.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

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


def synthetic_frames(count: int, width: int, height: int, *, seed: int = 0) -> list[np.ndarray]:
    """`count` distinct (H, W, 3) uint8 RGB frames that look vaguely like endoscopy (reddish tissue, a
    vignette, specular blobs, fine texture) and move from frame to frame, so an encoder has real work."""
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


def encode_clip(path: str | Path, images: Sequence[np.ndarray], *, fps: int = 30, audio: bool = False,
                codec: str = "libx264", options: dict[str, str] | None = None) -> Path:
    """Encode `images` ((H, W, 3) uint8 RGB, even H and W) to a real video file with PyAV: yuv420p, pts
    0, 1, 2... in 1/fps, `options` passed to the encoder (e.g. crf, preset); optionally a mono AAC 440 Hz
    tone as long as the video."""
    import av  # here, not at the top: CUDA test machines may have no PyAV

    path = Path(path)
    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        if options:
            video.options = dict(options)
        astream = out.add_stream("aac", rate=16000) if audio else None
        if astream is not None:
            astream.layout = "mono"
        for i, img in enumerate(images):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for p in video.encode(vf):
                out.mux(p)
        for p in video.encode(None):
            out.mux(p)
        if astream is not None:
            mux_tone(out, astream, 16000 * len(images) // fps, 440)
    return path


def mux_tone(out, stream, samples: int, hz: float) -> None:
    """Encode `samples` of a 0.1-amplitude `hz` sine (16 kHz mono fltp, 1024-sample frames) on `stream`, an
    audio stream of the open PyAV output `out` added at rate 16000, mono, and mux it, flushing the encoder."""
    import av

    tone = (0.1 * np.sin(np.arange(samples) * 2 * np.pi * hz / 16000)).astype(np.float32)
    for s in range(0, samples, 1024):
        af = av.AudioFrame.from_ndarray(tone[None, s : s + 1024], format="fltp", layout="mono")
        af.sample_rate, af.pts = 16000, s
        for p in stream.encode(af):
            out.mux(p)
    for p in stream.encode(None):
        out.mux(p)


def make_clip(path: str | Path, *, frames: int = 8, width: int = 48, height: int = 40, fps: int = 10,
              audio: bool = False, codec: str = "libx264") -> Path:
    """A small real test clip of `synthetic_image` frames (H.264 yuv420p by default, optional audio)."""
    return encode_clip(path, [synthetic_image(i, width, height) for i in range(frames)], fps=fps, audio=audio,
                       codec=codec)
