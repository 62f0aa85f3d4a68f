"""ReplaySource: a video file played back at its own frame rate, so a recording behaves like a live scope."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from ..frame import Frame, now_ns
from .base import ClosableInput
from .file import FileSource


class ReplaySource(ClosableInput):
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
