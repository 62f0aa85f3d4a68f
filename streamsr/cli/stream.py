"""`streamsr stream SOURCE --publish ENDPOINT [--record out.mp4] [--display]`: live 4x enhancement."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Optional

import typer

from ..enhancer import Enhancer
from ..errors import InputError, Interrupted
from ..frame import Frame
from ..latency import span_summary, summarize_ms
from ..pipeline import PipelineConfig, PipelineStats, run_pipeline
from ..sinks import Display, EncoderOptions, Recorder, Sink, check_output_path
from ..sources import CaptureOptions, FrameSource, LiveOptions, ReconnectingSource, open_source
from ..transport import DEFAULT_PUB_HWM, CurveServer, Publisher, is_loopback, normalize_endpoint
from ..urls import redact_url
from .common import LiveStatus, fmt_ms, parse_size
from .options import (
    Batch, DeviceName, EngineName, HaloSize, PrecisionName, PresetName, TileSize, WeightsPath,
)


def _parse_av_options(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise InputError(f"--av-option {p!r} is not KEY=VALUE")
        out[k] = v
    return out


def stream(
    source: str = typer.Argument(..., help="synthetic[:WxH[@FPS]], /dev/videoN or N (camera), rtsp/udp/srt/http URL, "
                                            "lavfi:GRAPH, or a video file (use --realtime to replay it live)."),
    publish: Optional[str] = typer.Option(None, "--publish", help="ZeroMQ endpoint to publish on, e.g. "
                                          "tcp://127.0.0.1:5555 (a bare port binds 127.0.0.1)."),
    record: Optional[Path] = typer.Option(None, "--record", help="Also record the enhanced stream to this file."),
    display: bool = typer.Option(False, "--display", help="Show the enhanced stream in a window (needs a GUI OpenCV)."),
    realtime: bool = typer.Option(False, "--realtime", help="Replay a file at its frame rate, like a live feed."),
    loop: bool = typer.Option(False, "--loop", help="With --realtime: start the file over at its end."),
    size: Optional[str] = typer.Option(None, help="Capture size WxH (camera)."),
    fps: Optional[float] = typer.Option(None, min=0.01, help="Capture frame rate (camera)."),
    pixel_format: Optional[str] = typer.Option(None, "--pixel-format", help="Camera pixel format, e.g. mjpeg, yuyv422."),
    av_option: list[str] = typer.Option([], "--av-option", help="FFmpeg input option KEY=VALUE (network/lavfi), repeatable."),
    open_timeout: float = typer.Option(5.0, min=0.1, help="Seconds a live source may take to open."),
    read_timeout: float = typer.Option(2.0, min=0.1, help="Seconds without data before a live source counts as lost."),
    give_up_after: Optional[float] = typer.Option(None, min=0, help="Stop when a lost source is not back within this many seconds (default: keep trying)."),
    frames: Optional[int] = typer.Option(None, min=1, help="Stop after this many frames out."),
    duration: Optional[float] = typer.Option(None, min=0.1, help="Stop after this many seconds."),
    wait_subscriber: float = typer.Option(0.0, min=0, help="Wait up to this many seconds for a first subscriber before starting the source."),
    curve: Optional[Path] = typer.Option(None, help="CURVE-encrypt and authenticate: a folder made by `streamsr keys` "
                                         "(uses server.key_secret and admits the public keys in authorized/)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow publishing without --curve on a non-loopback "
                                  "address: the video leaves this host unencrypted."),
    name: str = typer.Option("streamsr", help="Stream name sent in each message header (imagezmq's msg)."),
    hwm: int = typer.Option(DEFAULT_PUB_HWM, min=1, help="Frames queued per subscriber before the publisher drops for it."),
    engine: EngineName = "auto",
    device: DeviceName = "auto",
    precision: PrecisionName = "auto",
    batch: Batch = 16,
    tile: TileSize = None,
    halo: HaloSize = None,
    weights: WeightsPath = None,
    preset: PresetName = None,
    codec: str = typer.Option("libx264", help="Encoder for --record."),
    crf: int = typer.Option(20, min=0, max=63, help="Constant quality for --record."),
    overwrite: bool = typer.Option(False, help="Replace an existing --record file."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No status line (the final summary is still printed)."),
) -> None:
    """Enhance a live source 4x and publish it (ZeroMQ), record it and/or show it, with bounded latency.

    Live sources keep only the newest frame when the enhancer falls behind (drops are counted); a lost
    source is reopened with backoff. Ctrl-C or SIGTERM stops it cleanly: the recording is closed playable.
    """
    if publish is None and record is None and not display:
        raise InputError("nothing to do: give --publish ENDPOINT, --record FILE and/or --display")
    clear_text = publish is not None and curve is None and not is_loopback(normalize_endpoint(publish))
    if clear_text and not insecure:  # checked before the model loads: a refusal should be instant
        raise InputError(f"--publish {publish} is not a loopback address and the video would leave this host "
                         "unencrypted: add --curve DIR (keys from `streamsr keys DIR`), or --insecure to accept that")
    width, height = parse_size("--size", size) if size is not None else (None, None)
    capture = CaptureOptions(width=width, height=height, fps=fps, pixel_format=pixel_format)
    live_opts = LiveOptions(open_timeout=open_timeout, read_timeout=read_timeout, give_up_after=give_up_after)
    av_options = _parse_av_options(av_option)
    if record is not None:
        check_output_path(record, overwrite=overwrite)

    enhancer = Enhancer.build(engine=engine, device=device, precision=precision, batch=batch, tile=tile,
                              halo=halo, weights=weights, preset=preset)
    eng = enhancer.engine
    stop = threading.Event()
    sinks: list[Sink] = []
    publisher: Publisher | None = None
    src = None
    ran = False
    try:
        if publish is not None:
            publisher = Publisher(publish, name=name, hwm=hwm, insecure=insecure,
                                  curve=CurveServer.from_dir(curve) if curve is not None else None)
            sinks.append(publisher)
            if clear_text:
                print(f"streamsr: WARNING: {_CLEAR_TEXT.format(endpoint=publisher.endpoint)}", file=sys.stderr)
            if not quiet:
                print(f"streamsr: publishing on {publisher.endpoint}{' (CURVE)' if curve else ''}", file=sys.stderr)
            if wait_subscriber > 0 and not publisher.wait_for_subscribers(1, wait_subscriber):
                print(f"streamsr: no subscriber after {wait_subscriber:g} s; starting anyway", file=sys.stderr)
        if display:
            sinks.append(Display(f"streamsr {redact_url(source)}", on_quit=stop.set))
        src = open_source(source, realtime=realtime, loop=loop, capture=capture, live=live_opts, av_options=av_options)
        info = src.info
        if record is not None:
            sinks.append(Recorder(record, rate=info.rate, options=EncoderOptions(codec=codec, crf=crf, preset="veryfast"),
                                  overwrite=overwrite))
        live = src.live
        if not quiet:
            print(f"streamsr: {redact_url(source)}: {info.width}x{info.height} @ {float(info.rate):g} fps -> "
                  f"{info.width * enhancer.tiler.scale}x{info.height * enhancer.tiler.scale}; {eng.describe()}, tile {tile}+{halo} halo"
                  f"{'' if live else ' (not live: every frame, as fast as possible)'}", file=sys.stderr)
        ran = True
        _run(src, enhancer, sinks, publisher=publisher, live=live, stop=stop, frames=frames, duration=duration,
             quiet=quiet, record=record)
        failure = src.failure if isinstance(src, ReconnectingSource) else None
        if failure:  # the outputs are finished; the exit status still says the stream did not end by choice
            raise InputError(failure)
    finally:
        if src is not None:
            src.close()
        if not ran:  # run_pipeline closes or aborts its sinks; these never got there
            for s in sinks:
                s.abort()


_CLEAR_TEXT = "publishing on {endpoint} without encryption (--insecure): anyone on the network can watch"


def _reconnects(src: FrameSource) -> int:
    return src.reconnects if isinstance(src, ReconnectingSource) else 0


def _run(src: FrameSource, enhancer: Enhancer, sinks: list[Sink], *, publisher: Publisher | None, live: bool,
         stop: threading.Event, frames: int | None, duration: float | None, quiet: bool, record: Path | None) -> None:
    status = LiveStatus(quiet=quiet)
    stats = PipelineStats()
    latencies: deque[float] = deque(maxlen=10_000)  # capture -> emitted, ms, for the final summary
    t_start = time.monotonic()
    last = {"t": t_start, "in": 0, "out": 0}

    def on_frame(frame: Frame) -> None:
        lat = frame.timeline.span_ms("captured", "emitted")
        if lat is not None:
            latencies.append(lat)
        if frames is not None and stats.frames_out >= frames:
            stop.set()
        if status.add(frame.timeline, "emitted"):
            now = time.monotonic()
            dt = max(now - last["t"], 1e-9)
            fps_in = (stats.frames_in - last["in"]) / dt
            fps_out = (stats.frames_out - last["out"]) / dt
            last.update(t=now, out=stats.frames_out, **{"in": stats.frames_in})
            lat_s = span_summary(status.recent, "captured", "emitted")
            subs = f" | subscribers {publisher.subscribers}" if publisher is not None else ""
            if publisher is not None and publisher.refused:
                subs += f" | refused {publisher.refused}"
            reconnects = _reconnects(src)
            status.show(f"in {fps_in:5.1f} fps | out {fps_out:5.1f} fps | latency p50 {fmt_ms(lat_s.p50)} "
                        f"p99 {fmt_ms(lat_s.p99)} ms | dropped {stats.dropped}{subs}"
                        f"{f' | reconnects {reconnects}' if reconnects else ''}")

    timer = None
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    # queue_size 2: one frame being written while the next is enhanced; more would only add latency
    config = PipelineConfig(live=live, queue_size=2 if live else 4, finish_on_interrupt=True, keep_timelines=2000)
    interrupted = False
    try:
        run_pipeline(src, enhancer, sinks, config=config, on_frame=on_frame, stop=stop, stats=stats)
    except Interrupted:
        interrupted = True
    finally:
        if timer is not None:
            timer.cancel()
        status.end()
    seconds = time.monotonic() - t_start
    lat = summarize_ms(list(latencies))
    parts = [f"{stats.frames_out} frames out of {stats.frames_in} in {seconds:.1f} s "
             f"({stats.frames_out / max(seconds, 1e-9):.1f} fps), {stats.dropped} dropped (newest-frame policy)"]
    if stats.unfinished:
        parts.append(f"{stats.unfinished} in flight when it stopped")
    if _reconnects(src):
        parts.append(f"{_reconnects(src)} reconnect(s)")
    if publisher is not None:
        parts.append(f"published {publisher.sent}")
        if publisher.refused:
            parts.append(f"refused {publisher.refused} unauthenticated connection attempt(s)")
    if record is not None:
        parts.append(f"recorded {record}")
    print(f"streamsr: {'stopped; ' if interrupted else ''}{', '.join(parts)}; latency capture->emitted "
          f"p50 {fmt_ms(lat.p50)} / p99 {fmt_ms(lat.p99)} / max {fmt_ms(lat.max)} ms", file=sys.stderr)
    if publisher is not None and publisher.clear_text_off_host:
        print(f"streamsr: WARNING: {_CLEAR_TEXT.format(endpoint=publisher.endpoint)}", file=sys.stderr)
