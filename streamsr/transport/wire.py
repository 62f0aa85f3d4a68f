"""ZeroMQ transport: Publisher (a Sink) and Subscriber, wire-compatible with imagezmq's PUB/SUB receivers.

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

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from ..errors import TransportError
from ..frame import Frame, Timeline, now_ns

log = logging.getLogger(__name__)

WIRE_VERSION = 1
PIX_FMT = "bgr24"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_PUB_HWM = 4
"""Messages queued per subscriber before the publisher drops for it: a few frames of slack for jitter,
and never more than ~4 frame periods of added latency for a subscriber that keeps up on average."""
DEFAULT_SUB_HWM = 2
"""Messages a Subscriber's socket queues. The newest-frame receiver thread drains the queue as messages
arrive, so it is a memory bound (hwm x message size) more than a buffer; in-order mode adds the
publisher's own queue (DEFAULT_PUB_HWM) in front of it."""
DEFAULT_MAX_FRAME = (8192, 8192)
"""Largest frame (width, height) a Subscriber accepts unless told otherwise: 4x of a 1920x1080 scope
(7680x4320) fits. 8192 x 8192 x 3 bytes = 192 MiB per message."""
WIRE_SLACK_BYTES = 64 * 1024
"""Allowed on top of the pixel bytes of the largest frame: the JSON header (~0.5 KiB) and CURVE framing."""
PUB_MAX_MESSAGE_BYTES = 4096
"""What a Publisher accepts from a subscriber: (un)subscription messages of one byte plus a topic, and the
CURVE handshake commands (HELLO 200 bytes, INITIATE ~300 bytes with metadata)."""

_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
RECONNECT_FIRST_S = 0.1
"""A Subscriber reopens a dropped connection after this (libzmq's own reconnect interval), doubling
while connections keep dropping without a valid frame in between, up to RECONNECT_MAX_S."""
RECONNECT_MAX_S = 5.0

_LOG_FIRST_MALFORMED = 5
_LOG_EVERY_MALFORMED = 100


class MalformedMessage(TransportError, ValueError):
    """A message on the wire is not a valid version-1 streamsr frame (the reason says which part/field)."""


class ClearTextRefused(TransportError):
    """Publishing without CURVE on an endpoint other hosts can reach was not explicitly allowed."""


# ---- endpoints and keys ---------------------------------------------------------------------------------
def normalize_endpoint(spec: str | int, *, default_host: str = "127.0.0.1") -> str:
    """A ZeroMQ endpoint from what a user typed: `5555`, `:5555` -> tcp://127.0.0.1:5555; `host:5555` ->
    tcp://host:5555; anything with `://` is kept as given (so `tcp://*:5555` binds all interfaces only when
    asked for explicitly). Port `*` or `0` binds an ephemeral port (see Publisher.endpoint)."""
    s = str(spec).strip()
    if "://" in s:
        return s
    if s.startswith(":"):
        s = s[1:]
    if s.isdigit() or s == "*":
        return f"tcp://{default_host}:{s}"
    if ":" in s:
        return f"tcp://{s}"
    raise TransportError(f"endpoint {spec!r} is not a ZeroMQ endpoint (e.g. tcp://127.0.0.1:5555 or 5555)")


