"""join_segments: the FileSink outputs of consecutive keyframe segments of one source joined into one file
without re-encoding (file jobs cut long inputs into segments: jobs.py)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from ..errors import OutputError
from .output import AtomicOutput, output_time_base


def join_segments(segments: list[Path], path: Path, *, streams_from: Path | None = None,
                  overwrite: bool = False) -> int:
    """Join video-only FileSink outputs of consecutive segments of one source (each starting at a keyframe,
    with the source's own timestamps, made with the same encoder options) into `path`, without
    re-encoding, copying `streams_from`'s other streams once. Returns the frames joined.

    Packets keep their pts; a decode timestamp that would not increase across a seam (the encoder's
    B-frame delay makes each segment's first dts start a little early) becomes the previous dts + 1 tick,
    which stays <= its pts. Written atomically like FileSink."""
    with av.open(str(segments[0])) as first:
        template = first.streams.video[0]
        tb = Fraction(template.time_base)
        _, mux_options = output_time_base(path, tb)
        out = AtomicOutput(path, options=mux_options, overwrite=overwrite)
        stream = out.container.add_stream_from_template(template)
        stream.time_base = tb
    out.copy_streams(streams_from)
    frames = 0
    last_dts: int | None = None

    def copy_all() -> None:
        nonlocal frames, last_dts
        for segment in segments:
            with av.open(str(segment)) as seg:
                for packet in seg.demux(seg.streams.video[0]):
                    if not packet.size:
                        continue
                    if packet.time_base != tb:
                        raise OutputError(f"output {path}: segment {segment.name} has time base "
                                          f"{packet.time_base}, not {tb}")
                    if last_dts is not None and (packet.dts is None or packet.dts <= last_dts):
                        packet.dts = last_dts + 1
                        if packet.pts is not None and packet.dts > packet.pts:
                            raise OutputError(f"output {path}: segment {segment.name} overlaps the one "
                                              f"before it (dts {packet.dts} > pts {packet.pts})")
                    last_dts = packet.dts
                    if packet.dts is not None:
                        out.copy_streams_until(float(packet.dts * tb))
                    packet.stream = stream
                    out.container.mux(packet)
                    frames += 1

    try:
        copy_all()
    except (av.error.FFmpegError, OSError) as e:
        out.abort()
        raise OutputError(f"output {path}: joining segments failed ({e})") from None
    except BaseException:
        out.abort()
        raise
    out.finish()
    return frames
