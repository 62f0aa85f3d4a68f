"""Frame sources: PyAV decode of files (and, via `open_source`, of whatever else a spec names).

A source is an iterator of `Frame` (RGB uint8, seq/pts/time_base set, timeline.captured/decoded stamped)
with a `StreamInfo` describing the stream and `close()`. Sources never see tensors or sinks.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from ..errors import InputError
from ..frame import Frame, now_ns

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".mpg", ".mpeg", ".wmv", ".flv", ".h264", ".hevc"}
)
"""Suffixes `enhance FOLDER` picks up; a single file is tried whatever its suffix."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamInfo:
    """What a sink needs to mirror the source: size (px), frame rate (fps), time base, expected length.

    frames: frame count from the container header, or None when unknown (live, raw streams).
    has_audio: whether the source has an audio track a FileSink can copy (`audio_path` names the file).
    """

    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    frames: int | None
    duration_s: float | None
    codec: str
    has_audio: bool
    audio_path: Path | None = None


def _describe_av_error(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return msg.strip().rstrip(":").strip() or type(e).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class PacketIndex:
    """Where a file's video frames are, from one demux pass without decoding (fast: no pixels touched).

    pts: every frame's presentation timestamp (stream time base), sorted, duplicates kept - one entry per
    frame the container holds, which is the frame count an output must have. keyframes: sorted pts of
    the keyframes (where decoding can start: segment boundaries). None from `index_packets` when some
    packet has no pts (raw .h264/.hevc streams), where only the frame rate can say what is missing.
    """

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]


def index_packets(path: str | Path) -> PacketIndex | None:
    """The PacketIndex of `path`'s first video stream (None: no usable pts; InputError: unreadable)."""
    try:
        with av.open(str(path), mode="r") as container:
            stream = container.streams.video[0]
            pts: list[int] = []
            keys: list[int] = []
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                if packet.pts is None:
                    return None
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
    except (av.error.FFmpegError, IndexError) as e:
        raise InputError(f"input {path} is not a readable video ({_describe_av_error(e)})") from None
    return PacketIndex(pts=tuple(sorted(pts)), keyframes=tuple(sorted(keys)))


