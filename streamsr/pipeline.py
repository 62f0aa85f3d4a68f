"""Pipeline: decode ‖ enhance ‖ sink, concurrently, joined by bounded queues.

Decode runs in a reader thread, sinks in a writer thread, the enhancer in the calling thread (torch
releases the GIL inside ops, so the three overlap; Ctrl-C lands in the calling thread), with up to
`Enhancer.in_flight` frames in flight (two on CUDA: one inferred while the previous one is downloaded and
written). Two policies:
- file (lossless): every frame goes through, queues block when full;
- live: the reader keeps only the newest frame when the enhancer is behind, and counts what it dropped,
  so latency stays bounded.

Stopping: `stop` (set by anyone, e.g. after N frames) ends the run normally: sinks are closed. The source
is interrupted (`FrameSource.interrupt`) so a reader blocked waiting for the next frame returns promptly.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .enhancer import EnhanceHandle, Enhancer
from .errors import Interrupted
from .frame import Frame, Timeline
from .sinks import Sink
from .sources import FrameSource

log = logging.getLogger(__name__)

_END = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineConfig:
    """live: newest-frame policy (drop stale frames) instead of lossless; queue_size: frames buffered
    between stages (file policy); finish_on_interrupt: on Ctrl-C close sinks so outputs are playable (live
    recordings) rather than abort them (file jobs, which must not leave a partial file); keep_timelines:
    keep only the most recent N per-frame timelines in the stats (None = all; a live stream runs for hours
    and must not grow without bound)."""

    live: bool = False
    queue_size: int = 4
    finish_on_interrupt: bool = False
    keep_timelines: int | None = None

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError(f"PipelineConfig.queue_size must be >= 1, got {self.queue_size}")
        if self.keep_timelines is not None and self.keep_timelines < 1:
            raise ValueError(f"PipelineConfig.keep_timelines must be >= 1 or None, got {self.keep_timelines}")


@dataclass(slots=True)
class PipelineStats:
    """Counts and per-frame timelines of one run (timelines in output order; only the most recent
    `keep_timelines` when the config limits them). Updated while the run goes on: `frames_in`/`dropped`
    by the reader thread, `frames_out`/`timelines` by the writer thread, so a status callback can read
    them (a snapshot may be a frame out of date). `unfinished`, set when the run ends: frames read but
    neither emitted nor dropped, i.e. in flight (queued or being enhanced) when `stop`, an error or Ctrl-C
    ended the run; frames_in == frames_out + dropped + unfinished."""

    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    unfinished: int = 0
    timelines: list[Timeline] = field(default_factory=list)


class _NewestSlot:
    """A one-frame mailbox: put() replaces an unconsumed frame (counting it as dropped), get() blocks.

    The end marker never replaces a frame: a pending frame is still handed out before `_END`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: object | None = None
        self._has = False
        self._ended = False
        self.dropped = 0

    def put(self, item: object) -> None:
        with self._cond:
            if item is _END:
                self._ended = True
            else:
                if self._has:
                    self.dropped += 1
                self._item, self._has = item, True
            self._cond.notify()

    def get(self, timeout: float) -> object:
        with self._cond:
            if not self._cond.wait_for(lambda: self._has or self._ended, timeout):
                raise queue.Empty
            if not self._has:
                return _END
            self._has = False
            return self._item


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Blocking put that gives up when `stop` is set; False if it gave up."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _enhance_stage(inbox: "queue.Queue | _NewestSlot", outbox: queue.Queue, enhancer: Enhancer,
                   stop: threading.Event) -> None:
    """Move frames from `inbox` through the enhancer to `outbox`, up to `enhancer.in_flight` at a time, in
    order, until the end marker (then the frames in flight are finished) or `stop`.

    With frames in flight a new frame is submitted before the oldest is collected, so the device infers frame
    k+1 while frame k is downloaded and handed on. The oldest is collected as soon as no new frame is
    waiting, never held back for the next one: a live source slower than the device sees one frame in
    flight and no added latency. With `in_flight` 1 (the CPU) this is submit, collect, hand on."""
    pending: deque[EnhanceHandle] = deque()
    depth = enhancer.in_flight
    try:
        while not stop.is_set():
            try:
                frame = inbox.get(timeout=0 if pending else 0.1)
            except queue.Empty:
                if pending and not _put(outbox, enhancer.collect(pending.popleft()), stop):
                    return
                continue
            if frame is _END:
                break
            pending.append(enhancer.submit(frame))
            if len(pending) >= depth and not _put(outbox, enhancer.collect(pending.popleft()), stop):
                return
        while pending and not stop.is_set():
            if not _put(outbox, enhancer.collect(pending.popleft()), stop):
                return
    finally:
        if pending:  # stopped, failed or interrupted with frames in flight: the enhancer stays usable
            enhancer.abandon()


