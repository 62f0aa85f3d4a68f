"""The streamsr wire format: `encode_frame` makes the message a Publisher sends, `parse_message` validates
a received one (naming the first problem) before `to_frame` makes a Frame of it.

Wire format, version 1 — every frame is one two-part ZeroMQ message:

  part 0: UTF-8 JSON object (the header), at most MAX_HEADER_BYTES
    msg        str          stream name (imagezmq's "msg")
    dtype      "uint8"      (imagezmq's "dtype")
    shape      [H, W, 3]    (imagezmq's "shape") of the decoded image
    v          1            wire-format version; a subscriber rejects any other
    codec      "raw" | "jpeg"   what part 1 is; absent = "raw"
    n          int >= 0     the publisher's message number (optional): gaps in it are frames the publisher
                            dropped for this subscriber (its queue was full), apart from gaps in seq
    seq        int >= 0     the frame's position in the source stream (gaps = frames dropped upstream)
    pts        int | null   presentation time in `time_base` units
    time_base  [num, den] | null
    pix_fmt    "bgr24"      the image is BGR, so OpenCV / imagezmq consumers get a normal image
    scale      int >= 1     1 = source pixels, 4 = enhanced
    repeated   bool         a corrupt source frame was replaced by the previous good one
    timeline   {stage: ns}  Frame.timeline.to_dict() (monotonic ns of the publishing host)
  part 1: codec "raw": H*W*3 bytes, C order, BGR; codec "jpeg": a JPEG file of that H x W image.

imagezmq's ImageHub(REQ_REP=False) reads exactly this: `recv_image()` does `recv_json()` then
`np.frombuffer(part1, dtype=md["dtype"]).reshape(md["shape"])` (raw), `recv_jpg()` does `recv_json()` then
returns part 1 for `cv2.imdecode` (jpeg); both use only msg/dtype/shape and ignore the other keys.
(A "codec" key was added within version 1: an older subscriber counts JPEG frames as malformed, by size.)

Every integer is bounded (0 <= stamps, seq < 2**63; sizes <= the receiver's max_frame), floats,
NaN/Infinity and anything nested deeper than the fields above are refused, and the header's size is checked
before it is parsed: whatever a peer sends, parsing costs bounded time and memory and fails only with
MalformedMessage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

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
MAX_HEADER_BYTES = 16 * 1024
"""Largest header parsed: a real one is ~0.5 KiB (a long stream name and all nine stamps included); a
larger part 0 is refused unread, so no header can make the parser recurse deep or build a big object."""
_MAX_INT = 2**63 - 1  # stamps are int64 ns on every platform; nothing on the wire is larger
DEFAULT_JPEG_QUALITY = 90
"""`jpeg` means `jpeg:90`: measured in docs/streaming.md (bytes and ms per frame at 512x384 and 1920x1080)."""
CODECS = ("raw", "jpeg")


class MalformedMessage(TransportError, ValueError):
    """A message on the wire is not a valid version-1 streamsr frame (the reason says which part/field)."""


def max_message_bytes(max_frame: tuple[int, int]) -> int:
    """ZMQ_MAXMSGSIZE for a receiver of frames up to `max_frame` = (width, height) pixels of BGR24."""
    w, h = max_frame
    if w < 1 or h < 1:
        raise ValueError(f"max_frame must be positive (width, height), got {max_frame}")
    return w * h * 3 + WIRE_SLACK_BYTES


@dataclass(frozen=True, slots=True)
class WireFormat:
    """How a Publisher encodes frames: codec "raw" (BGR pixels: lossless, no CPU, H*W*3 bytes) or "jpeg"
    at `quality` 1..100 (OpenCV's libjpeg; ~10-20x fewer bytes, a few ms per frame each way)."""

    codec: Literal["raw", "jpeg"] = "raw"
    quality: int = DEFAULT_JPEG_QUALITY

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"WireFormat.codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise ValueError(f"WireFormat.quality must be an integer in 1..100, got {self.quality!r}")

    @classmethod
    def parse(cls, spec: str) -> "WireFormat":
        """`raw`, `jpeg` or `jpeg:QUALITY`; ValueError naming the spec otherwise."""
        codec, sep, q = spec.strip().lower().partition(":")
        if codec == "raw" and not sep:
            return cls("raw")
        if codec == "jpeg" and (not sep or q.isdigit()):
            quality = int(q) if sep else DEFAULT_JPEG_QUALITY
            if 1 <= quality <= 100:
                return cls("jpeg", quality)
        raise ValueError(f"wire format {spec!r} is not raw, jpeg or jpeg:QUALITY (QUALITY 1..100)")

    def __str__(self) -> str:
        return "raw" if self.codec == "raw" else f"jpeg:{self.quality}"


RAW = WireFormat("raw")


def encode_frame(frame: Frame, *, name: str = "streamsr", wire: WireFormat = RAW,
                 number: int | None = None) -> tuple[bytes, np.ndarray]:
    """(header bytes, payload) for `frame`. The payload is a new C-contiguous uint8 buffer that nothing
    else references, so it may be handed to ZeroMQ without a copy: the (H, W, 3) BGR pixels (raw), or the
    JPEG file as a 1-D array (jpeg)."""
    bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
    if wire.codec == "jpeg":
        ok, payload = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, wire.quality])
        if not ok:  # OpenCV gives no reason; a uint8 (H, W, 3) image within JPEG's 65535 px always encodes
            raise TransportError(f"JPEG encoding of frame {frame.seq} ({frame.width}x{frame.height}) failed")
    else:
        payload = bgr
    header = {
        "msg": name,
        "dtype": "uint8",
        "shape": [frame.height, frame.width, 3],
        "v": WIRE_VERSION,
        "codec": wire.codec,
        "seq": frame.seq,
        "pts": frame.pts,
        "time_base": None if frame.time_base is None else [frame.time_base.numerator, frame.time_base.denominator],
        "pix_fmt": PIX_FMT,
        "scale": frame.scale,
        "repeated": frame.repeated,
        "timeline": frame.timeline.to_dict(),
    }
    if number is not None:
        header["n"] = number
    return json.dumps(header, separators=(",", ":")).encode(), payload


