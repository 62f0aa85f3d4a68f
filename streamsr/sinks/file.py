"""FileSink: encode frames to a video file with PyAV, each at its own presentation time, atomically, with the
source's other streams copied in; EncoderOptions, the encoder settings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import OutputError
from ..frame import Frame
from .output import AtomicOutput, output_time_base


@dataclass(frozen=True, slots=True, kw_only=True)
class EncoderOptions:
    """codec: an FFmpeg encoder name; crf: constant-quality factor (x264/x265/vp9/av1), ignored when
    `bitrate` (bits/s) is given; pix_fmt: the encoded pixel format; preset: x264/x265 speed preset;
    threads: encoder threads, fixed rather than "as many as this machine has" because x264's output depends
    on its thread count: the same options give the same bytes on a laptop, a CI box or a Ray worker (x264's
    lookahead runs on one thread whatever `threads` says, since its result depends on scheduling: see
    FileSink)."""

    codec: str = "libx264"
    crf: int | None = 18
    bitrate: int | None = None
    pix_fmt: str = "yuv420p"
    preset: str | None = "medium"
    threads: int = 4

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ValueError(f"EncoderOptions.threads must be >= 0 (0 = as many as the machine has), got {self.threads}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise ValueError(f"EncoderOptions.crf must be in 0..63, got {self.crf}")
        if self.bitrate is not None and self.bitrate <= 0:
            raise ValueError(f"EncoderOptions.bitrate must be > 0 bits/s, got {self.bitrate}")


class FileSink(AtomicOutput):
    """Encode frames to a video file with PyAV, each frame at its own presentation time (`frame.pts` in
    `frame.time_base`, rescaled exactly into `output_time_base`), so frame count, timestamps (CFR or VFR)
    and duration match the source; `streams_from`: a file whose audio, subtitle and data streams are
    copied in untouched (what the container cannot hold is skipped with a warning).

    The encoder and muxer need strictly increasing timestamps: a frame whose pts does not exceed the
    previous one's (duplicated pts in the source, or two frames within one tick of a coarser container
    time base) is moved to the previous pts + 1 tick; `moved_frames` counts them, `max_shift_ticks` is
    the largest move. The container follows the suffix of `path`. The file is written under
    `partial_path(path)` and renamed to `path` only by `close()`; `abort()` and any error delete it.
    Frames must all have the size given here.
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
        streams_from: Path | None = None,
        overwrite: bool = False,
        keep_on_error: bool = False,
    ) -> None:
        path = Path(path)
        self.time_base, mux_options = output_time_base(path, time_base) if time_base is not None else (None, {})
        super().__init__(path, options=mux_options, overwrite=overwrite, keep_on_error=keep_on_error)
        self.width, self.height = width, height
        self.frames_written = 0
        self.moved_frames = 0
        self.max_shift_ticks = 0
        self._last_pts: int | None = None
        try:
            stream = self.container.add_stream(options.codec, rate=rate)
        except (av.error.FFmpegError, ValueError) as e:
            self.abort()
            raise OutputError(f"output {self.path}: encoder {options.codec!r} is not available ({e})") from None
        stream.width, stream.height = width, height
        stream.pix_fmt = options.pix_fmt
        if self.time_base is not None:
            stream.time_base = self.time_base
            stream.codec_context.time_base = self.time_base
        if options.threads:
            stream.codec_context.thread_count = options.threads
        codec_options: dict[str, str] = {}
        if options.bitrate is not None:
            stream.bit_rate = options.bitrate
        elif options.crf is not None and options.codec in ("libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1"):
            codec_options["crf"] = str(options.crf)
        if options.preset and options.codec in ("libx264", "libx265"):
            codec_options["preset"] = options.preset
        if options.codec == "libx264":
            # PyAV opens encoders with slice threads, where x264 also splits its lookahead over `threads`
            # threads; that lookahead's decisions depend on how the threads are scheduled: on a busy 2-core
            # machine, 20 encodes of the same 5 frames (576x160, 4 threads) gave 12 different files. With
            # one lookahead thread they gave 1 (the encode itself still uses `threads`).
            codec_options["x264-params"] = "lookahead-threads=1"
        stream.options = codec_options
        self._stream = stream
        self.copy_streams(streams_from)

    def _pts(self, frame: Frame) -> int | None:
        if frame.pts is None or frame.time_base is None or self.time_base is None:
            return None
        exact = frame.pts * frame.time_base / self.time_base
        pts = round(exact)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
            self.moved_frames += 1
            self.max_shift_ticks = max(self.max_shift_ticks, math.ceil(abs(pts - exact)))
        self._last_pts = pts
        return pts

    def write(self, frame: Frame) -> None:
        img = frame.image
        if img.shape[0] != self.height or img.shape[1] != self.width:
            raise OutputError(
                f"output {self.path}: frame {frame.seq} is {img.shape[1]}x{img.shape[0]}, "
                f"stream is {self.width}x{self.height}"
            )
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        pts = self._pts(frame)
        if pts is not None:
            vf.pts, vf.time_base = pts, self.time_base
        else:
            vf.pts = None
        try:
            self.copy_streams_until(frame.seconds)
            for packet in self._stream.encode(vf):
                self.container.mux(packet)
        except av.error.FFmpegError as e:
            raise OutputError(f"output {self.path}: encoding frame {frame.seq} failed ({e})") from None
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, copy the rest of the other streams, close, and move the file into place."""

        def flush() -> None:
            for packet in self._stream.encode(None):
                self.container.mux(packet)

        self.finish(flush)
