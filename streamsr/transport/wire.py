"""The streamsr wire format: `encode_frame` makes the message a Publisher sends, `parse_message` validates
a received one (naming the first problem) before a Frame is made from it.

Wire format, version 1 — every frame is one two-part ZeroMQ message:

  part 0: UTF-8 JSON object (the header)
    msg        str          stream name (imagezmq's "msg")
    dtype      "uint8"      (imagezmq's "dtype")
    shape      [H, W, 3]    (imagezmq's "shape")
    v          1            wire-format version; a subscriber rejects any other
    seq        int >= 0     the frame's position in the source stream (gaps = frames dropped upstream)
    pts        int | null   presentation time in `time_base` units
    time_base  [num, den] | null
    pix_fmt    "bgr24"      part 1 is BGR, so OpenCV / imagezmq consumers get a normal image
    scale      int >= 1     1 = source pixels, 4 = enhanced
    repeated   bool         a corrupt source frame was replaced by the previous good one
    timeline   {stage: ns}  Frame.timeline.to_dict() (monotonic ns of the publishing host)
  part 1: H*W*3 bytes, C order, BGR

imagezmq's ImageHub(REQ_REP=False) reads exactly this: `recv_json()` then `np.frombuffer(part1,
dtype=md["dtype"]).reshape(md["shape"])`, using only msg/dtype/shape; the other keys are ignored by it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
import zmq

from ..errors import TransportError
from ..frame import Frame, Timeline

WIRE_VERSION = 1
PIX_FMT = "bgr24"
DEFAULT_MAX_FRAME = (8192, 8192)
"""Largest frame (width, height) a Subscriber accepts unless told otherwise: 4x of a 1920x1080 scope
(7680x4320) fits. 8192 x 8192 x 3 bytes = 192 MiB per message."""
WIRE_SLACK_BYTES = 64 * 1024
"""Allowed on top of the pixel bytes of the largest frame: the JSON header (~0.5 KiB) and CURVE framing."""


class MalformedMessage(TransportError, ValueError):
    """A message on the wire is not a valid version-1 streamsr frame (the reason says which part/field)."""


def max_message_bytes(max_frame: tuple[int, int]) -> int:
    """ZMQ_MAXMSGSIZE for a receiver of frames up to `max_frame` = (width, height) pixels of BGR24."""
    w, h = max_frame
    if w < 1 or h < 1:
        raise ValueError(f"max_frame must be positive (width, height), got {max_frame}")
    return w * h * 3 + WIRE_SLACK_BYTES


def encode_frame(frame: Frame, *, name: str = "streamsr") -> tuple[bytes, np.ndarray]:
    """(header bytes, BGR pixels) for `frame`. The pixel array is a new C-contiguous (H, W, 3) uint8
    buffer that nothing else references, so it may be handed to ZeroMQ without a copy."""
    header = {
        "msg": name,
        "dtype": "uint8",
        "shape": [frame.height, frame.width, 3],
        "v": WIRE_VERSION,
        "seq": frame.seq,
        "pts": frame.pts,
        "time_base": None if frame.time_base is None else [frame.time_base.numerator, frame.time_base.denominator],
        "pix_fmt": PIX_FMT,
        "scale": frame.scale,
        "repeated": frame.repeated,
        "timeline": frame.timeline.to_dict(),
    }
    bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
    return json.dumps(header, separators=(",", ":")).encode(), bgr


@dataclass(frozen=True, slots=True)
class Header:
    """A validated version-1 header (parse_message): the frame's fields; shape is (height, width, 3)."""

    name: str
    height: int
    width: int
    seq: int
    pts: int | None
    time_base: Fraction | None
    scale: int
    repeated: bool
    timeline: Timeline


def _int(h: dict, key: str, *, minimum: int | None = None, optional: bool = False) -> int | None:
    v = h.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or (minimum is not None and v < minimum):
        raise MalformedMessage(f"header field {key!r} is {v!r}, expected an integer" +
                               (f" >= {minimum}" if minimum is not None else ""))
    return v


def parse_message(parts: list) -> tuple[Header, memoryview]:
    """Validate a received multipart message. Returns the header and a view of the BGR pixel bytes.
    Raises MalformedMessage naming the first problem: part count, JSON, version, field, or size."""
    if len(parts) != 2:
        raise MalformedMessage(f"expected 2 message parts (header, pixels), got {len(parts)}")
    raw = parts[0].bytes if isinstance(parts[0], zmq.Frame) else bytes(parts[0])
    try:
        h = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise MalformedMessage(f"header is not UTF-8 JSON ({e})") from None
    if not isinstance(h, dict):
        raise MalformedMessage(f"header is JSON {type(h).__name__}, expected an object")
    if h.get("v") != WIRE_VERSION or isinstance(h.get("v"), bool):
        raise MalformedMessage(f"unknown wire-format version {h.get('v')!r} (this streamsr reads v{WIRE_VERSION})")
    if h.get("dtype") != "uint8" or h.get("pix_fmt") != PIX_FMT:
        raise MalformedMessage(f"pixels are {h.get('dtype')!r}/{h.get('pix_fmt')!r}, expected 'uint8'/{PIX_FMT!r}")
    shape = h.get("shape")
    if (not isinstance(shape, list) or len(shape) != 3 or shape[2] != 3
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)):
        raise MalformedMessage(f"header shape {shape!r} is not [H, W, 3] with positive H, W")
    tb = h.get("time_base")
    if tb is not None:
        if (not isinstance(tb, list) or len(tb) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in tb)
                or tb[1] <= 0 or tb[0] <= 0):
            raise MalformedMessage(f"header time_base {tb!r} is not [num, den] with positive integers")
        tb = Fraction(tb[0], tb[1])
    name = h.get("msg")
    if not isinstance(name, str):
        raise MalformedMessage(f"header msg {name!r} is not a string")
    repeated = h.get("repeated", False)
    if not isinstance(repeated, bool):
        raise MalformedMessage(f"header repeated {repeated!r} is not a boolean")
    stamps = h.get("timeline", {})
    if not isinstance(stamps, dict):
        raise MalformedMessage("header timeline is not an object")
    try:
        timeline = Timeline.from_dict(stamps)
    except ValueError as e:
        raise MalformedMessage(f"header timeline: {e}") from None
    header = Header(
        name=name, height=shape[0], width=shape[1], seq=_int(h, "seq", minimum=0),
        pts=_int(h, "pts", optional=True), time_base=tb, scale=_int(h, "scale", minimum=1),
        repeated=repeated, timeline=timeline,
    )
    pixels = parts[1].buffer if isinstance(parts[1], zmq.Frame) else memoryview(parts[1])
    expected = header.height * header.width * 3
    if pixels.nbytes != expected:
        raise MalformedMessage(
            f"pixel part is {pixels.nbytes} bytes, shape {shape} needs {expected}"
        )
    return header, pixels


def to_frame(header: Header, pixels: memoryview) -> Frame:
    """The Frame of a parsed message: BGR wire pixels -> a new RGB (H, W, 3) uint8 image."""
    bgr = np.frombuffer(pixels, dtype=np.uint8).reshape(header.height, header.width, 3)
    return Frame(
        image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), seq=header.seq, pts=header.pts, time_base=header.time_base,
        scale=header.scale, repeated=header.repeated, timeline=header.timeline,
    )