@dataclass(frozen=True, slots=True)
class Header:
    """A validated version-1 header (parse_message): the frame's fields; shape is (height, width, 3);
    codec: what the payload is ("raw" BGR pixels or "jpeg")."""

    name: str
    height: int
    width: int
    seq: int
    pts: int | None
    time_base: Fraction | None
    scale: int
    repeated: bool
    timeline: Timeline
    codec: str = "raw"
    number: int | None = None


def _int(h: dict, key: str, *, minimum: int | None = None, optional: bool = False) -> int | None:
    v = h.get(key)
    if v is None and optional:
        return None
    if (isinstance(v, bool) or not isinstance(v, int) or (minimum is not None and v < minimum)
            or not -_MAX_INT <= v <= _MAX_INT):
        raise MalformedMessage(f"header field {key!r} is {_short(v)}, expected an integer" +
                               (f" >= {minimum}" if minimum is not None else "") + " within 64 bits")
    return v


def _short(v: object, limit: int = 60) -> str:
    """repr(v) cut to `limit` characters: reasons are logged and shown, and a peer chooses the value."""
    try:
        r = repr(v)
    except ValueError:  # an int too long for repr (sys.int_info.str_digits_check_threshold)
        return f"a {type(v).__name__} too long to show"
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def jpeg_size(data: memoryview) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header (SOFn), read without decoding, by walking the marker
    segments (a few dozen at most, each skipped by its length). MalformedMessage when `data` is not a
    JPEG with a frame header. Lets a receiver check a JPEG's size before it allocates the image."""
    n = data.nbytes
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise MalformedMessage("JPEG payload does not start with a JPEG SOI marker")
    i = 2
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise MalformedMessage(f"JPEG payload has no marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            raise MalformedMessage(f"JPEG payload has a segment of length {length} at byte {i}")
        if marker in _SOF_MARKERS:
            if i + 9 > n or length < 8:
                raise MalformedMessage("JPEG frame header is truncated")
            return (data[i + 7] << 8) | data[i + 8], (data[i + 5] << 8) | data[i + 6]
        if marker in (0xDA, 0xD9):  # start of scan / end of image before any frame header
            break
        i += 2 + length
    raise MalformedMessage("JPEG payload has no frame header (SOF)")


def parse_message(parts: list, *, max_frame: tuple[int, int] = DEFAULT_MAX_FRAME) -> tuple[Header, memoryview]:
    """Validate a received multipart message. Returns the header and a view of the payload (BGR pixel
    bytes, or a JPEG whose frame header says the header's size). Raises MalformedMessage naming the first
    problem (part count, header size, JSON, version, field, range, payload size), and nothing else,
    whatever the bytes: frames larger than `max_frame` = (width, height) are refused too."""
    if len(parts) != 2:
        raise MalformedMessage(f"expected 2 message parts (header, pixels), got {len(parts)}")
    raw = parts[0].bytes if isinstance(parts[0], zmq.Frame) else bytes(parts[0])
    if len(raw) > MAX_HEADER_BYTES:
        raise MalformedMessage(f"header is {len(raw)} bytes, more than the {MAX_HEADER_BYTES} a header may have")
    try:
        h = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise MalformedMessage(f"header is not UTF-8 JSON ({_short(str(e), 120)})") from None
    except RecursionError:
        raise MalformedMessage("header JSON is nested too deeply") from None
    if not isinstance(h, dict):
        raise MalformedMessage(f"header is JSON {type(h).__name__}, expected an object")
    if h.get("v") != WIRE_VERSION or isinstance(h.get("v"), bool):
        raise MalformedMessage(f"unknown wire-format version {_short(h.get('v'))} (this streamsr reads v{WIRE_VERSION})")
    if h.get("dtype") != "uint8" or h.get("pix_fmt") != PIX_FMT:
        raise MalformedMessage(f"pixels are {_short(h.get('dtype'))}/{_short(h.get('pix_fmt'))}, expected "
                               f"'uint8'/{PIX_FMT!r}")
    codec = h.get("codec", "raw")
    if codec not in CODECS:
        raise MalformedMessage(f"header codec {_short(codec)} is not one of {', '.join(CODECS)}")
    shape = h.get("shape")
    if (not isinstance(shape, list) or len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) for s in shape)
            or shape[2] != 3 or shape[0] < 1 or shape[1] < 1):
        raise MalformedMessage(f"header shape {_short(shape)} is not [H, W, 3] with positive H, W")
    if shape[1] > max_frame[0] or shape[0] > max_frame[1]:
        raise MalformedMessage(f"frame {shape[1]}x{shape[0]} is larger than the {max_frame[0]}x{max_frame[1]} "
                               "accepted (--max-size)")
    tb = h.get("time_base")
    if tb is not None:
        if (not isinstance(tb, list) or len(tb) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in tb)
                or not 0 < tb[0] <= _MAX_INT or not 0 < tb[1] <= _MAX_INT):
            raise MalformedMessage(f"header time_base {_short(tb)} is not [num, den] with positive 64-bit integers")
        tb = Fraction(tb[0], tb[1])
    name = h.get("msg")
    if not isinstance(name, str):
        raise MalformedMessage(f"header msg {_short(name)} is not a string")
    repeated = h.get("repeated", False)
    if not isinstance(repeated, bool):
        raise MalformedMessage(f"header repeated {_short(repeated)} is not a boolean")
    stamps = h.get("timeline", {})
    if not isinstance(stamps, dict):
        raise MalformedMessage("header timeline is not an object")
    for k, v in stamps.items():
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _MAX_INT:
            raise MalformedMessage(f"header timeline {_short(k)} is {_short(v)}, expected 64-bit ns >= 0")
    try:
        timeline = Timeline.from_dict(stamps)
    except ValueError as e:
        raise MalformedMessage(f"header timeline: {_short(str(e), 120)}") from None
    header = Header(
        name=name, height=shape[0], width=shape[1], seq=_int(h, "seq", minimum=0),
        pts=_int(h, "pts", optional=True), time_base=tb, scale=_int(h, "scale", minimum=1),
        repeated=repeated, timeline=timeline, codec=codec, number=_int(h, "n", minimum=0, optional=True),
    )
    payload = parts[1].buffer if isinstance(parts[1], zmq.Frame) else memoryview(parts[1])
    if payload.ndim != 1 or payload.itemsize != 1:
        payload = payload.cast("B")
    if codec == "jpeg":
        w, hgt = jpeg_size(payload)
        if (w, hgt) != (header.width, header.height):
            raise MalformedMessage(f"JPEG payload is {w}x{hgt}, header shape says {header.width}x{header.height}")
        return header, payload
    expected = header.height * header.width * 3
    if payload.nbytes != expected:
        raise MalformedMessage(f"pixel part is {payload.nbytes} bytes, shape {shape} needs {expected}")
    return header, payload


def to_frame(header: Header, payload: memoryview) -> Frame:
    """The Frame of a parsed message: a new RGB (H, W, 3) uint8 image from the BGR wire pixels or the JPEG.
    MalformedMessage when a JPEG does not decode to the header's size (checked before decoding: the
    allocation is bounded by the header's shape, itself bounded by the receiver's max_frame)."""
    if header.codec == "jpeg":
        bgr = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None or bgr.shape != (header.height, header.width, 3):
            got = "nothing" if bgr is None else f"{bgr.shape[1]}x{bgr.shape[0]}"
            raise MalformedMessage(f"JPEG payload of frame {header.seq} decoded to {got}, expected "
                                   f"{header.width}x{header.height}")
    else:
        bgr = np.frombuffer(payload, dtype=np.uint8).reshape(header.height, header.width, 3)
    return Frame(
        image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), seq=header.seq, pts=header.pts, time_base=header.time_base,
        scale=header.scale, repeated=header.repeated, timeline=header.timeline,
    )
