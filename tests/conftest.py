"""Shared fixtures: small real videos made with PyAV (streamsr.testing), and tiny-preset generator weights."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction  # noqa: F401
from pathlib import Path

import numpy as np  # noqa: F401
import pytest
import torch

from streamsr.model import Generator, save_weights
from streamsr.testing import make_clip, mux_tone, synthetic_image  # noqa: F401 - the tests import them from here


def pytest_collection_modifyitems(config, items):
    cuda = torch.cuda.is_available()
    try:
        import torch_tensorrt  # noqa: F401

        trt = cuda
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        trt = False
    for item in items:
        if "cuda" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))
        if "tensorrt" in item.keywords and not trt:
            item.add_marker(pytest.mark.skip(reason="needs torch-tensorrt and CUDA"))


def make_timed_clip(
    path: Path,
    pts: list[int],
    *,
    time_base: Fraction = Fraction(1, 1000),
    width: int = 48,
    height: int = 40,
    bframes: bool = True,
    gop: int | None = None,
    audio: tuple[tuple[str, str], ...] = (),
) -> Path:
    """An H.264 clip whose frame i is shown at pts[i] (in `time_base`): variable frame rate, jumps, and
    with `bframes=False` also duplicated pts (decode times are then made distinct, as muxers require).
    MP4 outputs keep `time_base` exactly (track timescale set); gop: frames between keyframes. audio: one mono AAC track per
    (language, title), each a different tone, as long as the video."""
    import av

    tb = Fraction(time_base)
    options = {"video_track_timescale": str(tb.denominator)} if path.suffix == ".mp4" else {}
    distinct = sorted(set(pts)) == sorted(pts)
    dts = list(pts)  # with repeats: strictly increasing decode times, each <= its pts, as muxers demand
    for i in range(len(dts) - 2, -1, -1):
        dts[i] = min(dts[i], dts[i + 1] - 1)
    with av.open(str(path), "w", options=options) as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = tb
        video.options = {k: v for k, v in (("bf", None if bframes else "0"), ("g", gop and str(gop))) if v}
        tracks = []
        for k, (language, title) in enumerate(audio):
            a = out.add_stream("aac", rate=16000)
            a.layout = "mono"
            a.metadata.update({"language": language, "title": title})
            tracks.append((a, 220 * (k + 2)))
        for i in range(len(pts)):
            vf = av.VideoFrame.from_ndarray(synthetic_image(i, width, height), format="rgb24")
            vf.pts, vf.time_base = (pts[i] if distinct else i), tb
            for p in video.encode(vf):
                if not distinct:  # encoded at 0, 1, 2...: now give each packet its real (repeating) time
                    p.pts, p.dts = pts[p.pts], dts[p.pts]
                out.mux(p)
        for p in video.encode(None):
            if not distinct:
                p.pts, p.dts = pts[p.pts], dts[p.pts]
            out.mux(p)
        n = int(16000 * (max(pts) + 1) * tb)
        for a, hz in tracks:
            mux_tone(out, a, n, hz)
    return path


def overwrite_middle(src: Path, dst: Path, nbytes: int) -> Path:
    """Copy `src` to `dst` with `nbytes` of garbage (a fixed pattern) over the middle of the file."""
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid - nbytes // 2 : mid + nbytes // 2] = bytes((i * 37 + 11) % 256 for i in range(nbytes // 2 * 2))
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", audio=True)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_weights(Generator("srgan-x4-tiny"), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m streamsr ARGS` in a subprocess (the real entry point, exit code and stderr)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "streamsr", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
