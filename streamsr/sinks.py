"""Sinks: where enhanced frames go. FileSink encodes with PyAV; SideBySideSink writes (bicubic | streamsr);
Recorder records a live stream (FileSink opened at the first frame, wall-clock timing); Display shows
frames in an OpenCV window. (The ZeroMQ Publisher, also a sink, lives in transport.py.)

Every sink has `write(frame)`, `close()` (finish: the output is complete and playable) and `abort()`
(discard: nothing that looks complete is left behind). Sinks never see tensors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from .errors import InputError, OutputError
from .frame import Frame, now_ns

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EncoderOptions:
    """codec: an FFmpeg encoder name; crf: constant-quality factor (x264/x265/vp9/av1), ignored when
    `bitrate` (bits/s) is given; pix_fmt: the encoded pixel format; preset: x264/x265 speed preset."""

    codec: str = "libx264"
    crf: int | None = 18
    bitrate: int | None = None
    pix_fmt: str = "yuv420p"
    preset: str | None = "medium"

    def __post_init__(self) -> None:
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise ValueError(f"EncoderOptions.crf must be in 0..63, got {self.crf}")
        if self.bitrate is not None and self.bitrate <= 0:
            raise ValueError(f"EncoderOptions.bitrate must be > 0 bits/s, got {self.bitrate}")


def check_output_path(path: Path, *, overwrite: bool) -> None:
    """OutputError (one line) unless `path` can be created: not existing (or overwrite), folder writable."""
    if path.is_dir():
        raise OutputError(f"output {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path} already exists (use --overwrite to replace it)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {parent} is not writable")


def partial_path(path: Path) -> Path:
    """Where a FileSink writes until it is complete: a hidden sibling that keeps the suffix (so FFmpeg
    picks the container from it) and says `.partial` in its name."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


class _AudioCopier:
    """Copies the audio packets of `source` into `container` untouched, interleaved up to a given time."""

    def __init__(self, source: Path, container: av.container.OutputContainer) -> None:
        self._in = av.open(str(source))
        in_stream = self._in.streams.audio[0]
        self._out_stream = container.add_stream_from_template(in_stream)
        self._container = container
        self._packets = self._in.demux(in_stream)
        self._pending: av.Packet | None = None
        self._done = False

    def _next(self) -> av.Packet | None:
        while True:
            try:
                packet = next(self._packets)
            except (StopIteration, av.error.FFmpegError):
                self._done = True
                return None
            if packet.dts is not None:
                return packet

    def copy_until(self, seconds: float | None) -> None:
        """Mux every audio packet with a timestamp before `seconds` (all remaining when None)."""
        while not self._done:
            packet = self._pending or self._next()
            self._pending = None
            if packet is None:
                return
            if seconds is not None and float(packet.dts * packet.time_base) > seconds:
                self._pending = packet
                return
            packet.stream = self._out_stream
            self._container.mux(packet)

    def close(self) -> None:
        self._in.close()


