"""`streamsr stream SOURCE [--publish ENDPOINT] [--record out.mp4] [--display]`: live 4x enhancement.

Parses the options and calls the live runner (`streamsr.live.stream`); prints its notices, a status line
and the summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import InputError, Interrupted
from ..latency import LatencySummary
from ..live import LiveResult, LiveStatus, clear_text_warning, resolve_wire, stream as run_stream
from ..sinks import EncoderOptions
from ..sources import CaptureOptions, LiveOptions
from ..spec import EnhancerSpec
from ..transport import DEFAULT_ENDPOINT, DEFAULT_PUB_HWM, CurveServer, is_loopback, normalize_endpoint
from .common import StatusLine, fmt_ms, parse_size
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
                                          "tcp://127.0.0.1:5555 (a bare port binds 127.0.0.1). Default: "
                                          "tcp://127.0.0.1:5555 when there is no --record or --display."),
    wire: str = typer.Option("auto", "--wire", help="How frames are published: raw (BGR pixels, lossless), jpeg "
                             "or jpeg:QUALITY (1-100, default 90). auto: raw on a loopback endpoint, jpeg:90 "
                             "off the host (raw 4x video needs more than a 1 GbE link)."),
    record: Optional[Path] = typer.Option(None, "--record", help="Also record the enhanced stream to this file "
                                          "(a size change continues in FILE.001.mp4, ...)."),
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
    batch: Batch = None,
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
    source is reopened with backoff, also at another size (the recording continues in a new segment).
    Without --record or --display it publishes on tcp://127.0.0.1:5555. Ctrl-C or SIGTERM stops it: the
    recording is closed playable, the summary printed, exit status 130. A source lost for good or a failure
    also finishes the recording and prints the summary, then exits 1.
    """
    if publish is None and record is None and not display:
        publish = DEFAULT_ENDPOINT
    clear_text = publish is not None and curve is None and not is_loopback(normalize_endpoint(publish))
    if clear_text and not insecure:  # checked before the model loads: a refusal should be instant
        raise InputError(f"--publish {publish} is not a loopback address and the video would leave this host "
                         "unencrypted: add --curve DIR (keys from `streamsr keys DIR`), or --insecure to accept that")
    wire_format = resolve_wire(wire, normalize_endpoint(publish)) if publish is not None else None
    width, height = parse_size("--size", size) if size is not None else (None, None)
    status = StatusLine(quiet=quiet)
    try:
        result = run_stream(
            source, publish=publish, record=record, display=display, wire=wire_format, name=name, hwm=hwm,
            curve=CurveServer.from_dir(curve) if curve is not None else None, insecure=insecure,
            wait_subscriber=wait_subscriber, frames=frames, duration=duration,
            encoder=EncoderOptions(codec=codec, crf=crf, preset="veryfast"), overwrite=overwrite,
            spec=EnhancerSpec.resolve(weights, preset=preset, engine=engine, device=device, precision=precision,
                                      batch=batch, tile=tile, halo=halo),
            realtime=realtime, loop=loop,
            capture=CaptureOptions(width=width, height=height, fps=fps, pixel_format=pixel_format),
            live=LiveOptions(open_timeout=open_timeout, read_timeout=read_timeout, give_up_after=give_up_after),
            av_options=_parse_av_options(av_option),
            on_status=lambda st: status.show(_status_line(st)),
            on_notice=lambda text: status.notice(text, always=text.startswith(("WARNING", "hint"))),
        )
    finally:
        status.end()
    print(f"streamsr: {summary(result)}", file=sys.stderr)
    if result.clear_text_off_host:
        print(f"streamsr: WARNING: {clear_text_warning(result.endpoint)}", file=sys.stderr)
    if result.failure:  # the outputs are finished; the exit status still says the stream did not end by choice
        raise InputError(result.failure)
    if result.interrupted:
        raise Interrupted("interrupted; outputs finished and closed")


def _status_line(st: LiveStatus) -> str:
    subs = f" | subscribers {st.subscribers}" if st.subscribers is not None else ""
    if st.refused:
        subs += f" | refused {st.refused}"
    return (f"in {st.fps_in:5.1f} fps | out {st.fps_out:5.1f} fps | latency p50 {fmt_ms(st.latency_p50)} "
            f"p99 {fmt_ms(st.latency_p99)} ms | dropped {st.dropped}{subs}"
            f"{f' | reconnects {st.reconnects}' if st.reconnects else ''}")


def _latency(lat: LatencySummary) -> str:
    return f"p50 {fmt_ms(lat.p50)} / p99 {fmt_ms(lat.p99)} / max {fmt_ms(lat.max)} ms"


def summary(r: LiveResult) -> str:
    """The one-line summary of a live run."""
    parts = [f"{r.frames_out} frames out of {r.frames_in} in {r.seconds:.1f} s ({r.fps_out:.1f} fps), "
             f"{r.dropped} dropped (newest-frame policy)"]
    if r.unfinished:
        parts.append(f"{r.unfinished} in flight when it stopped")
    if r.reconnects:
        parts.append(f"{r.reconnects} reconnect(s)")
    if r.size_changes:
        parts.append(f"{r.size_changes} size change(s)")
    if r.published is not None:
        kib = r.bytes_published / max(r.published, 1) / 1024
        parts.append(f"published {r.published} ({r.wire}, {kib:.0f} KiB/frame)")
        if r.slow_subscriber_events:
            parts.append(f"a subscriber's queue was full {r.slow_subscriber_events} time(s) (it missed frames "
                         "until it caught up)")
        if r.refused:
            parts.append(f"refused {r.refused} unauthenticated connection attempt(s)")
    if r.recording:
        parts.append("recorded " + ", ".join(seg.describe() for seg in r.recording))
    return (f"{'stopped; ' if r.interrupted else ''}{', '.join(parts)}; latency capture->emitted "
            f"{_latency(r.latency)}")
