"""What every frame source shares: the StreamInfo it describes its stream with, the FrameSource protocol
the pipeline reads, and the interruptible waits and close-under-lock of the live sources."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..frame import Frame
from ..urls import redact_url


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


def describe_av_error(e: Exception) -> str:
    """The one-line reason of a PyAV/FFmpeg error: its strerror (which has no file name), else its message
    with any URL it names shown through redact_url (no credentials)."""
    msg = getattr(e, "strerror", None) or str(e)
    filename = getattr(e, "filename", None)
    if isinstance(filename, str) and filename in msg:
        msg = msg.replace(filename, redact_url(filename))
    return msg.strip().rstrip(":").strip() or type(e).__name__


@runtime_checkable
class FrameSource(Protocol):
    """What `open_source` returns and `run_pipeline` reads: an iterator of Frames (RGB uint8 (H, W, 3),
    seq/pts/time_base set, timeline.captured/decoded stamped) with a StreamInfo.

    live: True when frames happen in real time (camera, network stream, paced replay, synthetic): the
    pipeline then keeps only the newest frame; False for a file read as fast as it decodes, every frame
    kept. interrupt(): from any thread, make the iteration end at its next wait or frame, so a reader
    blocked on the input returns promptly. close(): interrupt and release the input."""

    info: StreamInfo
    live: bool

    def __iter__(self) -> Iterator[Frame]: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


class Waiter:
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


class ClosableInput:
    """What the live sources that own an input share: `interrupt()` (any thread) ends the iteration at its
    next wait; `close()` interrupts, then releases the input under `_io`, the lock every read/open/close of
    the input holds, so a close from another thread waits for the read in progress instead of freeing the
    demuxer under it. Subclasses call `__init__` before opening and implement `_release()`."""

    def __init__(self) -> None:
        self._waiter = Waiter()
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

    def __enter__(self) -> "ClosableInput":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
