"""Sinks: where enhanced frames go. FileSink encodes with PyAV; Recorder records a live stream (FileSink
opened at the first frame, wall-clock timing); Display shows frames in an OpenCV window. (The ZeroMQ
Publisher, also a sink, lives in transport/publisher.py; the labelled comparison video's CompareSink in
compare.py.)

Every sink has `write(frame)`, `close()` (finish: the output is complete and playable) and `abort()`
(discard: nothing that looks complete is left behind). Sinks never see tensors.
"""

from __future__ import annotations

import logging
import math
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


_MOV_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".3gp", ".3g2", ".f4v", ".ismv"})
_MATROSKA_SUFFIXES = frozenset({".mkv", ".webm", ".mka"})
_MPEGTS_SUFFIXES = frozenset({".ts", ".mts", ".m2ts"})


def output_time_base(path: Path, time_base: Fraction) -> tuple[Fraction, dict[str, str]]:
    """The video time base an output at `path` (its suffix picks the container, as FFmpeg guesses it)
    gets for a source in `time_base`, and the muxer options that make the container keep it.

    MP4/MOV: 1/D for a source time base n/D (the same, or an exact rescale when n > 1), with the movie
    timescale set to D too, so edit lists do not round the start time to 1/1000 s. Matroska/WebM store
    1/1000 s and MPEG-TS 1/90000 s whatever is asked; other containers are given the source's."""
    suffix = path.suffix.lower()
    if suffix in _MOV_SUFFIXES and time_base.denominator < 2**31:
        d = str(time_base.denominator)
        return Fraction(1, time_base.denominator), {"movie_timescale": d, "video_track_timescale": d}
    if suffix in _MATROSKA_SUFFIXES:
        return Fraction(1, 1000), {}
    if suffix in _MPEGTS_SUFFIXES:
        return Fraction(1, 90000), {}
    return time_base, {}


class _StreamCopier:
    """Copies every audio, subtitle and data stream of `source` into `container` untouched (packets bit for
    bit, stream metadata such as language and title kept), interleaved up to a given time. Streams the
    output container cannot hold are not copied and named in `skipped` (one phrase each)."""

    def __init__(self, source: Path, container: av.container.OutputContainer, *, label: Path) -> None:
        self._in = av.open(str(source))
        self._map: dict[int, av.stream.Stream] = {}
        self.skipped: list[str] = []
        self.audio_tracks = 0
        supported = container.supported_codecs
        for s in self._in.streams:
            if s.type not in ("audio", "subtitle", "data"):
                continue
            codec = s.codec_context.name if s.codec_context is not None else None
            lang = s.metadata.get("language")
            what = f"{s.type} stream #{s.index} ({codec or 'unknown codec'}{', ' + lang if lang else ''})"
            if codec is None or (supported and codec not in supported):  # empty: the muxer lists none; try
                self.skipped.append(what)
                continue
            try:
                out = container.add_stream_from_template(s)
            except (av.error.FFmpegError, ValueError, TypeError) as e:
                self.skipped.append(f"{what}: {e}")
                continue
            meta = dict(s.metadata)
            if "title" not in meta and "name" in meta:  # MP4 keeps a track title as "name"; others say "title"
                meta["title"] = meta.pop("name")
            out.metadata.update(meta)
            self._map[s.index] = out
            self.audio_tracks += s.type == "audio"
        if self.skipped:
            log.warning("output %s: not copied (the %s container cannot hold them): %s", label,
                        label.suffix or "output", "; ".join(self.skipped))
        self._container = container
        self._packets = self._in.demux([s for s in self._in.streams if s.index in self._map]) if self._map else iter(())
        self._pending: av.Packet | None = None
        self._done = not self._map

    def _next(self) -> av.Packet | None:
        while True:
            try:
                packet = next(self._packets)
            except (StopIteration, av.error.FFmpegError):
                self._done = True
                return None
            if packet.dts is not None and packet.size:
                return packet

    def copy_until(self, seconds: float | None) -> None:
        """Mux every copied packet with a timestamp before `seconds` (all remaining when None)."""
        while not self._done:
            packet = self._pending or self._next()
            self._pending = None
            if packet is None:
                return
            if seconds is not None and float(packet.dts * packet.time_base) > seconds:
                self._pending = packet
                return
            packet.stream = self._map[packet.stream_index]
            self._container.mux(packet)

    def close(self) -> None:
        self._in.close()


