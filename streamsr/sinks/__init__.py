"""Sinks: where enhanced frames go. FileSink encodes with PyAV; Recorder records a live stream (FileSink
opened at the first frame, wall-clock timing); Display shows frames in an OpenCV window. (The ZeroMQ
Publisher, also a sink, lives in transport/publisher.py; the labelled comparison video's CompareSink in
compare.py.)

Every sink has `write(frame)`, `close()` (finish: the output is complete and playable) and `abort()`
(discard: nothing that looks complete is left behind). Sinks never see tensors.

Modules: `base` (the Sink protocol), `output` (path checks, container time bases, stream copying, the
atomic output file), `file` (EncoderOptions, FileSink), `resize` (`--outscale` sizes, ResizedSink), `join`
(join_segments), `live` (Display, Recorder).
"""

from .base import Sink
from .file import EncoderOptions, FileSink
from .join import join_segments
from .live import LIVE_ENCODER, Display, Recorder, Segment, segment_path
from .output import AtomicOutput, check_output_path, output_time_base, partial_path
from .resize import ResizedSink, scaled_size

__all__ = [
    "Sink",
    "EncoderOptions",
    "FileSink",
    "ResizedSink",
    "scaled_size",
    "join_segments",
    "AtomicOutput",
    "check_output_path",
    "partial_path",
    "output_time_base",
    "LIVE_ENCODER",
    "Display",
    "Recorder",
    "Segment",
    "segment_path",
]
