"""`streamsr view ENDPOINT [--record out.mp4] [--display]`: subscribe to a stream, show/record it, and
report the end-to-end latency of every frame (capture -> received, from the frame's own timeline).

Imports nothing that imports torch: a display workstation needs only the viewer's dependencies."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Optional

import typer

from ..errors import Interrupted, StreamSRError, TransportError
from ..latency import span_summary, summarize_ms
from ..sinks import Display, EncoderOptions, Recorder, Sink, check_output_path
from ..transport import DEFAULT_ENDPOINT, DEFAULT_MAX_FRAME, CurveClient, Subscriber
from .common import StatusLine, fmt_ms, parse_size

_DEFAULT_MAX_SIZE = f"{DEFAULT_MAX_FRAME[0]}x{DEFAULT_MAX_FRAME[1]}"


def view(
    endpoint: str = typer.Argument(DEFAULT_ENDPOINT, help="Publisher endpoint, e.g. tcp://127.0.0.1:5555 (a bare port means 127.0.0.1)."),
    record: Optional[Path] = typer.Option(None, "--record", help="Record what arrives to this video file (a size "
                                          "change continues in FILE.001.mp4, ...; odd sizes are padded to even)."),
    display: bool = typer.Option(False, "--display", help="Show the stream in a window (needs a GUI OpenCV)."),
    frames: Optional[int] = typer.Option(None, min=1, help="Stop after this many frames."),
    timeout: Optional[float] = typer.Option(None, min=0.1, help="Stop when no frame arrives for this many seconds "
                                            "(an error if none arrived at all)."),
    all_frames: bool = typer.Option(False, "--all-frames", help="Take every frame in order instead of the newest "
                                    "(a slow viewer then lags, up to the publisher's queue limit)."),
    curve: Optional[Path] = typer.Option(None, help="CURVE keys folder: uses <key-name>.key_secret and server.key."),
    key_name: str = typer.Option("client", help="Which client key pair in the --curve folder to use."),
    max_size: str = typer.Option(_DEFAULT_MAX_SIZE, "--max-size", help="Largest frame WxH accepted; a peer sending "
                                 "more is cut off before it is buffered (memory stays bounded)."),
    rate: float = typer.Option(30.0, min=0.1, help="Nominal frame rate written into the --record file."),
    codec: str = typer.Option("libx264", help="Encoder for --record."),
    overwrite: bool = typer.Option(False, help="Replace an existing --record file."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No status line (the final summary is still printed)."),
) -> None:
    """Watch a `streamsr stream` publication (or any publisher of its wire format).

    Latency is capture -> received from each frame's timeline: meaningful when publisher and viewer share a
    host (one monotonic clock). Raw and JPEG wire formats are both decoded. Ctrl-C or SIGTERM stops it: the
    recording is closed playable, the summary printed, exit status 130. If receiving fails, the recording
    is closed too and it exits 1.
    """
    max_frame = parse_size("--max-size", max_size)
    if record is not None:
        check_output_path(record, overwrite=overwrite)
    stop = threading.Event()
    sinks: list[Sink] = []
    if display:
        sinks.append(Display(f"streamsr view {endpoint}", on_quit=stop.set))
    recorder = None
    if record is not None:
        recorder = Recorder(record, rate=rate, options=EncoderOptions(codec=codec, crf=20, preset="veryfast"),
                            overwrite=overwrite)
        sinks.append(recorder)
    # insecure=True: the warning is printed here, at the start and in the summary, not logged
    sub = Subscriber(endpoint, conflate=not all_frames, max_frame=max_frame, insecure=True,
                     curve=CurveClient.from_dir(curve, name=key_name) if curve is not None else None)
    clear_text = (f"streamsr: WARNING: receiving from {sub.endpoint} without --curve: the video crosses the "
                  "network unencrypted") if sub.clear_text_off_host else None
    status = StatusLine(quiet=quiet)
    latencies: deque[float] = deque(maxlen=100_000)
    seqs = {"first": None, "last": None}
    count = 0
    t_start = time.monotonic()
    t_first = t_last = None
    last = {"t": t_start, "n": 0}
    interrupted = False
    failure: StreamSRError | None = None
    if clear_text:
        print(clear_text, file=sys.stderr)
    if not quiet:
        print(f"streamsr: subscribed to {sub.endpoint}{' (CURVE)' if curve else ''}", file=sys.stderr)
    try:
        try:
            for frame in sub.frames(timeout=timeout, stop=stop):
                t_last = time.monotonic()
                for s in sinks:
                    s.write(frame)
                count += 1
                if seqs["first"] is None:
                    seqs["first"] = frame.seq
                    t_first = t_last
                seqs["last"] = frame.seq
                lat = frame.timeline.span_ms("captured", "received")
                if lat is not None:
                    latencies.append(lat)
                if status.add(frame.timeline, "received"):
                    now = time.monotonic()
                    fps = (count - last["n"]) / max(now - last["t"], 1e-9)
                    last.update(t=now, n=count)
                    ls = span_summary(status.recent, "captured", "received")
                    st = sub.stats
                    status.show(f"{fps:5.1f} fps {frame.width}x{frame.height} | latency capture->received "
                                f"p50 {fmt_ms(ls.p50)} p99 {fmt_ms(ls.p99)} ms | skipped {st.conflated} | "
                                f"missed {st.seq_gaps} | malformed {st.malformed}")
                if frames is not None and count >= frames:
                    break
        except KeyboardInterrupt:
            interrupted = True
        except StreamSRError as e:  # the receiver failed, or a sink did: reported after the summary
            failure = e
    finally:
        status.end()
        sub.close()
        for s in sinks:  # a Recorder finishes its file on close and abort alike: nothing recorded is lost
            try:
                s.close()
            except StreamSRError as e:
                failure = failure or e
    st = sub.stats
    lat = summarize_ms(list(latencies))
    t_end = time.monotonic()
    if count:
        receiving = t_last - t_first
        rate_note = f", {(count - 1) / receiving:.1f} fps" if count > 1 and receiving > 0 else ""
        timing = (f" (seq {seqs['first']}..{seqs['last']}) over {receiving:.1f} s from first to last frame"
                  f"{rate_note}; waited {t_first - t_start:.1f} s for the first and {t_end - t_last:.1f} s idle after "
                  "the last")
    else:
        timing = f" in {t_end - t_start:.1f} s"
    connection = ""
    if st.dropped_connections:
        connection += f", connection to the publisher lost {st.dropped_connections} time(s)"
    if st.handshakes_failed:
        connection += f", {st.handshakes_failed} failed CURVE handshake(s)"
    if st.publisher_drops:
        connection += f", {st.publisher_drops} of the missed dropped by the publisher for this viewer (queue full)"
    print(f"streamsr: {'stopped; ' if interrupted else ''}received {count} frames{timing}; "
          f"{st.conflated} skipped for newer, {st.seq_gaps} missed upstream, {st.out_of_order} out of order, "
          f"{st.malformed} malformed{connection}; latency capture->received p50 {fmt_ms(lat.p50)} / "
          f"p99 {fmt_ms(lat.p99)} / max {fmt_ms(lat.max)} ms"
          + (f"; recorded {', '.join(seg.describe() for seg in recorder.segments)}" if recorder and recorder.segments
             else ""), file=sys.stderr)
    if clear_text:
        print(clear_text, file=sys.stderr)
    if failure is not None:
        raise failure
    if interrupted:
        raise Interrupted("interrupted; recording finished and closed" if recorder and recorder.segments
                          else "interrupted")
    if count == 0:
        why = ""
        if st.handshakes_failed:
            why = f" ({st.handshakes_failed} CURVE handshake(s) failed: check the --curve keys and --key-name)"
        elif st.malformed:
            why = f" (last malformed message: {st.last_malformed})"
        raise TransportError(f"no frames from {sub.endpoint}" + (f" within {timeout:g} s" if timeout else "") + why)
