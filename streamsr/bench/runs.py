"""The pipeline runs of the benchmark: the real decode ‖ enhance ‖ encode pipeline on a file, and a live
run (real-time replay, newest frame wins) publishing to a subscriber, with thin wrappers that time the
decode and the encode of every frame."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..enhancer import Enhancer
from ..frame import Frame, Timeline
from ..metrics import rate_fps
from ..pipeline import PipelineConfig, PipelineStats, run_pipeline
from ..sinks import EncoderOptions, FileSink
from ..sources import FileSource, FrameSource, ReplaySource
from ..transport import Publisher, Subscriber

class _TimedSink:
    """Wraps a Sink and records how long each write takes (ms): the encode (+mux) cost per frame."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.write_ms: list[float] = []

    def write(self, frame: Frame) -> None:
        t0 = time.perf_counter_ns()
        self.inner.write(frame)
        self.write_ms.append((time.perf_counter_ns() - t0) / 1e6)

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


class _TimedSource:
    """Wraps a FrameSource and records the time spent inside each next() (demux + decode + RGB), in ms."""

    def __init__(self, inner: FrameSource, next_ms: list[float]) -> None:
        self.inner = inner
        self.info = inner.info
        self.live = inner.live
        self.next_ms = next_ms

    def __iter__(self) -> Iterator[Frame]:
        it = iter(self.inner)
        while True:
            t0 = time.perf_counter_ns()
            try:
                frame = next(it)
            except StopIteration:
                return
            self.next_ms.append((time.perf_counter_ns() - t0) / 1e6)
            yield frame

    def interrupt(self) -> None:
        self.inner.interrupt()

    def close(self) -> None:
        self.inner.close()


@dataclass(slots=True)
class PipelineRun:
    """One file-pipeline repetition: emit rate and per-frame figures, warm-up frames excluded."""

    fps: float
    timelines: list[Timeline]
    decode_ms: list[float]
    encode_ms: list[float]
    dropped: int


def run_pipeline_once(clip: Path, enhancer: Enhancer, out_path: Path, *, warmup: int, x264_preset: str,
                      crf: int) -> PipelineRun:
    """run_pipeline(FileSource ‖ enhancer ‖ FileSink) over `clip` once (lossless file policy), timing the
    decode inside the source's next() and the encode inside the sink's write(); the output is deleted."""
    s = enhancer.tiler.scale
    with FileSource(clip) as source:
        info = source.info
        sink = _TimedSink(
            FileSink(out_path, width=info.width * s, height=info.height * s, rate=info.rate,
                     time_base=info.time_base, options=EncoderOptions(crf=crf, preset=x264_preset),
                     overwrite=True)
        )
        decode_ms: list[float] = []
        stats = run_pipeline(_TimedSource(source, decode_ms), enhancer, [sink], config=PipelineConfig(live=False))
    out_path.unlink(missing_ok=True)
    tls = stats.timelines
    # the rate from the last warm-up frame on: its emit time starts the first measured interval
    return PipelineRun(fps=rate_fps(tls[max(warmup - 1, 0):]), timelines=tls[warmup:],
                       decode_ms=decode_ms[warmup:], encode_ms=sink.write_ms[warmup:], dropped=stats.dropped)


@dataclass(slots=True)
class LiveRun:
    """One live repetition: the pipeline's stats and the timelines the subscriber received."""

    stats: PipelineStats
    received: list[Timeline]


def run_live_once(clip: Path, enhancer: Enhancer, out_path: Path, *, x264_preset: str, crf: int) -> LiveRun:
    """`clip` replayed at its own frame rate (ReplaySource: a camera's timing, captured/decoded stamped at
    release) through run_pipeline(live=True) into a Publisher on 127.0.0.1, read back in order by an
    in-process Subscriber, and a FileSink (deleted afterwards)."""
    s = enhancer.tiler.scale
    received: list[Timeline] = []
    done = threading.Event()
    with ReplaySource(clip) as source, Publisher("tcp://127.0.0.1:*", name="streamsr-bench") as pub:
        sub = Subscriber(pub.endpoint, conflate=False)

        def listen() -> None:
            while True:
                frame = sub.recv(timeout=0.1)
                if frame is not None:
                    received.append(frame.timeline)
                elif done.is_set():
                    return

        listener = threading.Thread(target=listen, name="streamsr-bench-subscriber", daemon=True)
        try:
            pub.wait_for_subscribers(1, timeout=5.0)
            listener.start()
            info = source.info
            sink = FileSink(out_path, width=info.width * s, height=info.height * s, rate=info.rate,
                            time_base=info.time_base, options=EncoderOptions(crf=crf, preset=x264_preset),
                            overwrite=True)
            # viewers first: the recording's encode must not delay the publish
            stats = run_pipeline(source, enhancer, [pub, sink], config=PipelineConfig(live=True))
        finally:
            done.set()
            if listener.is_alive():
                listener.join(timeout=5)
            sub.close()
    out_path.unlink(missing_ok=True)
    return LiveRun(stats=stats, received=received)
