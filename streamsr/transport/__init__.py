"""ZeroMQ transport: Publisher (a Sink) and Subscriber, wire-compatible with imagezmq's PUB/SUB receivers.

Modules: `wire` (the version-1 wire format: encode_frame / parse_message), `endpoints` (normalize_endpoint,
is_loopback), `keys` (CURVE key folders), `publisher` (Publisher), `subscriber` (Subscriber). Everything
public is re-exported here.

Slow subscribers never slow the publisher: the PUB side has a small send high-water mark and drops
(whole multipart messages) for a subscriber whose queue is full; ZMQ_CONFLATE cannot be used because it
does not support multipart messages, so the Subscriber gets newest-wins by draining its socket in a
receiver thread into a one-frame slot (counting what it overwrote) — the kernel and ZeroMQ buffers are
kept empty, so what a slow consumer gets is at most one consumer period old.

Security defaults (docs/streaming.md, Security): a Publisher refuses to send clear text to a non-loopback
endpoint unless given CURVE keys or `insecure=True`; a Subscriber warns when it would receive clear text
from one. Every receiving socket has ZMQ_MAXMSGSIZE set, so libzmq cuts off a peer that announces a larger
message before buffering any of it: a Subscriber holds at most `hwm` queued messages plus the one it is
decoding and the one in its newest-frame slot, each part at most `max_message_bytes(max_frame)`.
"""


from .endpoints import DEFAULT_ENDPOINT, is_loopback, normalize_endpoint
from .keys import CurveClient, CurveServer, KeyFiles, write_keys
from .publisher import DEFAULT_PUB_HWM, PUB_MAX_MESSAGE_BYTES, ClearTextRefused, Publisher
from .subscriber import (
    DEFAULT_SUB_HWM, RECONNECT_FIRST_S, RECONNECT_MAX_S, Subscriber, SubscriberStats,
)
from .wire import (
    DEFAULT_JPEG_QUALITY, DEFAULT_MAX_FRAME, MAX_HEADER_BYTES, PIX_FMT, WIRE_SLACK_BYTES, WIRE_VERSION,
    MalformedMessage, WireFormat, encode_frame, max_message_bytes, parse_message, to_frame,
)

__all__ = [
    "DEFAULT_ENDPOINT", "DEFAULT_JPEG_QUALITY", "DEFAULT_MAX_FRAME", "DEFAULT_PUB_HWM", "DEFAULT_SUB_HWM",
    "MAX_HEADER_BYTES", "PIX_FMT", "PUB_MAX_MESSAGE_BYTES", "RECONNECT_FIRST_S", "RECONNECT_MAX_S",
    "WIRE_SLACK_BYTES", "WIRE_VERSION", "ClearTextRefused", "CurveClient", "CurveServer", "KeyFiles",
    "MalformedMessage", "Publisher", "Subscriber", "SubscriberStats", "WireFormat", "encode_frame",
    "is_loopback", "max_message_bytes", "normalize_endpoint", "parse_message", "to_frame", "write_keys",
]
