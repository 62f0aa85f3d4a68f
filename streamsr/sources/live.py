"""Live inputs: network streams, capture devices and lavfi graphs, through PyAV (OpenCV as the capture
fallback), with open/read timeouts and reconnection.

A live source yields frames as they happen and never blocks forever: reads are bounded by timeouts, a
lost connection is reopened with backoff (ReconnectingSource), and `interrupt()` (from any thread) makes
the iterator end at its next wait. The pipeline keeps only the newest frame of a live source.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from ..errors import InputError
from ..frame import Frame, now_ns
from ..urls import redact_url
from .base import ClosableInput, StreamInfo, describe_av_error

log = logging.getLogger(__name__)

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp", "http", "https", "hls"})
"""URL schemes `open_source` hands to FFmpeg as live network streams."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureOptions:
    """Capture-device settings (None = the device's default): frame size in px, frame rate in fps, and the
    device's pixel format as FFmpeg names it (`mjpeg` for MJPEG cameras, `yuyv422`, `nv12`, ...)."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    pixel_format: str | None = None

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise ValueError("CaptureOptions.width and height must be given together")
        for name in ("width", "height", "fps"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"CaptureOptions.{name} must be > 0, got {v}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveOptions:
    """Timeouts (s) and reconnection policy of live sources.

    open_timeout: how long opening (connect + probe) may take; read_timeout: a stall this long counts as a
    disconnect. After a loss the source is reopened after backoff_initial s, doubling up to backoff_max;
    give_up_after: seconds of continuous failure after which the source ends (None = never); it ends like a
    file does, so sinks finish normally, and its `failure` attribute says why.
    """

    open_timeout: float = 5.0
    read_timeout: float = 2.0
    backoff_initial: float = 0.25
    backoff_max: float = 4.0
    give_up_after: float | None = None

    def __post_init__(self) -> None:
        for name in ("open_timeout", "read_timeout", "backoff_initial", "backoff_max"):
            if getattr(self, name) <= 0:
                raise ValueError(f"LiveOptions.{name} must be > 0 s, got {getattr(self, name)}")
        if self.give_up_after is not None and self.give_up_after < 0:
            raise ValueError(f"LiveOptions.give_up_after must be >= 0 s or None, got {self.give_up_after}")


class _OpenFailed(InputError):
    """Opening a live input failed; `reason` is the part after the label (for combined messages)."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"{label} cannot be opened ({reason})")
        self.reason = reason



class SourceLost(InputError):
    """A live connection ended (end of stream, read error or stall); ReconnectingSource reopens it."""



class _AVConnection:
    """One PyAV connection to a live input (network URL, v4l2 device, lavfi graph). Iterating yields
    frames with the input's own pts; any end, error or stall raises SourceLost."""

    def __init__(self, url: str, *, label: str, format: str | None, options: dict[str, str],
                 timeouts: LiveOptions) -> None:
        self.label = label
        try:
            self._container = av.open(url, mode="r", format=format, options=options,
                                      timeout=(timeouts.open_timeout, timeouts.read_timeout))
        except av.error.ExitError:
            raise _OpenFailed(label, f"no stream within the {timeouts.open_timeout:g} s open timeout") from None
        except av.error.FFmpegError as e:
            raise _OpenFailed(label, describe_av_error(e)) from None
        except OSError as e:  # e.g. the device node vanished between checks
            raise _OpenFailed(label, str(e.strerror or e)) from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{label} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # slice+frame threads; MJPEG and H.264 decode in parallel
        ctx = self._stream.codec_context
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
        self.width, self.height = ctx.width, ctx.height
        self.rate = Fraction(rate)
        self.time_base = Fraction(self._stream.time_base or Fraction(1, 90000))
        self.codec = ctx.name

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None, int]]:
        """(RGB image, pts, captured ns) per decoded frame."""
        try:
            for packet in self._container.demux(self._stream):
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as e:  # a damaged packet; the next keyframe recovers
                    log.debug("%s: dropped an undecodable packet (%s)", self.label, describe_av_error(e))
                    continue
                for vf in decoded:
                    captured = now_ns()
                    yield np.ascontiguousarray(vf.to_ndarray(format="rgb24")), vf.pts, captured
        except av.error.ExitError:
            raise SourceLost(f"{self.label} stalled (no data within the read timeout)") from None
        except av.error.FFmpegError as e:
            raise SourceLost(f"{self.label} read failed ({describe_av_error(e)})") from None
        raise SourceLost(f"{self.label} ended")

    def close(self) -> None:
        self._container.close()