class FileSource:
    """Decode every video frame of a file, in presentation order, losslessly (no drops), each frame with the
    exact pts the container gives it (VFR, duplicated pts and jumps included).

    Damage: a packet the decoder rejects is counted in `decode_errors`; a frame the decoder delivers but
    flags as concealed is kept and counted in `damaged_frames`. The packet index (`index_packets`) says
    which timestamps the file holds, so a timestamp for which no frame could be decoded is filled by
    repeating the previous good frame exactly there (`repeated_frames`, Frame.repeated): the output has
    one frame per input frame. Files without packet pts fall back to the frame rate: a gap of more than
    half a frame period is filled at the nominal rate. `strict`: any damage raises InputError instead.

    window: (start_pts, end_pts) to decode only frames with start_pts <= pts < end_pts (a segment; start_pts
    must be a keyframe of the index), None for the whole file.
    """

    def __init__(self, path: str | Path, *, strict: bool = False, window: tuple[int, int] | None = None,
                 index: PacketIndex | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"input {self.path} does not exist")
        if not self.path.is_file():
            raise InputError(f"input {self.path} is not a file")
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.error.FFmpegError as e:
            raise InputError(f"input {self.path} is not a readable video ({_describe_av_error(e)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"input {self.path} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        ctx = self._stream.codec_context
        if not ctx.width or not ctx.height:
            self._container.close()
            raise InputError(f"input {self.path} has a video stream with no frame size (corrupt header?)")
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
        time_base = self._stream.time_base or Fraction(1, 90000)
        duration = self._container.duration / 1e6 if self._container.duration else None
        self.info = StreamInfo(
            width=ctx.width,
            height=ctx.height,
            rate=Fraction(rate),
            time_base=Fraction(time_base),
            frames=self._stream.frames or None,
            duration_s=duration,
            codec=ctx.name,
            has_audio=bool(self._container.streams.audio),
            audio_path=self.path if self._container.streams.audio else None,
        )
        self.strict = strict
        self.window = window
        self.index = index if index is not None else index_packets(self.path)
        self.decode_errors = 0
        self.damaged_frames = 0
        self.repeated_frames = 0
        self._frame_ticks = float(1 / (self.info.rate * self.info.time_base))
        if window is not None:
            self._container.seek(window[0], stream=self._stream, backward=True, any_frame=False)

    @property
    def timestamps(self) -> list[int] | None:
        """The pts this source will emit (one per output frame), None when the file has no packet index."""
        if self.index is None:
            return None
        if self.window is None:
            return list(self.index.pts)
        lo, hi = self.window
        return [p for p in self.index.pts if lo <= p < hi]

    def _damage(self, what: str) -> None:
        if self.strict:
            raise InputError(f"input {self.path} is damaged: {what} (--strict)")

    def _decoded(self) -> Iterator[av.VideoFrame]:
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                raise InputError(
                    f"input {self.path} is truncated or corrupt ({_describe_av_error(e)})"
                ) from None
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                self.decode_errors += 1
                self._damage(f"a packet at pts {packet.pts} does not decode ({_describe_av_error(e)})")
                continue
            for vf in frames:
                if vf.is_corrupt:
                    self.damaged_frames += 1
                    self._damage(f"the frame at pts {vf.pts} decoded with errors")
                yield vf

    def _frame(self, vf: av.VideoFrame, seq: int, pts: int, captured: int) -> Frame:
        frame = Frame(image=np.ascontiguousarray(vf.to_ndarray(format="rgb24")), seq=seq, pts=pts,
                      time_base=self.info.time_base)
        frame.timeline.stamp("captured", captured)
        frame.timeline.stamp("decoded")
        return frame

    def _repeat(self, last: Frame, seq: int, pts: int, captured: int) -> Frame:
        self.repeated_frames += 1
        self._damage(f"no frame decodes at pts {pts}")
        rep = Frame(image=last.image, seq=seq, pts=pts, time_base=self.info.time_base, repeated=True)
        rep.timeline.stamp("captured", captured)
        rep.timeline.stamp("decoded", captured)
        return rep

    def __iter__(self) -> Iterator[Frame]:
        if self.timestamps is None:
            yield from self._by_rate()
            return
        if self.window is None:
            self._check_complete()
        expected = collections.deque(self.timestamps)
        lo, hi = self.window if self.window is not None else (None, None)
        pending: list[int] = []  # missing timestamps before the first good frame
        seq = 0
        last: Frame | None = None
        for vf in self._decoded():
            captured = now_ns()
            pts = vf.pts if vf.pts is not None else (expected[0] if expected else None)
            if pts is None or (lo is not None and pts < lo):
                continue
            if hi is not None and pts >= hi:
                break
            while expected and expected[0] < pts:
                missing = expected.popleft()
                if last is None:
                    pending.append(missing)
                    continue
                yield self._repeat(last, seq, missing, captured)
                seq += 1
            if not expected or expected[0] != pts:
                continue  # a pts the container does not hold (decoder output around damage): not a frame
            expected.popleft()
            frame = self._frame(vf, seq, pts, captured)
            for missing in pending:
                yield self._repeat(frame, seq, missing, captured)
                seq += 1
            pending.clear()
            frame.seq = seq
            seq += 1
            last = frame
            yield frame
        if last is None and (expected or pending):
            raise InputError(f"input {self.path} holds no decodable video frame")
        captured = now_ns()
        for missing in expected:
            yield self._repeat(last, seq, missing, captured)
            seq += 1

    def _check_complete(self) -> None:
        """InputError when the packet index covers less than the header promises (a cut-off file): fewer
        frames than the header count, or, without one, a time span short of the duration by more than two
        frame periods (time, not duration x rate, so VFR files with pauses are not mistaken for cut ones)."""
        n = len(self.index.pts)
        if self.info.frames:
            if n < self.info.frames - 1:
                raise InputError(f"input {self.path} is truncated: it holds {n} of {self.info.frames} frames")
            return
        if self.info.duration_s and n:
            period = float(1 / self.info.rate)
            span = float((self.index.pts[-1] - self.index.pts[0]) * self.info.time_base) + period
            if span < self.info.duration_s - 2 * period:
                raise InputError(f"input {self.path} is truncated: its frames cover {span:.2f} s of "
                                 f"{self.info.duration_s:.2f} s")

    def _by_rate(self) -> Iterator[Frame]:
        seq = 0
        last: Frame | None = None
        decoded = self._decoded()
        while True:
            captured = now_ns()  # before demux + decode, so captured -> decoded is the decode time
            vf = next(decoded, None)
            if vf is None:
                break
            pts = vf.pts
            if pts is None:
                pts = round(seq * self._frame_ticks)
            if last is not None and last.pts is not None:
                missing = round((pts - last.pts) / self._frame_ticks) - 1
                for k in range(1, max(missing, 0) + 1):
                    yield self._repeat(last, seq, last.pts + round(k * self._frame_ticks), captured)
                    seq += 1
            frame = self._frame(vf, seq, pts, captured)
            seq += 1
            last = frame
            yield frame
        expected = self.expected_frames
        if expected is not None and seq < expected - 1:
            raise InputError(f"input {self.path} is truncated: decoded {seq} of {expected} frames")

    @property
    def expected_frames(self) -> int | None:
        """Frame count the container promises (header count, else duration x rate), None if unknown."""
        if self.info.frames:
            return self.info.frames
        if self.info.duration_s:
            return round(self.info.duration_s * float(self.info.rate))
        return None

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "FileSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()




# ---- live sources -----------------------------------------------------------------------------------------
# A live source yields frames as they happen and never blocks forever: reads are bounded by timeouts, a
# lost connection is reopened with backoff (ReconnectingSource), and `interrupt()` (from any thread) makes
# the iterator end at its next wait. The pipeline keeps only the newest frame of a live source.

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp", "http", "https", "hls"})
"""URL schemes `open_source` hands to FFmpeg as live network streams."""

SYNTHETIC_PREFIXES = ("synthetic", "test")


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


class FrameSource(Protocol):
    """What `open_source` returns: an iterable of Frames with a StreamInfo, and close(). Live sources also
    have `live = True` and `interrupt()` (end the iteration at its next wait, from any thread)."""

    info: StreamInfo

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


class SourceLost(InputError):
    """A live connection ended (end of stream, read error or stall); ReconnectingSource reopens it."""


def is_live(source: object) -> bool:
    """True for sources that produce frames in real time (the pipeline should keep only the newest)."""
    return bool(getattr(source, "live", False))


class _Waiter:
    """Interruptible sleeps shared by the live sources."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def sleep(self, seconds: float) -> bool:
        """Sleep; False if interrupted."""
        return not self._event.wait(max(0.0, seconds))

    def interrupt(self) -> None:
        self._event.set()

    @property
    def interrupted(self) -> bool:
        return self._event.is_set()


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
        self._waiter = _Waiter()

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


class _ClosableInput:
    """What the live sources that own an input share: `interrupt()` (any thread) ends the iteration at its
    next wait; `close()` interrupts, then releases the input under `_io`, the lock every read/open/close of
    the input holds, so a close from another thread waits for the read in progress instead of freeing the
    demuxer under it. Subclasses call `__init__` before opening and implement `_release()`."""

    def __init__(self) -> None:
        self._waiter = _Waiter()
        self._io = threading.Lock()
        self._closed = False

    def _release(self) -> None:
        raise NotImplementedError

    def interrupt(self) -> None:
        """Make the iterator end at its next wait (any thread)."""
        self._waiter.interrupt()

    def close(self) -> None:
        """Stop and release the input; safe from another thread while iterating (waits for one read)."""
        self.interrupt()
        with self._io:
            self._closed = True
            self._release()

    def __enter__(self) -> "_ClosableInput":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReplaySource(_ClosableInput):
    """A video file played back at its own frame rate, so a recording behaves like a live scope.

    Frames are released at their presentation times (relative to the first); `captured`/`decoded` are
    stamped at release, as a camera would. loop=True starts over at the end (seq and pts keep increasing).
    Decoding problems raise InputError as FileSource does.
    """

    live = True

    def __init__(self, path: str | Path, *, loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self._file = FileSource(self.path)
        self.info = self._file.info
        self.loop = loop

    def __iter__(self) -> Iterator[Frame]:
        tb = self.info.time_base
        frame_ticks = round(1 / (self.info.rate * tb))
        t0 = time.monotonic()
        seq, offset = 0, 0
        pts0: int | None = None
        while not self._waiter.interrupted:
            last_pts = None
            frames = iter(self._file)
            while True:
                with self._io:
                    if self._closed:
                        return
                    frame = next(frames, None)
                if frame is None:
                    break
                if pts0 is None:
                    pts0 = frame.pts
                pts = frame.pts + offset
                due = t0 + float((pts - pts0) * tb)
                if not self._waiter.sleep(due - time.monotonic()):
                    return
                t = now_ns()
                frame.seq, frame.pts = seq, pts
                frame.timeline.stamp("captured", t)
                frame.timeline.stamp("decoded", t)
                seq += 1
                last_pts = pts
                yield frame
            if not self.loop or last_pts is None:
                return
            offset = last_pts + frame_ticks - pts0
            with self._io:
                if self._closed:
                    return
                self._file.close()
                self._file = FileSource(self.path)

    def _release(self) -> None:
        self._file.close()


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
            raise _OpenFailed(label, _describe_av_error(e)) from None
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
                    log.debug("%s: dropped an undecodable packet (%s)", self.label, _describe_av_error(e))
                    continue
                for vf in decoded:
                    captured = now_ns()
                    yield np.ascontiguousarray(vf.to_ndarray(format="rgb24")), vf.pts, captured
        except av.error.ExitError:
            raise SourceLost(f"{self.label} stalled (no data within the read timeout)") from None
        except av.error.FFmpegError as e:
            raise SourceLost(f"{self.label} read failed ({_describe_av_error(e)})") from None
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


class ReconnectingSource(_ClosableInput):
    """A live source over a connection factory: frames from the current connection; when it is lost
    (end, error, stall) a warning is logged and it is reopened with exponential backoff, and the stream
    carries on with continuing seq and monotonic pts (`reconnects` counts the recoveries).

    The first open happens in the constructor and raises InputError, so a wrong URL fails at once. A frame
    size change across a reconnect raises InputError (sinks are sized for the first one). When
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
            if (conn.width, conn.height) != (self.info.width, self.info.height):
                conn.close()
                raise InputError(f"{self.label} came back at {conn.width}x{conn.height}, "
                                 f"was {self.info.width}x{self.info.height}")
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


def _device_path(spec: str) -> str | None:
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
    path = _device_path(device) or device
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
    shown = url.split("@")[-1] if "://" in url and "@" in url else url  # no credentials in log lines
    label = f"stream {shown}" if format is None else f"{format} input {shown}"
    return ReconnectingSource(lambda: _AVConnection(url, label=label, format=format, options=opts, timeouts=live),
                              label=label, options=live)


def _parse_synthetic(spec: str, *, realtime: bool) -> SyntheticSource:
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


def open_source(
    spec: str | Path,
    *,
    realtime: bool = False,
    loop: bool = False,
    capture: CaptureOptions = CaptureOptions(),
    live: LiveOptions = LiveOptions(),
    av_options: dict[str, str] | None = None,
) -> FrameSource:
    """Open whatever `spec` names (InputError, one line, when it cannot be opened):

    - `synthetic[:WxH[@FPS]]` (or `test:...`): SyntheticSource, paced (always live);
    - `/dev/videoN` or `N`: a capture device (open_capture with `capture` settings);
    - `lavfi:GRAPH`: an FFmpeg filter graph as a live input (e.g. `lavfi:testsrc=size=640x480:rate=30,realtime`);
    - `scheme://...` with a NETWORK_SCHEMES scheme: a live network stream (open_stream);
    - anything else: a video file — FileSource, or ReplaySource (paced, live) when `realtime`.
    """
    s = str(spec)
    head = s.split(":", 1)[0].lower()
    if head in SYNTHETIC_PREFIXES and (s == head or s[len(head)] == ":"):
        return _parse_synthetic(s, realtime=True)
    if _device_path(s) is not None:
        return open_capture(s, capture=capture, live=live)
    if head == "lavfi" and ":" in s:
        return open_stream(s.split(":", 1)[1], format="lavfi", options=av_options, live=live)
    if "://" in s and head in NETWORK_SCHEMES:
        return open_stream(s, options=av_options, live=live)
    if "://" in s:
        raise InputError(f"input {s}: unsupported URL scheme {head!r} (supported: {', '.join(sorted(NETWORK_SCHEMES))})")
    if realtime:
        return ReplaySource(s, loop=loop)
    return FileSource(s)