class FileSink:
    """Encode frames to a video file with PyAV, keeping the source's pts/time base (so frame count, rate and
    duration match) and copying the source's audio track (`audio_from`) untouched.

    The file is written under `partial_path(path)` and renamed to `path` only by `close()`; `abort()` and
    any error delete it. Frames must all have the size given here.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        rate: Fraction,
        time_base: Fraction | None = None,
        options: EncoderOptions = EncoderOptions(),
        audio_from: Path | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        check_output_path(self.path, overwrite=overwrite)
        self.width, self.height = width, height
        self._tmp = partial_path(self.path)
        self.frames_written = 0
        try:
            self._container = av.open(str(self._tmp), mode="w")
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"output {self.path}: cannot create a video file here ({e})") from None
        try:
            stream = self._container.add_stream(options.codec, rate=rate)
        except (av.error.FFmpegError, ValueError) as e:
            self._discard()
            raise OutputError(f"output {self.path}: encoder {options.codec!r} is not available ({e})") from None
        stream.width, stream.height = width, height
        stream.pix_fmt = options.pix_fmt
        if time_base is not None:
            stream.time_base = time_base
        codec_options: dict[str, str] = {}
        if options.bitrate is not None:
            stream.bit_rate = options.bitrate
        elif options.crf is not None and options.codec in ("libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1"):
            codec_options["crf"] = str(options.crf)
        if options.preset and options.codec in ("libx264", "libx265"):
            codec_options["preset"] = options.preset
        stream.options = codec_options
        self._stream = stream
        self._audio: _AudioCopier | None = None
        if audio_from is not None:
            try:
                self._audio = _AudioCopier(audio_from, self._container)
            except (av.error.FFmpegError, ValueError, IndexError) as e:
                self._discard()
                raise InputError(f"input {audio_from}: audio track cannot be copied ({e})") from None

    def write(self, frame: Frame) -> None:
        img = frame.image
        if img.shape[0] != self.height or img.shape[1] != self.width:
            raise OutputError(
                f"output {self.path}: frame {frame.seq} is {img.shape[1]}x{img.shape[0]}, "
                f"stream is {self.width}x{self.height}"
            )
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        if frame.pts is not None and frame.time_base is not None:
            vf.pts, vf.time_base = frame.pts, frame.time_base
        else:
            vf.pts = None
        try:
            if self._audio is not None:
                self._audio.copy_until(frame.seconds)
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except av.error.FFmpegError as e:
            raise OutputError(f"output {self.path}: encoding frame {frame.seq} failed ({e})") from None
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, copy the rest of the audio, close, and move the file into place."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.copy_until(None)
                self._audio.close()
            self._container.close()
        except (av.error.FFmpegError, OSError) as e:
            self._discard()
            raise OutputError(f"output {self.path}: finishing the file failed ({e})") from None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._discard()

    def _discard(self) -> None:
        for closer in (getattr(self, "_audio", None), getattr(self, "_container", None)):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # noqa: BLE001 - best effort while discarding; the file goes anyway
                    pass
        self._tmp.unlink(missing_ok=True)


def side_by_side(frame: Frame) -> np.ndarray:
    """(4H, 8W, 3) uint8: OpenCV bicubic 4x of the frame's low-res source | the enhanced frame.

    Needs `frame.lowres` (set by the Enhancer). A 2-px dark divider sits at the seam.
    """
    if frame.lowres is None:
        raise ValueError(f"frame {frame.seq} carries no low-res source image for a side-by-side view")
    h, w = frame.height, frame.width
    bicubic = cv2.resize(frame.lowres, (w, h), interpolation=cv2.INTER_CUBIC)
    out = np.concatenate([bicubic, frame.image], axis=1)
    out[:, w - 1 : w + 1] = 32
    return out


class SideBySideSink:
    """Wraps a sink of twice the width and feeds it `side_by_side(frame)`."""

    def __init__(self, inner: Sink) -> None:
        self._inner = inner

    def write(self, frame: Frame) -> None:
        self._inner.write(frame.with_image(side_by_side(frame), scale=frame.scale))

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()


# ---- live sinks ---------------------------------------------------------------------------------------------
class Display:
    """Show frames in an OpenCV window (RGB in, converted for OpenCV). Pressing q or Esc, or closing the
    window, calls `on_quit` (e.g. to stop the pipeline). Needs an OpenCV build with GUI support and a
    display: OutputError (one line) at construction otherwise — e.g. with opencv-python-headless."""

    def __init__(self, title: str = "streamsr", *, on_quit: Callable[[], None] | None = None) -> None:
        self.title = title
        self._on_quit = on_quit
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise OutputError(
                "--display needs OpenCV with GUI support and a display (this is a headless OpenCV build or "
                "no display is available); install opencv-python instead of opencv-python-headless, or "
                "use --record / a viewer on another machine"
            ) from None
        self._open = True

    def write(self, frame: Frame) -> None:
        if not self._open:
            return
        cv2.imshow(self.title, cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        if key in (ord("q"), 27) or closed:
            self._close_window()
            if self._on_quit is not None:
                self._on_quit()

    def _close_window(self) -> None:
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
            except cv2.error:
                pass

    def close(self) -> None:
        self._close_window()

    def abort(self) -> None:
        self._close_window()


LIVE_ENCODER = EncoderOptions(codec="libx264", crf=20, preset="veryfast")
"""Recording default: x264 `veryfast` keeps up with 4x frames in real time where `medium` would not."""


class Recorder:
    """Record a live stream to a video file: a FileSink opened at the first frame (its size is not known
    before), timed by the frames' capture times (`timeline.captured`, monotonic), so dropped frames,
    stalls and reconnects keep their wall-clock timing and the file stays playable.

    Timestamps are on the grid of the nominal `rate` (time base 1/rate), because the encoder's time base
    is 1/rate and finer stamps would collide after its rounding: timing is exact to half a frame period.
    A frame that would land on or before the previous one's slot (capture clock jumped back, or frames
    came faster than `rate`) takes the next slot. Written atomically like FileSink: `close()` makes the
    file appear, `abort()` removes it; no file at all when no frame arrived (`frames_written` 0).
    """

    def __init__(self, path: str | Path, *, rate: Fraction | float = 30, options: EncoderOptions = LIVE_ENCODER,
                 overwrite: bool = False) -> None:
        self.path = Path(path)
        check_output_path(self.path, overwrite=overwrite)
        self._rate = Fraction(rate).limit_denominator(1001)
        if self._rate <= 0:
            raise ValueError(f"Recorder rate must be > 0 fps, got {rate}")
        self._time_base = 1 / self._rate
        self._options = options
        self._overwrite = overwrite
        self._sink: FileSink | None = None
        self._t0: int | None = None
        self._last_pts = -1

    @property
    def frames_written(self) -> int:
        return 0 if self._sink is None else self._sink.frames_written

    def write(self, frame: Frame) -> None:
        t = frame.timeline.captured or frame.timeline.received or now_ns()
        if self._sink is None:
            self._sink = FileSink(self.path, width=frame.width, height=frame.height, rate=self._rate,
                                  time_base=self._time_base, options=self._options, overwrite=self._overwrite)
            self._t0 = t
        pts = max(round((t - self._t0) / 1e9 * self._rate), self._last_pts + 1)
        self._last_pts = pts
        self._sink.write(Frame(image=frame.image, seq=frame.seq, pts=pts, time_base=self._time_base,
                               scale=frame.scale, timeline=frame.timeline))

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()

    def abort(self) -> None:
        if self._sink is not None:
            self._sink.abort()