class _OpenCVConnection:
    """One OpenCV VideoCapture of a capture device (the fallback when PyAV/v4l2 cannot open it)."""

    def __init__(self, device: str | int, *, label: str, capture: CaptureOptions, api: int | None = None) -> None:
        """api: an OpenCV capture backend (cv2.CAP_*); default V4L2 on Linux, else whatever OpenCV picks."""
        import cv2

        self.label = label
        if api is None:
            api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # its warnings go to stderr
        try:
            self._cap = cv2.VideoCapture(device, api)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self._cap.isOpened():
            self._cap.release()
            raise _OpenFailed(label, "OpenCV VideoCapture could not open it")
        if capture.pixel_format in ("mjpeg", "mjpg"):
            self._cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        if capture.width is not None:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, capture.width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, capture.height)
        if capture.fps is not None:
            self._cap.set(cv2.CAP_PROP_FPS, capture.fps)
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a driver-side backlog
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.rate = Fraction(self._cap.get(cv2.CAP_PROP_FPS) or 30).limit_denominator(1001)
        self.time_base = Fraction(1, 1000)
        self.codec = "opencv"
        self._cv2 = cv2

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None, int]]:
        while True:
            ok, bgr = self._cap.read()
            captured = now_ns()
            if not ok:
                raise SourceLost(f"{self.label} stopped delivering frames")
            ms = self._cap.get(self._cv2.CAP_PROP_POS_MSEC)
            yield self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB), (round(ms) if ms > 0 else None), captured

    def close(self) -> None:
        self._cap.release()


class ReconnectingSource(ClosableInput):
    """A live source over a connection factory: frames from the current connection; when it is lost
    (end, error, stall) a warning is logged and it is reopened with exponential backoff, and the stream
    carries on with continuing seq and monotonic pts (`reconnects` counts the recoveries).

    The first open happens in the constructor and raises InputError, so a wrong URL fails at once. A source
    that comes back at another frame size carries on at that size (a warning is logged, `size_changes`
    counts it, `size` is the current (width, height); `info` keeps describing the first connection). When
    `options.give_up_after` passes without the source coming back, iteration ends and `failure` (None
    otherwise) says why, so whatever was recorded so far is finished normally.
    """

    live = True

    def __init__(self, connect: Callable[[], "_AVConnection | _OpenCVConnection"], *, label: str,
                 options: LiveOptions = LiveOptions()) -> None:
        super().__init__()
        self.label = label
        self.options = options
        self.reconnects = 0
        self.failure: str | None = None
        self._connect = connect
        self._conn = connect()
        c = self._conn
        if not c.width or not c.height:
            c.close()
            raise InputError(f"{label} reports no frame size")
        self.info = StreamInfo(width=c.width, height=c.height, rate=c.rate, time_base=c.time_base, frames=None,
                               duration_s=None, codec=c.codec, has_audio=False)
        self.size: tuple[int, int] = (c.width, c.height)
        self.size_changes = 0

    def _reopen(self, reason: str) -> bool:
        """Reopen after a loss; False when interrupted, or when give_up_after has passed (`failure` set)."""
        opts = self.options
        started = time.monotonic()
        delay, attempt = opts.backoff_initial, 0
        log.warning("%s; reopening it", reason)  # reason names the source: "<label> stalled (...)"
        while not self._waiter.interrupted:
            attempt += 1
            if not self._waiter.sleep(delay):
                return False
            try:
                conn = self._connect()
            except InputError as e:
                waited = time.monotonic() - started
                if opts.give_up_after is not None and waited >= opts.give_up_after:
                    self.failure = f"{self.label} lost and not back after {waited:.1f} s ({e})"
                    log.error("%s; giving up", self.failure)
                    return False
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("%s still unavailable after %.1f s (attempt %d): %s", self.label, waited, attempt, e)
                delay = min(delay * 2, opts.backoff_max)
                continue
            if (conn.width, conn.height) != self.size:
                # Sinks that care (the Recorder) start a new segment; ending here would end a live
                # recording that may be the only copy of a procedure.
                log.warning("%s came back at %dx%d, was %dx%d; continuing at the new size", self.label,
                            conn.width, conn.height, *self.size)
                self.size = (conn.width, conn.height)
                self.size_changes += 1
            with self._io:
                if self._closed:
                    conn.close()
                    return False
                self._conn = conn
            self.reconnects += 1
            log.warning("%s back after %.1f s (%d attempt(s)); stream resumes", self.label,
                        time.monotonic() - started, attempt)
            return True
        return False

    def __iter__(self) -> Iterator[Frame]:
        tb = self.info.time_base
        seq = 0
        last_out: int | None = None  # last pts emitted, in self.info.time_base
        last_ns = 0
        while not self._waiter.interrupted:
            conn = self._conn
            reads = iter(conn)
            offset: int | None = None
            try:
                while True:
                    with self._io:
                        if self._closed or self._waiter.interrupted:
                            return
                        image, pts, captured = next(reads)  # a connection ends by raising SourceLost
                    if pts is not None and conn.time_base != tb:
                        pts = round(pts * conn.time_base / tb)
                    if offset is None:  # first frame of this connection: continue the timeline
                        gap = 0 if last_out is None else max(1, round((captured - last_ns) / 1e9 / tb))
                        start = 0 if last_out is None else last_out + gap
                        offset = start - (pts if pts is not None else 0)
                    out_pts = None if pts is None else pts + offset
                    if out_pts is not None and last_out is not None and out_pts <= last_out:
                        out_pts = last_out + 1  # keep pts strictly increasing (wraps, restarts)
                    frame = Frame(image=image, seq=seq, pts=out_pts, time_base=tb if out_pts is not None else None)
                    frame.timeline.stamp("captured", captured)
                    frame.timeline.stamp("decoded")
                    seq += 1
                    if out_pts is not None:
                        last_out = out_pts
                    last_ns = captured
                    yield frame
            except SourceLost as e:
                with self._io:
                    conn.close()
                if self._waiter.interrupted or not self._reopen(str(e)):
                    return

    def _release(self) -> None:
        self._conn.close()


