"""The live runner: source -> enhancer -> publisher / recorder / display, newest frame wins.

`stream(source, publish=..., record=..., ...)` builds the live graph from a LiveSpec, runs it until the
source ends, `frames`/`duration` are reached, `stop` is set, Ctrl-C/SIGTERM, or something fails, and returns
a LiveResult. The command line (`streamsr stream`) only parses its options into these arguments and prints
what the runner reports; the library never prints: one-line notices go to `on_notice(text)` and a status
snapshot once a second to `on_status(LiveStatus)`.

Every ending is an ending, not a loss: the run returns its result (counts, the recording's segments, the
latency tails) whether it ended by choice, by Ctrl-C (`interrupted`) or by a failure (`failure`, one line),
and whatever was recorded is finished playable first (Recorder never discards). Only a failure before the
graph runs (a bad argument, an endpoint in use, a source that never opened) raises, as StreamSRError.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .enhancer import Enhancer
from .errors import InputError, Interrupted, StreamSRError
from .frame import Frame, Timeline
from .latency import LatencySummary, span_summary, summarize_ms
from .pipeline import PipelineConfig, PipelineStats, run_pipeline
from .sinks import LIVE_ENCODER, Display, EncoderOptions, Recorder, Segment, Sink, check_output_path
from .spec import EnhancerSpec
from .sources import CaptureOptions, FrameSource, LiveOptions, ReconnectingSource, open_source
from .transport import DEFAULT_ENDPOINT, DEFAULT_PUB_HWM, CurveServer, Publisher, WireFormat, is_loopback, normalize_endpoint
from .urls import redact_url

log = logging.getLogger(__name__)

OFF_HOST_WIRE = WireFormat("jpeg")
"""What `wire=None` (auto) publishes off the host: JPEG at quality 90. On loopback it is raw: no CPU spent,
lossless, and bandwidth is free; a 4x 1080p-class stream raw is ~1.5 Gbit/s at 30 fps, more than a 1 GbE
link, and JPEG 90 is ~15x smaller (docs/streaming.md, "Wire: raw or JPEG")."""

LOW_FPS_AFTER_S = 5.0
"""The low-output-rate hint waits this long (warm-up: engine build, first frames) and then needs the output
below half the input over LOW_FPS_WINDOWS consecutive status windows (1 s each), so a hiccup does not fire it."""
LOW_FPS_WINDOWS = 3


def resolve_wire(wire: WireFormat | str | None, endpoint: str) -> WireFormat:
    """The wire format for `endpoint`: as given (a WireFormat or its spec, `raw` / `jpeg[:Q]`), or for None
    raw on loopback and OFF_HOST_WIRE otherwise. InputError naming the spec when it is not one."""
    if isinstance(wire, WireFormat):
        return wire
    if wire is None or wire == "auto":
        return WireFormat("raw") if is_loopback(endpoint) else OFF_HOST_WIRE
    try:
        return WireFormat.parse(wire)
    except ValueError as e:
        raise InputError(f"--wire: {e}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveSpec:
    """What a live run produces and when it stops; resolved once (stream() makes it from its arguments).

    publish: a normalized ZeroMQ endpoint, or None; wire: its encoding (resolved: never None here);
    name: the stream name in each header; hwm: frames queued per subscriber before the publisher drops for
    it; curve/insecure: encryption and the explicit clear-text opt-in (see Publisher); wait_subscriber: s to
    wait for a first subscriber before the source opens. record: the first file of the live recording;
    encoder: its encoder settings. display: an OpenCV window. frames / duration (s): stop after that many
    frames out / seconds (None = until the source ends or the caller stops it)."""

    publish: str | None = None
    wire: WireFormat = WireFormat("raw")
    name: str = "streamsr"
    hwm: int = DEFAULT_PUB_HWM
    curve: CurveServer | None = None
    insecure: bool = False
    wait_subscriber: float = 0.0
    record: Path | None = None
    encoder: EncoderOptions = LIVE_ENCODER
    overwrite: bool = False
    display: bool = False
    frames: int | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.publish is None and self.record is None and not self.display:
            raise ValueError("LiveSpec needs an output: publish, record and/or display")
        if self.hwm < 1:
            raise ValueError(f"LiveSpec.hwm must be >= 1, got {self.hwm}")
        if self.frames is not None and self.frames < 1:
            raise ValueError(f"LiveSpec.frames must be >= 1 or None, got {self.frames}")
        if self.duration is not None and self.duration <= 0:
            raise ValueError(f"LiveSpec.duration must be > 0 s or None, got {self.duration}")
        if self.wait_subscriber < 0:
            raise ValueError(f"LiveSpec.wait_subscriber must be >= 0 s, got {self.wait_subscriber}")


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """A once-a-second snapshot for a status line: rates over the last window (fps), capture->emitted
    latency p50/p99 (ms) over the last 3 s, and the counts so far."""

    fps_in: float
    fps_out: float
    latency_p50: float
    latency_p99: float
    dropped: int
    subscribers: int | None
    refused: int
    reconnects: int


@dataclass(slots=True)
class LiveResult:
    """What a live run did. Counts: frames_in = frames_out + dropped + unfinished (dropped: stale frames the
    newest-frame policy skipped because the enhancer was behind the source; unfinished: in flight when it
    stopped). Publisher (None fields without one): published frames, slow_subscriber_events (times a
    subscriber's queue was full, so it missed frames until it caught up; each viewer counts its own exact
    misses), bytes_published, refused handshakes. Source: reconnects; size_changes: times the
    frames out changed size (a source back at another resolution, or a stream that changed it mid-flight). recording: the segments
    written (rec.mp4, rec.001.mp4, ...). latency: capture->emitted over the run's last 10 000 frames.
    interrupted: ended by Ctrl-C/SIGTERM (KeyboardInterrupt); failure: why it ended early, one line, or None."""

    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    unfinished: int = 0
    seconds: float = 0.0
    endpoint: str | None = None
    wire: WireFormat | None = None
    clear_text_off_host: bool = False
    published: int | None = None
    slow_subscriber_events: int | None = None
    bytes_published: int | None = None
    refused: int = 0
    reconnects: int = 0
    size_changes: int = 0
    recording: list[Segment] = field(default_factory=list)
    latency: LatencySummary = field(default_factory=lambda: summarize_ms([]))
    interrupted: bool = False
    failure: str | None = None

    @property
    def fps_out(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0


def stream(
    source: str | Path | FrameSource,
    *,
    publish: str | int | None = None,
    record: str | Path | None = None,
    display: bool = False,
    wire: WireFormat | str | None = None,
    name: str = "streamsr",
    hwm: int = DEFAULT_PUB_HWM,
    curve: CurveServer | None = None,
    insecure: bool = False,
    wait_subscriber: float = 0.0,
    frames: int | None = None,
    duration: float | None = None,
    encoder: EncoderOptions = LIVE_ENCODER,
    overwrite: bool = False,
    enhancer: Enhancer | None = None,
    weights: str | Path | None = None,
    spec: EnhancerSpec | None = None,
    realtime: bool = False,
    loop: bool = False,
    capture: CaptureOptions = CaptureOptions(),
    live: LiveOptions = LiveOptions(),
    av_options: dict[str, str] | None = None,
    stop: threading.Event | None = None,
    on_status: Callable[[LiveStatus], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    **settings: object,
) -> LiveResult:
    """Enhance a live source 4x and publish / record / show it with bounded latency; return what happened.

    source: an open FrameSource, or a spec for `open_source` (synthetic[:WxH@FPS], /dev/videoN, a URL,
    lavfi:GRAPH, a file; `realtime`/`loop`/`capture`/`live`/`av_options` go to it). Outputs: `publish`
    (endpoint; a bare port binds 127.0.0.1), `record` (a file; segments beside it on size changes),
    `display`. With none of them it publishes on tcp://127.0.0.1:5555. `wire`: raw, jpeg[:Q], or None =
    raw on loopback, JPEG 90 off the host. `enhancer`: a built Enhancer, else one is built
    (after the endpoint is bound and the record path checked, so a refusal is instant) from `spec`, or from
    `weights` and `settings` (any other EnhancerSpec field: engine, device, precision, batch, tile, halo...),
    resolved here (`EnhancerSpec.resolve`; nothing: the shipped default). `stop`: set it (any thread) to end
    the run normally.

    Raises StreamSRError (one line) for what fails before frames flow: clear text off the host without
    `insecure` (ClearTextRefused), a record path that exists, an endpoint in use, a source that cannot be
    opened. After that it returns a LiveResult, with `interrupted` or `failure` set when it did not end by
    choice, and every output finished (the recording closed playable up to its last frame).
    """
    if publish is None and record is None and not display:
        publish = DEFAULT_ENDPOINT
    endpoint = normalize_endpoint(publish) if publish is not None else None
    live_spec = LiveSpec(
        publish=endpoint, wire=resolve_wire(wire, endpoint) if endpoint is not None else WireFormat("raw"),
        name=name, hwm=hwm, curve=curve, insecure=insecure, wait_subscriber=wait_subscriber,
        record=Path(record) if record is not None else None, encoder=encoder, overwrite=overwrite,
        display=display, frames=frames, duration=duration,
    )
    if enhancer is None and spec is None:
        spec = EnhancerSpec.resolve(weights, **settings)
    elif weights is not None or settings or (enhancer is not None and spec is not None):
        raise InputError("give one of enhancer=, spec= or weights= and settings")
    open_args = dict(realtime=realtime, loop=loop, capture=capture, live=live, av_options=av_options)
    return LiveRun(live_spec, on_status=on_status, on_notice=on_notice).run(
        source, enhancer=enhancer, spec=spec, open_args=open_args, stop=stop)


class LiveRun:
    """One run of the live graph for a LiveSpec (stream() is the usual way in). Not reusable."""

    def __init__(self, spec: LiveSpec, *, on_status: Callable[[LiveStatus], None] | None = None,
                 on_notice: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self._on_status = on_status
        self._on_notice = on_notice
        self.result = LiveResult(endpoint=spec.publish, wire=spec.wire if spec.publish else None)

    def _notice(self, text: str) -> None:
        if self._on_notice is not None:
            self._on_notice(text)

    def run(self, source: str | Path | FrameSource, *, enhancer: Enhancer | None = None,
            spec: EnhancerSpec | None = None, open_args: dict | None = None,
            stop: threading.Event | None = None) -> LiveResult:
        enhancer_spec, spec, result = spec, self.spec, self.result
        stop = stop or threading.Event()
        if spec.record is not None:
            check_output_path(spec.record, overwrite=spec.overwrite)
        publisher: Publisher | None = None
        sinks: list[Sink] = []
        src: FrameSource | None = source if not isinstance(source, (str, Path)) else None
        owns_source = src is None
        ran = False
        try:
            if spec.publish is not None:
                publisher = Publisher(spec.publish, name=spec.name, hwm=spec.hwm, insecure=spec.insecure,
                                      curve=spec.curve, wire=spec.wire)
                sinks.append(publisher)
                result.endpoint = publisher.endpoint
                result.clear_text_off_host = publisher.clear_text_off_host
                if publisher.clear_text_off_host:
                    self._notice(f"WARNING: {clear_text_warning(publisher.endpoint)}")
                self._notice(f"publishing on {publisher.endpoint}{' (CURVE)' if spec.curve else ''}, wire {spec.wire}")
            if enhancer is None:
                enhancer = Enhancer.build(enhancer_spec)
            if publisher is not None and spec.wait_subscriber > 0:
                if not publisher.wait_for_subscribers(1, spec.wait_subscriber):
                    self._notice(f"no subscriber after {spec.wait_subscriber:g} s; starting anyway")
            if spec.display:
                sinks.append(Display(f"streamsr {redact_url(str(source))}", on_quit=stop.set))
            if src is None:
                src = open_source(source, **(open_args or {}))
            info = src.info
            recorder = None
            if spec.record is not None:
                recorder = Recorder(spec.record, rate=info.rate, options=spec.encoder, overwrite=spec.overwrite)
                sinks.append(recorder)
            scale = enhancer.tiler.scale
            label = redact_url(str(source)) if isinstance(source, (str, Path)) else type(source).__name__
            self._notice(f"{label}: {info.width}x{info.height} @ {float(info.rate):g} fps -> {info.width * scale}x"
                         f"{info.height * scale}; {enhancer.engine.describe()}, tile {enhancer.tiler.tile}+"
                         f"{enhancer.tiler.halo} halo{'' if src.live else ' (not live: every frame, as fast as possible)'}")
            ran = True
            self._run(src, enhancer, sinks, publisher=publisher, recorder=recorder, stop=stop)
        finally:
            if src is not None and owns_source:
                src.close()
            if not ran:  # the pipeline finishes its sinks; these never got there
                for s in sinks:
                    s.abort()
        return result

    def _run(self, src: FrameSource, enhancer: Enhancer, sinks: list[Sink], *, publisher: Publisher | None,
             recorder: Recorder | None, stop: threading.Event) -> None:
        spec, result = self.spec, self.result
        stats = PipelineStats()
        latencies: deque[float] = deque(maxlen=10_000)  # capture -> emitted, ms, for the result
        recent: deque[Timeline] = deque()
        t_start = time.monotonic()
        window = {"t": t_start, "in": 0, "out": 0, "low": 0, "hinted": False, "segments": 0,
                  "size": None}

        def on_frame(frame: Frame) -> None:
            lat = frame.timeline.span_ms("captured", "emitted")
            if lat is not None:
                latencies.append(lat)
            if spec.frames is not None and stats.frames_out >= spec.frames:
                stop.set()
            size = (frame.width, frame.height)
            if window["size"] is not None and size != window["size"]:
                result.size_changes += 1
            window["size"] = size
            if recorder is not None and len(recorder.segments) > window["segments"]:
                window["segments"] = len(recorder.segments)
                self._notice(f"frame size changed to {frame.width}x{frame.height}: recording continues in a new "
                             f"segment after {recorder.segments[-1].describe()}")
            recent.append(frame.timeline)
            horizon = (frame.timeline.emitted or 0) - 3_000_000_000
            while recent and (recent[0].emitted or 0) < horizon:
                recent.popleft()
            now = time.monotonic()
            if now - window["t"] < 1.0:
                return
            dt = now - window["t"]
            fps_in, fps_out = (stats.frames_in - window["in"]) / dt, (stats.frames_out - window["out"]) / dt
            window.update(t=now, out=stats.frames_out, **{"in": stats.frames_in})
            self._check_rate(now - t_start, fps_in, fps_out, stats.dropped, window)
            if self._on_status is not None:
                ls = span_summary(list(recent), "captured", "emitted")
                self._on_status(LiveStatus(
                    fps_in=fps_in, fps_out=fps_out, latency_p50=ls.p50, latency_p99=ls.p99, dropped=stats.dropped,
                    subscribers=None if publisher is None else publisher.subscribers,
                    refused=0 if publisher is None else publisher.refused, reconnects=_reconnects(src)))

        timer = None
        if spec.duration is not None:
            timer = threading.Timer(spec.duration, stop.set)
            timer.daemon = True
            timer.start()
        # queue_size 2: one frame being written while the next is enhanced; more would only add latency
        config = PipelineConfig(live=src.live, queue_size=2 if src.live else 4, finish_on_interrupt=True,
                                keep_timelines=2000)
        try:
            run_pipeline(src, enhancer, sinks, config=config, on_frame=on_frame, stop=stop, stats=stats)
        except Interrupted:
            result.interrupted = True
        except StreamSRError as e:  # source or output failed: the sinks are finished, the recording kept
            result.failure = str(e)
        except Exception as e:  # noqa: BLE001 - the unforeseen still ends with outputs finished and a report
            log.debug("live run failed", exc_info=True)
            result.failure = f"{type(e).__name__}: {e}"
        finally:
            if timer is not None:
                timer.cancel()
            result.seconds = time.monotonic() - t_start
            result.frames_in, result.frames_out = stats.frames_in, stats.frames_out
            result.dropped, result.unfinished = stats.dropped, stats.unfinished
            result.latency = summarize_ms(list(latencies))
            result.reconnects = _reconnects(src)
            if publisher is not None:
                result.published, result.slow_subscriber_events = publisher.sent, publisher.dropped_slow
                result.bytes_published, result.refused = publisher.bytes_sent, publisher.refused
            if recorder is not None:
                result.recording = recorder.segments
        if result.failure is None and isinstance(src, ReconnectingSource) and src.failure:
            result.failure = src.failure

    def _check_rate(self, elapsed: float, fps_in: float, fps_out: float, dropped: int, window: dict) -> None:
        """One notice, once, when the output rate stays below half the input's (the machine cannot keep up)."""
        if window["hinted"] or elapsed < LOW_FPS_AFTER_S:
            return
        window["low"] = window["low"] + 1 if fps_in > 0 and fps_out < fps_in / 2 else 0
        if window["low"] >= LOW_FPS_WINDOWS:
            window["hinted"] = True
            self._notice(f"hint: output {fps_out:.1f} fps is below half the input's {fps_in:.1f} fps ({dropped} "
                         "frames dropped so far): this engine cannot keep up; a smaller preset (--preset), a GPU "
                         "(--device cuda) or larger tiles (--tile) would")


def clear_text_warning(endpoint: str) -> str:
    return f"publishing on {endpoint} without encryption (--insecure): anyone on the network can watch"


def _reconnects(src: FrameSource) -> int:
    return src.reconnects if isinstance(src, ReconnectingSource) else 0