def _finish_all(sinks: Sequence[Sink], how: str) -> None:
    """Call `close` or `abort` on every sink, even when one of them raises (a publisher that fails to close
    must not keep a recording after it from being finished); then raise the first error, if any. An abort
    that fails is logged: the error that caused the abort is the one to report."""
    first: BaseException | None = None
    for sink in sinks:
        try:
            getattr(sink, how)()
        except Exception as e:  # noqa: BLE001
            if how == "abort":
                log.warning("while stopping after an error: %s", e)
            elif first is None:
                first = e
    if first is not None:
        raise first


def run_pipeline(
    source: FrameSource,
    enhancer: Enhancer,
    sinks: Sequence[Sink],
    *,
    config: PipelineConfig = PipelineConfig(),
    on_frame: Callable[[Frame], None] | None = None,
    stop: threading.Event | None = None,
    stats: PipelineStats | None = None,
) -> PipelineStats:
    """Run until the source ends (or `stop` is set), then close every sink. Returns the run's stats.

    Any exception in a stage stops all stages, aborts the sinks (their partial outputs are removed — except
    a live Recorder's, which finishes its file on abort too) and is re-raised here. KeyboardInterrupt becomes `Interrupted` after sinks are aborted — or closed, when
    `config.finish_on_interrupt`. `on_frame` is called from the writer thread after each frame is emitted.
    `stats`: an object to fill in (so a caller can watch the counts while the run goes on, and still has
    them when the run ends in an exception); a new one by default.
    """
    stop = stop or threading.Event()
    stats = stats if stats is not None else PipelineStats()
    inbox: queue.Queue | _NewestSlot = _NewestSlot() if config.live else queue.Queue(config.queue_size)
    outbox: queue.Queue = queue.Queue(config.queue_size)
    errors: list[BaseException] = []
    keep = config.keep_timelines

    def fail(e: BaseException) -> None:
        errors.append(e)
        stop.set()

    def read() -> None:
        try:
            for frame in source:
                if stop.is_set():
                    break
                stats.frames_in += 1
                if isinstance(inbox, _NewestSlot):
                    inbox.put(frame)
                    stats.dropped = inbox.dropped
                elif not _put(inbox, frame, stop):
                    break
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            fail(e)
        finally:
            if isinstance(inbox, _NewestSlot):
                inbox.put(_END)
            else:
                _put(inbox, _END, stop)

    def write() -> None:
        try:
            while True:
                try:
                    frame = outbox.get(timeout=0.1)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                if frame is _END:
                    return
                for sink in sinks:
                    sink.write(frame)
                frame.timeline.stamp("emitted")
                stats.frames_out += 1
                stats.timelines.append(frame.timeline)
                if keep is not None and len(stats.timelines) >= 2 * keep:
                    del stats.timelines[:-keep]  # amortized: trim in chunks, not per frame
                if on_frame is not None:
                    on_frame(frame)
        except BaseException as e:  # noqa: BLE001
            fail(e)

    reader = threading.Thread(target=read, name="streamsr-decode", daemon=True)
    writer = threading.Thread(target=write, name="streamsr-sink", daemon=True)
    reader.start()
    writer.start()
    interrupted = False
    try:
        _enhance_stage(inbox, outbox, enhancer, stop)
        _put(outbox, _END, stop)
        while writer.is_alive():
            writer.join(timeout=0.1)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException as e:  # noqa: BLE001
        fail(e)
    finally:
        if interrupted or errors:
            stop.set()
        if reader.is_alive():
            source.interrupt()
        reader.join(timeout=5)
        writer.join(timeout=5)
        if isinstance(inbox, _NewestSlot):
            stats.dropped = inbox.dropped
        stats.unfinished = stats.frames_in - stats.frames_out - stats.dropped
        if keep is not None:
            del stats.timelines[:-keep]
    if errors or (interrupted and not config.finish_on_interrupt):
        _finish_all(sinks, "abort")
        if errors:
            raise errors[0]
        raise Interrupted("interrupted; partial output removed")
    _finish_all(sinks, "close")
    if interrupted:
        raise Interrupted("interrupted; outputs finished and closed")
    return stats