class _AtomicOutput:
    """An output container written under `partial_path(path)` and moved into place only by `_finish()`;
    `abort()` and any error delete it — unless `keep_on_error` (a live recording, which may be the only copy
    of a procedure): then a file that cannot be finished is left as it is, under its partial name. With
    `streams_from`, that file's audio/subtitle/data streams are copied in (`_copier`)."""

    def __init__(self, path: Path, *, options: dict[str, str], overwrite: bool, keep_on_error: bool = False) -> None:
        self.path = Path(path)
        check_output_path(self.path, overwrite=overwrite)
        self._tmp = partial_path(self.path)
        self._keep_on_error = keep_on_error
        self._copier: _StreamCopier | None = None
        try:
            self._container = av.open(str(self._tmp), mode="w", options=options)
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"output {self.path}: cannot create a video file here ({e})") from None

    def _copy_streams(self, streams_from: Path | None) -> None:
        if streams_from is None:
            return
        try:
            self._copier = _StreamCopier(streams_from, self._container, label=self.path)
        except (av.error.FFmpegError, ValueError, IndexError) as e:
            self._discard()
            raise InputError(f"input {streams_from}: its audio/subtitle streams cannot be copied ({e})") from None

    @property
    def audio_tracks(self) -> int:
        """Audio tracks copied from the source."""
        return 0 if self._copier is None else self._copier.audio_tracks

    @property
    def skipped_streams(self) -> list[str]:
        """Source streams the container could not hold (also logged once as a warning)."""
        return [] if self._copier is None else list(self._copier.skipped)

    def _finish(self, flush: Callable[[], None]) -> None:
        try:
            flush()
            if self._copier is not None:
                self._copier.copy_until(None)
                self._copier.close()
            self._container.close()
        except (av.error.FFmpegError, OSError) as e:
            if self._keep_on_error:
                self._close_quietly()
                raise OutputError(f"output {self.path}: finishing the file failed ({e}); what was written is "
                                  f"kept as {self._tmp}") from None
            self._discard()
            raise OutputError(f"output {self.path}: finishing the file failed ({e})") from None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._discard()

    def _close_quietly(self) -> None:
        for closer in (getattr(self, "_copier", None), getattr(self, "_container", None)):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # noqa: BLE001 - best effort while discarding or giving up
                    pass

    def _discard(self) -> None:
        self._close_quietly()
        self._tmp.unlink(missing_ok=True)


