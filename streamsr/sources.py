"""Frame sources: PyAV decode of files (and, via `open_source`, of whatever else a spec names).

A source is an iterator of `Frame` (RGB uint8, seq/pts/time_base set, timeline.captured/decoded stamped)
with a `StreamInfo` describing the stream and `close()`. Sources never see tensors or sinks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .errors import InputError
from .frame import Frame, now_ns

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


class FileSource:
    """Decode every video frame of a file, in presentation order, losslessly (no drops).

    Corrupt frames: a packet the decoder rejects is counted in `decode_errors`; to keep the output in sync,
    a gap in the presentation timestamps of more than half a frame period is filled by repeating the
    previous good frame at the missing timestamps (`repeated_frames` counts them, Frame.repeated marks
    them). So frame count, rate and duration of the output match the input.
    """

    def __init__(self, path: str | Path) -> None:
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
        self.decode_errors = 0
        self.repeated_frames = 0
        self._frame_ticks = float(1 / (self.info.rate * self.info.time_base))

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
                yield from packet.decode()
            except av.error.FFmpegError:
                self.decode_errors += 1

    def __iter__(self) -> Iterator[Frame]:
        seq = 0
        last: Frame | None = None
        for vf in self._decoded():
            captured = now_ns()
            pts = vf.pts
            if pts is None:
                pts = round(seq * self._frame_ticks)
            if last is not None and last.pts is not None:
                missing = round((pts - last.pts) / self._frame_ticks) - 1
                for k in range(1, max(missing, 0) + 1):
                    rep = Frame(
                        image=last.image,
                        seq=seq,
                        pts=last.pts + round(k * self._frame_ticks),
                        time_base=self.info.time_base,
                        repeated=True,
                    )
                    rep.timeline.stamp("captured", captured)
                    rep.timeline.stamp("decoded", captured)
                    self.repeated_frames += 1
                    seq += 1
                    yield rep
            image = np.ascontiguousarray(vf.to_ndarray(format="rgb24"))
            frame = Frame(image=image, seq=seq, pts=pts, time_base=self.info.time_base)
            frame.timeline.stamp("captured", captured)
            frame.timeline.stamp("decoded")
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


def open_source(spec: str | Path) -> FileSource:
    """Open the source a spec names. Here: a video file path (InputError if missing or not a video)."""
    return FileSource(spec)
