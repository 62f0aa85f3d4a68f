"""Video files, decoded losslessly with PyAV: FileSource, and the packet index that says which frames a
file holds (so damage can be repaired at the exact timestamps)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import InputError
from ..frame import Frame, now_ns
from .base import StreamInfo, describe_av_error

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".mpg", ".mpeg", ".wmv", ".flv", ".h264", ".hevc"}
)
"""Suffixes `enhance FOLDER` picks up; a single file is tried whatever its suffix."""


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
        raise InputError(f"input {path} is not a readable video ({describe_av_error(e)})") from None
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

    A file that holds fewer frames than its header promises (cut off: a recorder that died, a copy that
    stopped) raises InputError, unless `salvage`: then the frames it still holds are decoded and
    `lost_frames` counts the ones it promised and no longer holds.

    Not live: frames come as fast as they decode. `interrupt()` (any thread) ends the iteration before
    its next frame.
    """

    live = False

    def __init__(self, path: str | Path, *, strict: bool = False, window: tuple[int, int] | None = None,
                 index: PacketIndex | None = None, salvage: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"input {self.path} does not exist")
        if not self.path.is_file():
            raise InputError(f"input {self.path} is not a file")
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.error.FFmpegError as e:
            raise InputError(f"input {self.path} is not a readable video ({describe_av_error(e)})") from None
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
        self.salvage = salvage
        self.lost_frames = 0
        self.window = window
        self.index = index if index is not None else index_packets(self.path)
        self.decode_errors = 0
        self.damaged_frames = 0
        self.repeated_frames = 0
        self._interrupted = threading.Event()
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
                    f"input {self.path} is truncated or corrupt ({describe_av_error(e)})"
                ) from None
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                self.decode_errors += 1
                self._damage(f"a packet at pts {packet.pts} does not decode ({describe_av_error(e)})")
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
        for frame in self._by_rate() if self.index is None else self._by_index():
            if self._interrupted.is_set():
                return
            yield frame

    def _by_index(self) -> Iterator[Frame]:
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
                if self.salvage:
                    self.lost_frames = self.info.frames - n
                    return
                raise InputError(f"input {self.path} is truncated: it holds {n} of {self.info.frames} frames "
                                 "(--salvage keeps them)")
            return
        if self.info.duration_s and n:
            period = float(1 / self.info.rate)
            span = float((self.index.pts[-1] - self.index.pts[0]) * self.info.time_base) + period
            if span < self.info.duration_s - 2 * period:
                if self.salvage:
                    self.lost_frames = round((self.info.duration_s - span) / period)
                    return
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
            if self.salvage:
                self.lost_frames = expected - seq
                return
            raise InputError(f"input {self.path} is truncated: decoded {seq} of {expected} frames "
                             "(--salvage keeps them)")

    @property
    def expected_frames(self) -> int | None:
        """Frame count the container promises (header count, else duration x rate), None if unknown."""
        if self.info.frames:
            return self.info.frames
        if self.info.duration_s:
            return round(self.info.duration_s * float(self.info.rate))
        return None

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self.interrupt()
        self._container.close()

    def __enter__(self) -> "FileSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
