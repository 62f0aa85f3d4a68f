"""Live sinks: Display (an OpenCV window) and Recorder (a live stream recorded to video files: FileSink
opened at the first frame, wall-clock timing, a new segment when the size changes, never discarded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError
from ..frame import Frame, now_ns
from .file import EncoderOptions, FileSink
from .output import check_output_path, partial_path


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