class FileSink(_AtomicOutput):
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
            stream = self._container.add_stream(options.codec, rate=rate)
        except (av.error.FFmpegError, ValueError) as e:
            self._discard()
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
        self._copy_streams(streams_from)

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
            if self._copier is not None:
                self._copier.copy_until(frame.seconds)
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except av.error.FFmpegError as e:
            raise OutputError(f"output {self.path}: encoding frame {frame.seq} failed ({e})") from None
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, copy the rest of the other streams, close, and move the file into place."""

        def flush() -> None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)

        self._finish(flush)


def scaled_size(width: int, height: int, outscale: float) -> tuple[int, int]:
    """(width, height) of a `width` x `height` frame at `outscale` times its size, each rounded to an even
    number (4:2:0 video needs even sizes; a 4x output is even already)."""
    return max(2, 2 * round(width * outscale / 2)), max(2, 2 * round(height * outscale / 2))


class ResizedSink:
    """Writes each frame to `inner` resized to (width, height) with an antialiased filter: OpenCV's
    INTER_AREA, which averages every source pixel an output pixel covers, so shrinking the 4x output (the
    `--outscale` of Real-ESRGAN's command line) does not alias fine texture. Frames already of that size
    pass untouched."""

    def __init__(self, inner: Sink, *, width: int, height: int) -> None:
        self._inner = inner
        self.width, self.height = width, height

    def write(self, frame: Frame) -> None:
        image = frame.image
        if image.shape[1] != self.width or image.shape[0] != self.height:
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        self._inner.write(frame.with_image(image, scale=frame.scale))

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()


def join_segments(segments: list[Path], path: Path, *, streams_from: Path | None = None,
                  overwrite: bool = False) -> int:
    """Join video-only FileSink outputs of consecutive segments of one source (each starting at a keyframe,
    with the source's own timestamps, made with the same encoder options) into `path`, without
    re-encoding, copying `streams_from`'s other streams once. Returns the frames joined.

    Packets keep their pts; a decode timestamp that would not increase across a seam (the encoder's
    B-frame delay makes each segment's first dts start a little early) becomes the previous dts + 1 tick,
    which stays <= its pts. Written atomically like FileSink."""
    with av.open(str(segments[0])) as first:
        template = first.streams.video[0]
        tb = Fraction(template.time_base)
        _, mux_options = output_time_base(path, tb)
        out = _AtomicOutput(path, options=mux_options, overwrite=overwrite)
        stream = out._container.add_stream_from_template(template)
        stream.time_base = tb
    out._copy_streams(streams_from)
    frames = 0
    last_dts: int | None = None

    def copy_all() -> None:
        nonlocal frames, last_dts
        for segment in segments:
            with av.open(str(segment)) as seg:
                for packet in seg.demux(seg.streams.video[0]):
                    if not packet.size:
                        continue
                    if packet.time_base != tb:
                        raise OutputError(f"output {path}: segment {segment.name} has time base "
                                          f"{packet.time_base}, not {tb}")
                    if last_dts is not None and (packet.dts is None or packet.dts <= last_dts):
                        packet.dts = last_dts + 1
                        if packet.pts is not None and packet.dts > packet.pts:
                            raise OutputError(f"output {path}: segment {segment.name} overlaps the one "
                                              f"before it (dts {packet.dts} > pts {packet.pts})")
                    last_dts = packet.dts
                    if out._copier is not None and packet.dts is not None:
                        out._copier.copy_until(float(packet.dts * tb))
                    packet.stream = stream
                    out._container.mux(packet)
                    frames += 1

    try:
        copy_all()
    except (av.error.FFmpegError, OSError) as e:
        out.abort()
        raise OutputError(f"output {path}: joining segments failed ({e})") from None
    except BaseException:
        out.abort()
        raise
    out._finish(lambda: None)
    return frames


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


def segment_path(path: Path, index: int) -> Path:
    """The file of a live recording's `index`-th segment: `path` itself for 0, then `rec.001.mp4`,
    `rec.002.mp4`, ... beside it (same suffix, so the same container)."""
    return path if index == 0 else path.with_name(f"{path.stem}.{index:03d}{path.suffix}")


@dataclass(frozen=True, slots=True)
class Segment:
    """One finished (or kept) file of a live recording: where, how many frames, the recorded size in px
    (even: see Recorder) and the size the frames had (odd sizes are padded by one row/column)."""

    path: Path
    frames: int
    width: int
    height: int
    frame_width: int
    frame_height: int

    def describe(self) -> str:
        padded = (f", {self.frame_width}x{self.frame_height} padded" if (self.width, self.height)
                  != (self.frame_width, self.frame_height) else "")
        return f"{self.path} ({self.frames} frames, {self.width}x{self.height}{padded})"


class Recorder:
    """Record a live stream to video files: a FileSink opened at the first frame (its size is not known
    before), timed by the frames' capture times (`timeline.captured`, monotonic), so dropped frames,
    stalls and reconnects keep their wall-clock timing and the file stays playable.

    Timestamps are on the grid of the nominal `rate` (time base 1/rate), because the encoder's time base
    is 1/rate and finer stamps would collide after its rounding: timing is exact to half a frame period.
    A frame that would land on or before the previous one's slot (capture clock jumped back, or frames
    came faster than `rate`) takes the next slot.

    A live recording may be the only copy of a procedure, so it survives everything:
    - a frame of another size (a source or publisher back at another resolution) finishes the current file
      and starts the next segment, `segment_path(path, k)`: rec.mp4, rec.001.mp4, ... (an existing name
      is skipped unless `overwrite`); each segment starts at time 0; `segments` lists them;
    - odd sizes: 4:2:0 video (yuv420p, what every player decodes) needs even sizes, so a frame of odd width
      or height is padded by repeating its last column / row (63x63 is recorded as 64x64; the extra pixels
      duplicate the edge, nothing is scaled);
    - `abort()` finishes the file exactly like `close()`: nothing recorded is ever deleted. A file that
      cannot be finished (encoder or disk failure) is kept under its partial name and the error names it.
    Until a segment is finished it is written as `partial_path(...)`, so no half-written file carries the
    final name. No file at all when no frame arrived (`frames_written` 0).
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
        self._frame_size: tuple[int, int] | None = None  # (width, height) of the frames of this segment
        self._next_index = 0
        self._t0: int | None = None
        self._last_pts = -1
        self._done: list[Segment] = []
        self._written_before = 0

    @property
    def frames_written(self) -> int:
        """Frames recorded, all segments together."""
        return self._written_before + (0 if self._sink is None else self._sink.frames_written)

    @property
    def segments(self) -> list[Segment]:
        """The segments finished so far, in order (after close()/abort(): all of them)."""
        return list(self._done)

    def _open_segment(self, width: int, height: int) -> None:
        path = segment_path(self.path, self._next_index)
        while self._next_index and path.exists() and not self._overwrite:
            self._next_index += 1
            path = segment_path(self.path, self._next_index)
        self._next_index += 1
        self._sink = FileSink(path, width=width + width % 2, height=height + height % 2, rate=self._rate,
                              time_base=self._time_base, options=self._options, overwrite=self._overwrite,
                              keep_on_error=True)
        self._frame_size = (width, height)
        self._t0 = None
        self._last_pts = -1

    def _finish_segment(self) -> None:
        sink, self._sink = self._sink, None
        if sink is None:
            return
        self._written_before += sink.frames_written
        w, h = self._frame_size
        done = Segment(path=sink.path, frames=sink.frames_written, width=sink.width, height=sink.height,
                       frame_width=w, frame_height=h)
        try:
            sink.close()
        except OutputError:  # kept under its partial name (keep_on_error); the error says so
            self._done.append(Segment(path=partial_path(sink.path), frames=done.frames, width=done.width,
                                      height=done.height, frame_width=w, frame_height=h))
            raise
        self._done.append(done)

    def write(self, frame: Frame) -> None:
        """Record `frame` (RGB (H, W, 3) uint8, any size: a new size starts a new segment)."""
        t = frame.timeline.captured or frame.timeline.received or now_ns()
        if self._sink is not None and self._frame_size != (frame.width, frame.height):
            self._finish_segment()
        if self._sink is None:
            self._open_segment(frame.width, frame.height)
        if self._t0 is None:
            self._t0 = t
        pts = max(round((t - self._t0) / 1e9 * self._rate), self._last_pts + 1)
        self._last_pts = pts
        image = frame.image
        if image.shape[0] % 2 or image.shape[1] % 2:
            image = np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0)), mode="edge")
        self._sink.write(Frame(image=image, seq=frame.seq, pts=pts, time_base=self._time_base,
                               scale=frame.scale, timeline=frame.timeline))

    def close(self) -> None:
        """Finish the current segment (flush, write the index, move it into place)."""
        self._finish_segment()

    def abort(self) -> None:
        """The same as close(): a live recording is finished, never discarded."""
        self._finish_segment()
