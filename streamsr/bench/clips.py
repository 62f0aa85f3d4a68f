"""Synthetic inputs for benchmarks (and tests, through streamsr.testing): frames that look vaguely like
endoscopy and move, and real (PyAV-encoded) clips of any frames, optionally with an audio tone."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np


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
