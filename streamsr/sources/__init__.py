"""Frame sources: whatever a spec names, opened as a `FrameSource` (an iterator of Frames with a
StreamInfo, `live`, `interrupt()` and `close()`). Sources never see tensors or sinks.

Modules: `base` (StreamInfo, the FrameSource protocol), `file` (lossless PyAV decode of files),
`synthetic` (a paced test pattern), `replay` (a file paced at its frame rate), `live` (network streams,
capture devices and lavfi graphs, with timeouts and reconnection). Everything public is re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .base import FrameSource, StreamInfo
from .file import VIDEO_SUFFIXES, FileSource, PacketIndex, index_packets
from .live import (
    NETWORK_SCHEMES, CaptureOptions, LiveOptions, ReconnectingSource, SourceLost, device_path, open_capture,
    open_stream,
)
from .replay import ReplaySource
from .synthetic import SYNTHETIC_PREFIXES, SyntheticSource, parse_synthetic, synthetic_image

__all__ = [
    "NETWORK_SCHEMES", "SYNTHETIC_PREFIXES", "VIDEO_SUFFIXES", "CaptureOptions", "FileSource", "FrameSource",
    "LiveOptions", "PacketIndex", "ReconnectingSource", "ReplaySource", "SourceLost", "StreamInfo",
    "SyntheticSource", "index_packets", "open_capture", "open_source", "open_stream",
    "synthetic_image",
]


def open_source(
    spec: str | Path,
    *,
    realtime: bool = False,
    loop: bool = False,
    capture: CaptureOptions = CaptureOptions(),
    live: LiveOptions = LiveOptions(),
    av_options: dict[str, str] | None = None,
) -> FrameSource:
    """Open whatever `spec` names (InputError, one line, when it cannot be opened):

    - `synthetic[:WxH[@FPS]]` (or `test:...`): SyntheticSource, paced (always live);
    - `/dev/videoN` or `N`: a capture device (open_capture with `capture` settings);
    - `lavfi:GRAPH`: an FFmpeg filter graph as a live input (e.g. `lavfi:testsrc=size=640x480:rate=30,realtime`);
    - `scheme://...` with a NETWORK_SCHEMES scheme: a live network stream (open_stream);
    - anything else: a video file — FileSource, or ReplaySource (paced, live) when `realtime`.
    """
    s = str(spec)
    head = s.split(":", 1)[0].lower()
    if head in SYNTHETIC_PREFIXES and (s == head or s[len(head)] == ":"):
        return parse_synthetic(s, realtime=True)
    if device_path(s) is not None:
        return open_capture(s, capture=capture, live=live)
    if head == "lavfi" and ":" in s:
        return open_stream(s.split(":", 1)[1], format="lavfi", options=av_options, live=live)
    if "://" in s and head in NETWORK_SCHEMES:
        return open_stream(s, options=av_options, live=live)
    if "://" in s:
        raise InputError(f"input {s}: unsupported URL scheme {head!r} (supported: {', '.join(sorted(NETWORK_SCHEMES))})")
    if realtime:
        return ReplaySource(s, loop=loop)
    return FileSource(s)
