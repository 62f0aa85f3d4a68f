"""Live sources with real inputs: synthetic pattern, paced file replay, lavfi through the device code path,
UDP/MPEG-TS made by PyAV on loopback (including one that disappears and comes back), and the capture-device
error path (no camera exists on the test machines)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from helpers import UdpSender, free_udp_port
from streamsr.errors import InputError
from streamsr.frame import Frame
from streamsr.sources import (
    FileSource,
    FrameSource,
    LiveOptions,
    ReconnectingSource,
    ReplaySource,
    SyntheticSource,
    open_source,
    synthetic_image,
)
from streamsr.sources.base import describe_av_error
from streamsr.testing import IterableSource, make_clip


def test_synthetic_source_is_deterministic_paced_and_interruptible():
    a = list(itertools.islice(SyntheticSource(width=32, height=24, rate=50, realtime=False), 5))
    b = list(SyntheticSource(width=32, height=24, rate=50, frames=5, realtime=False))
    assert [f.seq for f in b] == [0, 1, 2, 3, 4] and len({f.image.tobytes() for f in b}) == 5
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert np.array_equal(b[3].image, synthetic_image(3, 32, 24))
    src = SyntheticSource(width=32, height=24, rate=50, frames=10)
    t = time.monotonic()
    frames = list(src)
    assert len(frames) == 10 and time.monotonic() - t >= 9 / 50 * 0.9  # paced, not a burst
    assert frames[-1].time_base == Fraction(1, 50) and frames[-1].pts == 9 and frames[0].timeline.captured
    endless = SyntheticSource(width=8, height=8, rate=100)
    threading.Timer(0.2, endless.interrupt).start()
    assert 5 < sum(1 for _ in endless) < 100  # ended by interrupt()


def test_open_source_dispatch(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=4, width=32, height=24)
    assert isinstance(open_source(clip), FileSource) and not open_source(clip).live
    replay = open_source(str(clip), realtime=True)
    assert isinstance(replay, ReplaySource) and replay.live
    syn = open_source("synthetic:64x48@12.5")
    assert isinstance(syn, SyntheticSource) and (syn.info.width, syn.info.height, syn.info.rate) == (64, 48, Fraction(25, 2))
    with pytest.raises(InputError, match="unsupported URL scheme"):
        open_source("gopher://example/x")
    with pytest.raises(InputError, match="synthetic"):
        open_source("synthetic:axb")
    with pytest.raises(InputError, match="does not exist"):
        open_source(tmp_path / "missing.mp4")


def test_every_source_is_a_frame_source_that_interrupt_ends(tmp_path):
    """Each kind of source has `info`, `live`, `interrupt()` and `close()` (the FrameSource protocol the
    pipeline calls without probing), and interrupt() ends the iteration before another frame comes."""
    clip = make_clip(tmp_path / "c.mp4", frames=200, width=32, height=24, fps=100)
    sources = {
        "file": (FileSource(clip), False),
        "replay": (ReplaySource(clip, loop=True), True),
        "synthetic": (SyntheticSource(width=32, height=24, rate=100), True),
        "lavfi": (open_source("lavfi:testsrc=size=32x24:rate=100,realtime"), True),
        "test double": (IterableSource([Frame(image=np.zeros((24, 32, 3), np.uint8), seq=0)] * 1000), False),
    }
    for name, (src, live) in sources.items():
        try:
            assert isinstance(src, FrameSource) and src.live is live, name
            frames = iter(src)
            assert next(frames).image.shape == (24, 32, 3), name
            src.interrupt()
            assert next(frames, None) is None, name
        finally:
            src.close()


def test_stream_errors_never_show_url_credentials():
    """An rtsp URL with user:password that cannot be opened: the one-line error names the host, never the
    password (the label goes through urls.redact_url), also for secret query parameters."""
    port = free_udp_port()  # nothing listens on this TCP port either
    for url in (f"rtsp://admin:hunter2@127.0.0.1:{port}/stream", f"srt://127.0.0.1:{port}?passphrase=hunter2"):
        with pytest.raises(InputError) as e:
            open_source(url, live=LiveOptions(open_timeout=1.0))
        msg = str(e.value)
        assert "hunter2" not in msg and "admin" not in msg and f"127.0.0.1:{port}" in msg, msg
        assert msg.startswith("stream rtsp://127.0.0.1:" if url.startswith("rtsp") else "stream srt://127.0.0.1:"), msg
    # an FFmpeg error without strerror names the URL in its message: shown redacted as well
    reason = describe_av_error(av.error.FFmpegError(5, "", "rtsp://admin:hunter2@cam/x"))
    assert "hunter2" not in reason and "rtsp://cam/x" in reason


def test_capture_device_open_error_names_both_backends():
    """No camera here: the device path is tried with PyAV/v4l2 and then OpenCV, and fails with one line."""
    with pytest.raises(InputError) as e:
        open_source("/dev/video63")
    msg = str(e.value)
    assert "/dev/video63" in msg and "PyAV/v4l2" in msg and "OpenCV" in msg and "\n" not in msg
    with pytest.raises(InputError, match="/dev/video62"):
        open_source("62")  # an index means /dev/videoN


def test_replay_is_paced_at_the_file_rate_and_loops(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=6, width=32, height=24, fps=20)
    src = ReplaySource(clip)
    t = time.monotonic()
    frames = list(src)
    elapsed = time.monotonic() - t
    assert [f.seq for f in frames] == list(range(6))
    assert elapsed >= 5 / 20 * 0.9
    # released at presentation time: capture stamps follow the pts spacing
    span = (frames[-1].timeline.captured - frames[0].timeline.captured) / 1e9
    assert span == pytest.approx(float((frames[-1].pts - frames[0].pts) * frames[0].time_base), abs=0.08)
    looped = list(itertools.islice(ReplaySource(clip, loop=True), 14))
    pts = [f.pts for f in looped]
    assert [f.seq for f in looped] == list(range(14)) and pts == sorted(set(pts))


def test_lavfi_input_uses_the_live_pyav_path():
    """lavfi goes through the same PyAV connection code as a v4l2 device (format + options + timeouts)."""
    src = open_source("lavfi:testsrc=size=32x24:rate=25")
    try:
        assert isinstance(src, ReconnectingSource) and src.live
        assert (src.info.width, src.info.height) == (32, 24)
        frames = list(itertools.islice(src, 5))
    finally:
        src.close()
    assert [f.seq for f in frames] == list(range(5))
    assert all(f.image.shape == (24, 32, 3) for f in frames)
    assert [f.pts for f in frames] == sorted({f.pts for f in frames})


def test_network_open_timeout_bounds_the_wait():
    port = free_udp_port()
    t = time.monotonic()
    with pytest.raises(InputError, match="open timeout"):
        open_source(f"udp://127.0.0.1:{port}", live=LiveOptions(open_timeout=0.5))
    assert time.monotonic() - t < 5


def test_udp_source_that_disappears_is_reopened_and_resumes(caplog):
    port = free_udp_port()
    sender = UdpSender(port, [(40, 40), (40, 200)], gap=1.0)
    sender.start()
    src = open_source(f"udp://127.0.0.1:{port}",
                      live=LiveOptions(open_timeout=5, read_timeout=0.5, backoff_initial=0.1, backoff_max=0.2))
    got = []
    try:
        with caplog.at_level(logging.WARNING, logger="streamsr.sources"):
            t_end = time.monotonic() + 20
            for f in src:
                got.append(f)
                if f.image.mean() > 120 and sum(g.image.mean() > 120 for g in got) >= 5:
                    break  # five frames of the second session: it resumed
                assert time.monotonic() < t_end, "stream never resumed"
    finally:
        sender.stop.set()
        src.close()
        sender.join(5)
    assert src.reconnects >= 1
    dark = [f for f in got if f.image.mean() < 120]
    assert len(dark) >= 5  # first session seen
    assert [f.seq for f in got] == list(range(len(got)))  # seq continues across the reconnect
    pts = [f.pts for f in got]
    assert all(b > a for a, b in zip(pts, pts[1:]))
    text = caplog.text
    assert "stalled" in text and "reopening" in text and "back after" in text


def test_close_from_another_thread_ends_iteration_safely():
    """The pipeline's reader iterates while the CLI closes the source: the close waits for the current read
    rather than freeing the demuxer under it, and the iterator ends."""
    src = open_source("lavfi:testsrc=size=32x24:rate=50,realtime")
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(f.seq for f in src), daemon=True)
    reader.start()
    time.sleep(0.3)
    src.close()
    reader.join(5)
    assert not reader.is_alive() and len(got) >= 3


def test_source_gone_for_good_ends_after_give_up_after(caplog):
    port = free_udp_port()
    sender = UdpSender(port, [(40, 90)])
    sender.start()
    src = open_source(f"udp://127.0.0.1:{port}", live=LiveOptions(open_timeout=2, read_timeout=0.4,
                                                                  backoff_initial=0.1, give_up_after=1.0))
    t = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="streamsr.sources"):
        frames = list(src)  # ends by itself: no hang, no exception
    src.close()
    sender.join(5)
    assert frames and src.failure is not None and "not back after" in src.failure
    assert time.monotonic() - t < 15
    assert "giving up" in caplog.text


def test_opencv_capture_path_reads_rgb_and_reopens_at_the_end(tmp_path):
    """The OpenCV fallback, fed a file through its FFmpeg backend (no camera here): frames come out RGB
    like PyAV's, and the end of input is a loss that ReconnectingSource recovers from."""
    import cv2

    from streamsr.sources import CaptureOptions
    from streamsr.sources.live import _OpenCVConnection

    clip = make_clip(tmp_path / "c.mp4", frames=4, width=32, height=24, fps=20)
    src = ReconnectingSource(
        lambda: _OpenCVConnection(str(clip), label="test capture", capture=CaptureOptions(), api=cv2.CAP_FFMPEG),
        label="test capture", options=LiveOptions(backoff_initial=0.05))
    try:
        frames = list(itertools.islice(src, 6))
    finally:
        src.close()
    reference = [f.image for f in FileSource(clip)]
    assert [f.seq for f in frames] == list(range(6)) and src.reconnects == 1
    for got, want in zip(frames, reference + reference):
        assert np.abs(got.image.astype(int) - want.astype(int)).mean() < 4  # RGB, not BGR (swapped channels differ by ~60)
    with pytest.raises(InputError, match="could not open"):
        _OpenCVConnection(str(tmp_path / "missing.mp4"), label="x", capture=CaptureOptions(), api=cv2.CAP_FFMPEG)