def is_loopback(endpoint: str) -> bool:
    """True when data on `endpoint` (a normalize_endpoint result) cannot leave this host: ipc:// and
    inproc://, or tcp:// / ws:// to 127.0.0.0/8, ::1, `localhost` or the `lo` interface. Everything else is
    treated as reaching other hosts: other addresses, `*`, interface and host names (not resolved: a name
    can point anywhere), and multicast/udp transports."""
    transport, sep, rest = endpoint.partition("://")
    if not sep:
        return False
    if transport in ("ipc", "inproc"):
        return True
    if transport not in ("tcp", "ws"):
        return False
    rest = rest.split("/", 1)[0].rsplit(";", 1)[-1]  # connect syntax "tcp://source;destination:port"
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    host = host.strip("[]").lower()
    if host in ("localhost", "lo"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def max_message_bytes(max_frame: tuple[int, int]) -> int:
    """ZMQ_MAXMSGSIZE for a receiver of frames up to `max_frame` = (width, height) pixels of BGR24."""
    w, h = max_frame
    if w < 1 or h < 1:
        raise ValueError(f"max_frame must be positive (width, height), got {max_frame}")
    return w * h * 3 + WIRE_SLACK_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class CurveServer:
    """Publisher-side CURVE: `secret_key` is the publisher's key pair file (server.key_secret);
    `authorized` a folder of client public keys (*.key) allowed to subscribe — None allows any client
    that knows the server's public key (encryption without client authentication)."""

    secret_key: Path
    authorized: Path | None

    @classmethod
    def from_dir(cls, folder: str | Path) -> "CurveServer":
        """The publisher's half of a folder written by `write_keys`: server.key_secret + authorized/."""
        folder = Path(folder)
        auth = folder / "authorized"
        return cls(secret_key=folder / "server.key_secret", authorized=auth)


@dataclass(frozen=True, slots=True, kw_only=True)
class CurveClient:
    """Subscriber-side CURVE: the subscriber's key pair file and the publisher's public key file."""

    secret_key: Path
    server_key: Path

    @classmethod
    def from_dir(cls, folder: str | Path, *, name: str = "client") -> "CurveClient":
        """The viewer's half of a folder written by `write_keys`: <name>.key_secret + server.key."""
        folder = Path(folder)
        return cls(secret_key=folder / f"{name}.key_secret", server_key=folder / "server.key")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyFiles:
    """What `write_keys` wrote: the publisher's pair, each client's pair, and the authorized folder."""

    server_public: Path
    server_secret: Path
    client_secrets: tuple[Path, ...]
    authorized: Path


def write_keys(folder: str | Path, *, clients: tuple[str, ...] = ("client",), overwrite: bool = False) -> KeyFiles:
    """Create CURVE key pairs with zmq.auth.create_certificates: `server.key(_secret)` for the publisher,
    `<client>.key(_secret)` per client, and `authorized/<client>.key` (the public keys the publisher admits).

    Give the publisher host the folder; give each viewer `server.key` and its own `<client>.key_secret`
    only — secret files never need to leave the host that uses them. Raises TransportError if key files
    exist already (unless `overwrite`) or the folder cannot be written.
    """
    folder = Path(folder)
    names = ("server", *clients)
    if len(set(names)) != len(names) or any(not n or "/" in n or n.startswith(".") for n in names):
        raise TransportError(f"client names must be distinct, non-empty, not 'server': {', '.join(clients)}")
    auth = folder / "authorized"
    if not overwrite:
        existing = [p for n in names for p in (folder / f"{n}.key", folder / f"{n}.key_secret") if p.exists()]
        if existing:
            raise TransportError(f"key file {existing[0]} already exists (use --overwrite to replace the keys)")
    try:
        auth.mkdir(parents=True, exist_ok=True)
        pub, sec = zmq.auth.create_certificates(folder, "server")
        client_secrets = []
        for n in clients:
            cpub, csec = zmq.auth.create_certificates(folder, n)
            shutil.copyfile(cpub, auth / f"{n}.key")
            client_secrets.append(Path(csec))
        for p in (Path(sec), *client_secrets):
            p.chmod(0o600)
    except OSError as e:
        raise TransportError(f"cannot write keys to {folder}: {e.strerror or e}") from None
    return KeyFiles(server_public=Path(pub), server_secret=Path(sec), client_secrets=tuple(client_secrets),
                    authorized=auth)


def _load_certificate(path: Path, what: str) -> tuple[bytes, bytes | None]:
    """(public, secret or None) of a ZeroMQ certificate file; TransportError naming `what` if unusable."""
    if not path.is_file():
        raise TransportError(f"{what} {path} does not exist (make keys with `streamsr keys DIR`)")
    try:
        return zmq.auth.load_certificate(path)
    except (ValueError, OSError) as e:
        raise TransportError(f"{what} {path} is not a ZeroMQ certificate ({e})") from None


def _check_private(path: Path, what: str) -> None:
    """Refuse a secret key file that group or others may access (as ssh does for private keys)."""
    if os.name != "posix":
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise TransportError(f"{what} {path} is accessible by others (permissions {mode:04o} are too open); "
                             f"a secret key must be private: chmod 600 {path}")


def _load_pair(path: Path, what: str) -> tuple[bytes, bytes]:
    public, secret = _load_certificate(path, what)
    if secret is None:
        raise TransportError(f"{what} {path} holds no secret key (use the .key_secret file)")
    _check_private(path, what)
    return public, secret


def _load_public(path: Path, what: str) -> bytes:
    return _load_certificate(path, what)[0]


# ---- the wire format ------------------------------------------------------------------------------------
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
class _Header:
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


def parse_message(parts: list) -> tuple[_Header, memoryview]:
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
    header = _Header(
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


def _to_frame(header: _Header, pixels: memoryview) -> Frame:
    bgr = np.frombuffer(pixels, dtype=np.uint8).reshape(header.height, header.width, 3)
    return Frame(
        image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), seq=header.seq, pts=header.pts, time_base=header.time_base,
        scale=header.scale, repeated=header.repeated, timeline=header.timeline,
    )


# ---- publisher ------------------------------------------------------------------------------------------
class Publisher:
    """A Sink that publishes each frame on a ZeroMQ PUB (XPUB) socket in the wire format above.

    Binds `endpoint` (see normalize_endpoint; 127.0.0.1 unless told otherwise). Without `curve`, an endpoint
    that is not loopback (see is_loopback) raises ClearTextRefused unless `insecure=True`: frames would
    leave the host unencrypted. `write` never blocks on subscribers: a subscriber more than `hwm` messages
    behind loses messages (whole frames) until it catches up. The pixel buffer handed to ZeroMQ is a fresh
    BGR conversion per frame, never the caller's array, so callers may reuse their image buffers
    immediately. Stamps `timeline.emitted` as it sends.

    `subscribers` is the number of currently connected subscribers (from XPUB subscription messages);
    `refused` the number of CURVE handshakes refused so far (peers without CURVE, with a client key not in
    `authorized`, or with the wrong server key; a refused peer retries, so one peer counts once per try).
    Both are updated on each `write` and `wait_for_subscribers`. Not thread-safe: call write/close from one
    thread (the pipeline's sink thread).
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        name: str = "streamsr",
        hwm: int = DEFAULT_PUB_HWM,
        curve: CurveServer | None = None,
        insecure: bool = False,
        linger_ms: int = 1000,
    ) -> None:
        if hwm < 1:
            raise ValueError(f"Publisher hwm must be >= 1 message, got {hwm}")
        ep = normalize_endpoint(endpoint)
        self.clear_text_off_host = curve is None and not is_loopback(ep)
        if self.clear_text_off_host and not insecure:
            raise ClearTextRefused(f"refusing to publish on {ep} in clear text: it is not a loopback address; "
                                   "give CURVE keys (curve=) or insecure=True to accept unencrypted video")
        self.name = name
        self.sent = 0
        self.subscribers = 0
        self.refused = 0
        self._linger_ms = linger_ms
        self._auth = None
        self._monitor: zmq.Socket | None = None
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.XPUB)
        try:
            self._sock.setsockopt(zmq.SNDHWM, hwm)
            self._sock.setsockopt(zmq.MAXMSGSIZE, PUB_MAX_MESSAGE_BYTES)
            self._sock.setsockopt(zmq.XPUB_VERBOSER, 1)  # every (un)subscribe reaches us: a live count
            self._sock.setsockopt(zmq.LINGER, linger_ms)
            if curve is not None:
                self._setup_curve(curve)
            try:
                self._sock.bind(ep)
            except zmq.ZMQError as e:
                raise TransportError(f"cannot bind {ep}: {e}") from None
            self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except BaseException:
            self._teardown(0)
            raise

    def _setup_curve(self, curve: CurveServer) -> None:
        public, secret = _load_pair(curve.secret_key, "publisher key")
        if curve.authorized is not None:
            if not curve.authorized.is_dir():
                raise TransportError(f"authorized-clients folder {curve.authorized} does not exist")
            if not any(curve.authorized.glob("*.key")):
                log.warning("no client keys in %s: no subscriber will be admitted", curve.authorized)
            from zmq.auth.thread import ThreadAuthenticator

            self._auth = ThreadAuthenticator(self._ctx, log=logging.getLogger(f"{__name__}.auth"))
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(curve.authorized))
        self._sock.curve_secretkey = secret
        self._sock.curve_publickey = public
        self._sock.curve_server = True
        # ZAP denials (unknown client key) and failed CURVE handshakes (no CURVE, wrong server key) both
        # arrive as handshake-failure events on the socket monitor.
        self._monitor = self._sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        )

    def _poll_subscriptions(self, timeout_ms: int = 0) -> None:
        """Read pending XPUB (un)subscription messages (b'\\x01'+topic subscribe, b'\\x00'+topic leave) and
        refused-handshake events."""
        while self._monitor is not None and self._monitor.poll(0, zmq.POLLIN):
            recv_monitor_message(self._monitor, zmq.NOBLOCK)
            self.refused += 1
        while self._sock.poll(timeout_ms, zmq.POLLIN):
            timeout_ms = 0
            msg = self._sock.recv(zmq.NOBLOCK)
            if msg[:1] == b"\x01":
                self.subscribers += 1
            elif msg[:1] == b"\x00":
                self.subscribers = max(0, self.subscribers - 1)

    def wait_for_subscribers(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until `count` subscribers are connected (True) or `timeout` seconds pass (False). Frames
        published before a subscriber's subscription arrives are not delivered to it (PUB/SUB)."""
        deadline = now_ns() + int(timeout * 1e9)
        while self.subscribers < count:
            left_ms = (deadline - now_ns()) // 1_000_000
            if left_ms <= 0:
                return False
            self._poll_subscriptions(int(min(left_ms, 100)))
        return True

    def write(self, frame: Frame) -> None:
        """Publish one frame (non-blocking; see the class docstring for drops)."""
        self._poll_subscriptions()
        frame.timeline.stamp("emitted")
        header, bgr = encode_frame(frame, name=self.name)
        try:
            self._sock.send(header, zmq.SNDMORE | zmq.NOBLOCK)
            # Zero-copy is safe here: `bgr` was made for this message and is never written again;
            # pyzmq keeps it alive until ZeroMQ has sent it.
            self._sock.send(bgr, zmq.NOBLOCK, copy=False)
        except zmq.Again:  # XPUB drops instead of blocking; kept for safety if that ever changes
            return
        except zmq.ZMQError as e:
            raise TransportError(f"publishing on {self.endpoint} failed: {e}") from None
        self.sent += 1

    def close(self) -> None:
        """Give queued frames up to `linger_ms` to leave, then release the socket."""
        self._teardown(self._linger_ms)

    def abort(self) -> None:
        self._teardown(0)

    def _teardown(self, linger_ms: int) -> None:
        if self._monitor is not None:
            self._poll_subscriptions()  # the last refused handshakes, for the caller's summary
            self._sock.disable_monitor()
            self._monitor.close(0)
            self._monitor = None
        if self._sock is not None and not self._sock.closed:
            self._sock.close(linger=linger_ms)
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- subscriber -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class SubscriberStats:
    """received: valid frames accepted off the wire; malformed: messages rejected (last_malformed says why);
    conflated: valid frames overwritten by a newer one before the consumer took them (newest-wins);
    seq_gaps: frames missing between consecutive accepted seqs (dropped upstream or by the publisher's
    HWM); out_of_order: accepted frames whose seq was not above the previous one (e.g. a source restart);
    dropped_connections: connections to the publisher that ended (publisher gone, a message part over the
    size limit, a failed CURVE handshake) and were reopened; handshakes_failed: CURVE handshakes the
    publisher refused or that failed (wrong keys)."""

    received: int = 0
    malformed: int = 0
    conflated: int = 0
    seq_gaps: int = 0
    out_of_order: int = 0
    dropped_connections: int = 0
    handshakes_failed: int = 0
    last_malformed: str | None = None
    _last_seq: int | None = field(default=None, repr=False)


class Subscriber:
    """Subscribe to a Publisher (or anything speaking the wire format) and return Frames.

    conflate=True (live viewing): a receiver thread drains the socket continuously and keeps only the
    newest frame, so a slow consumer always gets a recent frame and latency stays bounded;
    `stats.conflated` counts what it skipped. conflate=False: frames are read in the caller's thread, in
    order, up to `hwm` queued (the publisher's HWM still applies).

    Memory is bounded whatever a peer sends: a message part larger than `max_message_bytes(max_frame)`
    (frames up to `max_frame` = (width, height) pixels fit) makes libzmq drop the connection before
    buffering it (the publisher is reconnected to, and later valid frames arrive again), and at most `hwm`
    messages are queued. Without `curve`, connecting to a non-loopback endpoint logs a warning (the video
    arrives in clear text) unless `insecure=True` says that is known; `clear_text_off_host` tells which.

    Malformed messages are skipped, counted in `stats.malformed`, logged (first few, then every 100th) and
    passed to `on_malformed(reason)` if given. `recv(timeout)` returns None when no frame came in time.
    Returned frames have RGB images and `timeline.received` stamped when the message arrived.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        conflate: bool = True,
        curve: CurveClient | None = None,
        insecure: bool = False,
        hwm: int = DEFAULT_SUB_HWM,
        max_frame: tuple[int, int] = DEFAULT_MAX_FRAME,
        on_malformed: Callable[[str], None] | None = None,
    ) -> None:
        self.endpoint = normalize_endpoint(endpoint)
        self.max_message_bytes = max_message_bytes(max_frame)
        self.clear_text_off_host = curve is None and not is_loopback(self.endpoint)
        if self.clear_text_off_host and not insecure:
            log.warning("receiving from %s without CURVE: the video crosses the network unencrypted", self.endpoint)
        self.stats = SubscriberStats()
        self._on_malformed = on_malformed
        self._conflate = conflate
        self._lock = threading.Condition()
        self._slot: tuple[_Header, memoryview] | None = None
        self._stop = threading.Event()
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._reconnect_at: int | None = None
        self._drops_since_frame = 0
        self._monitor: zmq.Socket | None = None
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        try:
            self._sock.setsockopt(zmq.RCVHWM, hwm)
            self._sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
            self._sock.setsockopt(zmq.LINGER, 0)
            self._monitor = self._sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | _HANDSHAKE_FAILED)
            if curve is not None:
                public, secret = _load_pair(curve.secret_key, "subscriber key")
                self._sock.curve_secretkey = secret
                self._sock.curve_publickey = public
                self._sock.curve_serverkey = _load_public(curve.server_key, "publisher public key")
            self._sock.setsockopt(zmq.SUBSCRIBE, b"")
            try:
                self._sock.connect(self.endpoint)
            except zmq.ZMQError as e:
                raise TransportError(f"cannot connect to {self.endpoint}: {e}") from None
        except BaseException:
            self._close_sockets()
            self._ctx.term()
            raise
        if conflate:
            self._thread = threading.Thread(target=self._receive_loop, name="streamsr-subscriber", daemon=True)
            self._thread.start()

    def _malformed(self, reason: str) -> None:
        st = self.stats
        st.malformed += 1
        st.last_malformed = reason
        if st.malformed <= _LOG_FIRST_MALFORMED or st.malformed % _LOG_EVERY_MALFORMED == 0:
            log.warning("skipped malformed message from %s (%d so far): %s", self.endpoint, st.malformed, reason)
        if self._on_malformed is not None:
            self._on_malformed(reason)

    def _accept(self, parts: list) -> tuple[_Header, memoryview] | None:
        received = now_ns()
        try:
            header, pixels = parse_message(parts)
        except MalformedMessage as e:
            self._malformed(str(e))
            return None
        header.timeline.stamp("received", received)
        st = self.stats
        st.received += 1
        self._drops_since_frame = 0
        if st._last_seq is not None:
            if header.seq <= st._last_seq:
                st.out_of_order += 1
            else:
                st.seq_gaps += header.seq - st._last_seq - 1
        st._last_seq = header.seq
        return header, pixels

    def _watch_connection(self) -> None:
        """Reopen a dropped connection. libzmq reconnects after a network error by itself, but gives a
        connection up for good after a protocol error: a message part over MAXMSGSIZE or a failed CURVE
        handshake. Without this, one oversized message would end the stream for this subscriber."""
        while self._monitor.poll(0, zmq.POLLIN):
            event = recv_monitor_message(self._monitor, zmq.NOBLOCK)["event"]
            if event & _HANDSHAKE_FAILED:
                self.stats.handshakes_failed += 1
            elif event == zmq.EVENT_DISCONNECTED and self._reconnect_at is None:
                self.stats.dropped_connections += 1
                delay = min(RECONNECT_MAX_S, RECONNECT_FIRST_S * 2 ** self._drops_since_frame)
                self._drops_since_frame += 1
                self._reconnect_at = now_ns() + int(delay * 1e9)
        if self._reconnect_at is not None and now_ns() >= self._reconnect_at:
            self._reconnect_at = None
            try:
                self._sock.disconnect(self.endpoint)
            except zmq.ZMQError:
                pass  # already gone with its session
            self._sock.connect(self.endpoint)

    def _close_sockets(self) -> None:
        if self._monitor is not None:
            self._sock.disable_monitor()
            self._monitor.close(0)
        self._sock.close(0)

    def _receive_loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._watch_connection()
                if not self._sock.poll(50, zmq.POLLIN):
                    continue
                newest = None
                while True:  # drain everything queued: only the newest is worth converting
                    try:
                        parts = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    got = self._accept(parts)
                    if got is not None:
                        if newest is not None:
                            self.stats.conflated += 1
                        newest = got
                if newest is not None:
                    with self._lock:
                        if self._slot is not None:
                            self.stats.conflated += 1
                        self._slot = newest
                        self._lock.notify_all()
        except zmq.ZMQError as e:
            if not self._stop.is_set():
                self._error = f"subscriber {self.endpoint} stopped receiving: {e}"
                with self._lock:
                    self._lock.notify_all()
        finally:
            self._close_sockets()

    def recv(self, timeout: float | None = 1.0) -> Frame | None:
        """The next frame (the newest one, when conflating), or None after `timeout` seconds without one
        (None = wait forever). Raises TransportError once closed, or if the receiver thread failed."""
        if self._stop.is_set():
            raise TransportError(f"subscriber {self.endpoint} is closed")
        if self._conflate:
            with self._lock:
                ready = lambda: self._slot is not None or self._stop.is_set() or self._error is not None  # noqa: E731
                if not self._lock.wait_for(ready, timeout):
                    return None
                got, self._slot = self._slot, None
            if got is None and self._error is not None:
                raise TransportError(self._error)
            return None if got is None else _to_frame(*got)
        deadline = None if timeout is None else now_ns() + int(timeout * 1e9)
        while True:
            self._watch_connection()
            left_ms = 100 if deadline is None else max(0, (deadline - now_ns()) // 1_000_000)
            if not self._sock.poll(min(left_ms, 100), zmq.POLLIN):
                if deadline is not None and now_ns() >= deadline:
                    return None
                continue
            got = self._accept(self._sock.recv_multipart(copy=False))
            if got is not None:
                return _to_frame(*got)

    def frames(self, *, timeout: float | None = None, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Yield frames until `timeout` seconds pass without one, `stop` is set, or the subscriber closes."""
        idle_since = now_ns()
        while not (stop is not None and stop.is_set()) and not self._stop.is_set():
            frame = self.recv(timeout=0.1)
            if frame is not None:
                idle_since = now_ns()
                yield frame
            elif timeout is not None and (now_ns() - idle_since) / 1e9 >= timeout:
                return

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
        else:
            self._close_sockets()
        self._ctx.term()

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
