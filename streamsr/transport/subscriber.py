"""Subscriber: frames from a Publisher (or anything speaking the wire format), newest-wins or in order,
with memory bounded whatever a peer sends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import zmq
from zmq.utils.monitor import recv_monitor_message

from ..errors import TransportError
from ..frame import Frame, now_ns
from .endpoints import DEFAULT_ENDPOINT, is_loopback, normalize_endpoint
from .keys import CurveClient, load_key_pair, load_public_key
from .wire import DEFAULT_MAX_FRAME, Header, MalformedMessage, max_message_bytes, parse_message, to_frame

log = logging.getLogger(__name__)

DEFAULT_SUB_HWM = 2
"""Messages a Subscriber's socket queues. The newest-frame receiver thread drains the queue as messages
arrive, so it is a memory bound (hwm x message size) more than a buffer; in-order mode adds the
publisher's own queue (DEFAULT_PUB_HWM) in front of it."""
_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
RECONNECT_FIRST_S = 0.1
"""A Subscriber reopens a dropped connection after this (libzmq's own reconnect interval), doubling
while connections keep dropping without a valid frame in between, up to RECONNECT_MAX_S."""
RECONNECT_MAX_S = 5.0

_LOG_FIRST_MALFORMED = 5
_LOG_EVERY_MALFORMED = 100


@dataclass(slots=True)
class SubscriberStats:
    """received: valid frames accepted off the wire; malformed: messages rejected (last_malformed says why);
    conflated: valid frames overwritten by a newer one before the consumer took them (newest-wins);
    seq_gaps: frames missing between consecutive accepted seqs (dropped upstream or by the publisher's
    HWM); publisher_drops: of those, frames the publisher dropped for this subscriber (its queue was full:
    the consumer or the network was too slow), from gaps in the publisher's message numbers `n` (a restarted
    publisher starts again and is not counted; last_number: the last `n` seen); out_of_order: accepted frames whose seq was not above the previous one (e.g. a source restart);
    dropped_connections: connections to the publisher that ended (publisher gone, a message part over the
    size limit, a failed CURVE handshake) and were reopened; handshakes_failed: CURVE handshakes the
    publisher refused or that failed (wrong keys); undecodable: received frames whose JPEG payload passed
    the header checks but did not decode to the announced image when the consumer took it (also counted in
    `malformed`'s reason, `last_malformed`). Every message that arrived is `received` or `malformed`;
    frames handed to the consumer = received - conflated - undecodable (- one still in the slot)."""

    received: int = 0
    malformed: int = 0
    conflated: int = 0
    seq_gaps: int = 0
    out_of_order: int = 0
    dropped_connections: int = 0
    handshakes_failed: int = 0
    undecodable: int = 0
    publisher_drops: int = 0
    last_malformed: str | None = None
    _last_seq: int | None = field(default=None, repr=False)
    last_number: int | None = None


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
        self.max_frame = max_frame
        self.clear_text_off_host = curve is None and not is_loopback(self.endpoint)
        if self.clear_text_off_host and not insecure:
            log.warning("receiving from %s without CURVE: the video crosses the network unencrypted", self.endpoint)
        self.stats = SubscriberStats()
        self._on_malformed = on_malformed
        self._conflate = conflate
        self._lock = threading.Condition()
        self._slot: tuple[Header, memoryview] | None = None
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
                public, secret = load_key_pair(curve.secret_key, "subscriber key")
                self._sock.curve_secretkey = secret
                self._sock.curve_publickey = public
                self._sock.curve_serverkey = load_public_key(curve.server_key, "publisher public key")
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
        reason = reason if len(reason) <= 300 else reason[:297] + "..."  # a peer chooses what is in it
        st.last_malformed = reason
        if st.malformed <= _LOG_FIRST_MALFORMED or st.malformed % _LOG_EVERY_MALFORMED == 0:
            log.warning("skipped malformed message from %s (%d so far): %s", self.endpoint, st.malformed, reason)
        if self._on_malformed is not None:
            self._on_malformed(reason)

    def _accept(self, parts: list) -> tuple[Header, memoryview] | None:
        received = now_ns()
        try:
            header, pixels = parse_message(parts, max_frame=self.max_frame)
        except MalformedMessage as e:
            self._malformed(str(e))
            return None
        except Exception as e:  # noqa: BLE001 - a parser bug must cost one message, never the receiver
            self._malformed(f"unexpected {type(e).__name__} while parsing: {e}")
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
        n = header.number
        if n is not None and st.last_number is not None and n > st.last_number:
            st.publisher_drops += n - st.last_number - 1
        st.last_number = n
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
        except BaseException as e:  # noqa: BLE001 - whatever ends this thread must reach the consumer
            if not self._stop.is_set():
                self._error = f"subscriber {self.endpoint} stopped receiving ({type(e).__name__}: {e})"
                log.error("%s", self._error)
                with self._lock:
                    self._lock.notify_all()
        finally:
            try:
                self._close_sockets()
            except zmq.ZMQError:
                pass

    def _decode(self, got: tuple[Header, memoryview]) -> Frame | None:
        """to_frame, counting a payload that does not decode (a JPEG that lied) instead of raising."""
        try:
            return to_frame(*got)
        except Exception as e:  # noqa: BLE001 - one bad message must not reach the consumer as an exception
            self.stats.undecodable += 1
            self._malformed(str(e) if isinstance(e, MalformedMessage) else f"unexpected {type(e).__name__} "
                            f"while decoding: {e}")
            return None

    def recv(self, timeout: float | None = 1.0) -> Frame | None:
        """The next frame (the newest one, when conflating), or None after `timeout` seconds without one
        (None = wait forever). Raises TransportError once closed, or if the receiver thread failed (it
        survives every message; this is for the unforeseen, so a viewer never shows a frozen stream)."""
        if self._stop.is_set():
            raise TransportError(f"subscriber {self.endpoint} is closed")
        deadline = None if timeout is None else now_ns() + int(timeout * 1e9)
        if self._conflate:
            while True:
                left = None if deadline is None else max(0.0, (deadline - now_ns()) / 1e9)
                with self._lock:
                    ready = lambda: self._slot is not None or self._stop.is_set() or self._error is not None  # noqa: E731
                    if not self._lock.wait_for(ready, left):
                        return None
                    got, self._slot = self._slot, None
                if got is None:
                    if self._error is not None:
                        raise TransportError(self._error)
                    return None
                frame = self._decode(got)
                if frame is not None:
                    return frame
        while True:
            self._watch_connection()
            left_ms = 100 if deadline is None else max(0, (deadline - now_ns()) // 1_000_000)
            if not self._sock.poll(min(left_ms, 100), zmq.POLLIN):
                if deadline is not None and now_ns() >= deadline:
                    return None
                continue
            got = self._accept(self._sock.recv_multipart(copy=False))
            if got is not None and (frame := self._decode(got)) is not None:
                return frame

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