def device_path(spec: str) -> str | None:
    """'/dev/video2' -> itself; '2' -> '/dev/video2'; anything else -> None."""
    if spec.isdigit():
        return f"/dev/video{int(spec)}"
    if spec.startswith("/dev/video"):
        return spec
    return None


def open_capture(device: str, *, capture: CaptureOptions = CaptureOptions(),
                 live: LiveOptions = LiveOptions()) -> ReconnectingSource:
    """A capture device (/dev/videoN or its index): V4L2 through PyAV, OpenCV's V4L2 capture if PyAV cannot
    open it. InputError naming both reasons when neither can. MJPEG cameras: pixel_format="mjpeg"."""
    path = device_path(device) or device
    label = f"capture device {path}"
    av_options: dict[str, str] = {}
    if capture.width is not None:
        av_options["video_size"] = f"{capture.width}x{capture.height}"
    if capture.fps is not None:
        av_options["framerate"] = f"{capture.fps:g}"
    if capture.pixel_format is not None:
        av_options["input_format"] = capture.pixel_format

    def via_pyav() -> _AVConnection:
        return _AVConnection(path, label=label, format="v4l2", options=av_options, timeouts=live)

    def via_opencv() -> _OpenCVConnection:
        index = int(path.removeprefix("/dev/video")) if path.removeprefix("/dev/video").isdigit() else path
        return _OpenCVConnection(index, label=label, capture=capture)

    try:
        return ReconnectingSource(via_pyav, label=label, options=live)
    except InputError as e_av:
        log.info("%s: PyAV/v4l2 failed (%s); trying OpenCV", label, e_av)
        try:
            return ReconnectingSource(via_opencv, label=label, options=live)
        except InputError as e_cv:
            why_av, why_cv = (getattr(e, "reason", str(e)) for e in (e_av, e_cv))
            raise InputError(f"{label} cannot be opened (PyAV/v4l2: {why_av}; OpenCV: {why_cv})") from None


def open_stream(url: str, *, format: str | None = None, options: dict[str, str] | None = None,
                live: LiveOptions = LiveOptions()) -> ReconnectingSource:
    """A live input FFmpeg reads — a network URL (rtsp/udp/srt/http/...) or, with `format`, a device or
    lavfi graph — with open/read timeouts and reconnection. Low-latency demuxing (no input buffering) unless
    `options` says otherwise."""
    opts = {"fflags": "nobuffer"}
    opts.update(options or {})
    shown = redact_url(url)  # the label is in every log line and error message
    label = f"stream {shown}" if format is None else f"{format} input {shown}"
    return ReconnectingSource(lambda: _AVConnection(url, label=label, format=format, options=opts, timeouts=live),
                              label=label, options=live)
