"""Publisher: a Sink that publishes each frame in the wire format, never slowed by its subscribers."""

from __future__ import annotations

import logging

import zmq
from zmq.utils.monitor import recv_monitor_message

from ..errors import TransportError
from ..frame import Frame, now_ns
from .endpoints import DEFAULT_ENDPOINT, is_loopback, normalize_endpoint
from .keys import CurveServer, load_key_pair
from .wire import RAW, WireFormat, encode_frame

log = logging.getLogger(__name__)

DEFAULT_PUB_HWM = 4
"""Messages queued per subscriber before the publisher drops for it: a few frames of slack for jitter,
and never more than ~4 frame periods of added latency for a subscriber that keeps up on average."""
PUB_MAX_MESSAGE_BYTES = 4096
"""What a Publisher accepts from a subscriber: (un)subscription messages of one byte plus a topic, and the
CURVE handshake commands (HELLO 200 bytes, INITIATE ~300 bytes with metadata)."""


class ClearTextRefused(TransportError):
    """Publishing without CURVE on an endpoint other hosts can reach was not explicitly allowed."""


class Publisher:
    """A Sink that publishes each frame on a ZeroMQ PUB (XPUB) socket in the wire format (`transport.wire`).

    Binds `endpoint` (see normalize_endpoint; 127.0.0.1 unless told otherwise). Without `curve`, an endpoint
    that is not loopback (see is_loopback) raises ClearTextRefused unless `insecure=True`: frames would
    leave the host unencrypted. `write` never blocks on subscribers: a subscriber more than `hwm` messages
    behind loses messages (whole frames) until it catches up. The pixel buffer handed to ZeroMQ is a fresh
    BGR conversion per frame, never the caller's array, so callers may reuse their image buffers
    immediately. Stamps `timeline.emitted` as it sends.

    `wire`: how frames are encoded (WireFormat: raw BGR, or JPEG at a quality). `sent` counts frames
    published; `dropped_slow` counts the times a subscriber's queue was found full (a slow or stalled
    consumer): that frame still went to every subscriber with room, and the slow one misses frames until it
    has caught up with its queue. libzmq drops silently and says nothing about the frames after the first,
    so this counts the episodes; each message carries the publisher's message number (`n`), from which a
    Subscriber counts exactly the frames it missed (`SubscriberStats.publisher_drops`). (The socket runs
    with ZMQ_XPUB_NODROP, so a full queue shows as EAGAIN; the frame is then sent once more with dropping
    allowed.)

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
        wire: WireFormat = RAW,
    ) -> None:
        if hwm < 1:
            raise ValueError(f"Publisher hwm must be >= 1 message, got {hwm}")
        ep = normalize_endpoint(endpoint)
        self.clear_text_off_host = curve is None and not is_loopback(ep)
        if self.clear_text_off_host and not insecure:
            raise ClearTextRefused(f"refusing to publish on {ep} in clear text: it is not a loopback address; "
                                   "give CURVE keys (curve=) or insecure=True to accept unencrypted video")
        self.name = name
        self.wire = wire
        self.sent = 0
        self.dropped_slow = 0
        self.bytes_sent = 0
        self._number = 0
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
            self._sock.setsockopt(zmq.XPUB_NODROP, 1)  # a full subscriber queue raises Again: counted
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
        public, secret = load_key_pair(curve.secret_key, "publisher key")
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
        header, payload = encode_frame(frame, name=self.name, wire=self.wire, number=self._number)
        self._number += 1
        try:
            try:
                self._sock.send(header, zmq.SNDMORE | zmq.NOBLOCK)
            except zmq.Again:  # some subscriber's queue is full (NODROP): it misses this frame, the rest get it
                self.dropped_slow += 1
                self._sock.setsockopt(zmq.XPUB_NODROP, 0)
                try:
                    self._sock.send(header, zmq.SNDMORE | zmq.NOBLOCK)
                finally:
                    self._sock.setsockopt(zmq.XPUB_NODROP, 1)
            # Zero-copy is safe here: `payload` was made for this message and is never written again;
            # pyzmq keeps it alive until ZeroMQ has sent it. The first part went out, so this one does
            # too: a queue's fullness only changes between whole messages.
            self._sock.send(payload, zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as e:
            raise TransportError(f"publishing on {self.endpoint} failed: {e}") from None
        self.sent += 1
        self.bytes_sent += len(header) + payload.nbytes

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
