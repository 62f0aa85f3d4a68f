"""Publisher / Subscriber over real ZeroMQ sockets on 127.0.0.1 (ephemeral ports)."""

from __future__ import annotations

import json
import logging
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth

from helpers import malformed_messages, new_subscription, wire_frame
from streamsr.errors import TransportError
from streamsr.frame import Frame, now_ns
from streamsr.sources import synthetic_image
from streamsr.transport import (
    MAX_HEADER_BYTES,
    WIRE_VERSION,
    ClearTextRefused,
    CurveClient,
    CurveServer,
    MalformedMessage,
    Publisher,
    Subscriber,
    WireFormat,
    encode_frame,
    is_loopback,
    normalize_endpoint,
    parse_message,
    write_keys,
)

EPHEMERAL = "tcp://127.0.0.1:*"


def _connected(pub: Publisher, n: int = 1) -> None:
    assert pub.wait_for_subscribers(n, timeout=10), "subscriber never connected"


def test_normalize_endpoint_defaults_to_loopback():
    assert normalize_endpoint("5555") == "tcp://127.0.0.1:5555"
    assert normalize_endpoint(":5555") == "tcp://127.0.0.1:5555"
    assert normalize_endpoint("10.0.0.2:7000") == "tcp://10.0.0.2:7000"
    assert normalize_endpoint("tcp://*:5555") == "tcp://*:5555"
    with pytest.raises(TransportError):
        normalize_endpoint("not an endpoint")


def test_roundtrip_header_pixels_and_timeline():
    with Publisher(EPHEMERAL, name="scope-1") as pub:
        assert pub.endpoint.startswith("tcp://127.0.0.1:")
        with Subscriber(pub.endpoint, conflate=False) as sub:
            _connected(pub)
            src = wire_frame(7, scale=4, repeated=True)
            pub.write(src)
            got = sub.recv(timeout=5)
    assert got is not None
    assert np.array_equal(got.image, src.image)  # RGB in, BGR on the wire, RGB out
    assert (got.seq, got.pts, got.time_base, got.scale, got.repeated) == (7, 21, Fraction(1, 30), 4, True)
    assert got.timeline.captured == src.timeline.captured
    assert got.timeline.emitted is not None and got.timeline.received >= got.timeline.emitted
    assert sub.stats.received == 1 and sub.stats.malformed == 0


def test_wire_header_is_documented_format():
    header, bgr = encode_frame(wire_frame(3), name="n")
    h = json.loads(header)
    assert h["msg"] == "n" and h["dtype"] == "uint8" and h["shape"] == [24, 32, 3]
    assert h["v"] == WIRE_VERSION and h["pix_fmt"] == "bgr24" and h["time_base"] == [1, 30]
    assert set(h) >= {"seq", "pts", "scale", "timeline"}
    assert np.array_equal(bgr, synthetic_image(3, 32, 24)[..., ::-1])


def test_burst_of_distinct_frames_from_a_reused_buffer_arrives_byte_exact():
    """The caller overwrites its one image buffer right after each write: the publisher must never have
    handed that buffer to ZeroMQ (zero-copy sends of reused buffers corrupt frames in flight). Frames are
    larger than pyzmq's copy threshold (64 KiB), below which it copies anyway and would hide the bug."""
    n, w, h = 300, 192, 144
    buf = np.empty((h, w, 3), np.uint8)
    with Publisher(EPHEMERAL, hwm=n + 10) as pub, Subscriber(pub.endpoint, conflate=False, hwm=n + 10) as sub:
        _connected(pub)
        for i in range(n):
            buf[:] = synthetic_image(i, w, h)
            pub.write(Frame(image=buf, seq=i))
            buf[:] = 0  # what a capture loop does with its buffer next
        got = [sub.recv(timeout=5) for _ in range(n)]
    assert all(g is not None for g in got)
    bad = [g.seq for g in got if not np.array_equal(g.image, synthetic_image(g.seq, w, h))]
    assert [g.seq for g in got] == list(range(n))
    assert bad == []


def test_imagezmq_imagehub_receives_our_frames():
    imagezmq = pytest.importorskip("imagezmq")
    with Publisher(EPHEMERAL, name="endo") as pub:
        hub = imagezmq.ImageHub(open_port=pub.endpoint, REQ_REP=False)
        try:
            hub.zmq_socket.setsockopt(zmq.RCVTIMEO, 5000)  # never hang the test
            _connected(pub)
            for i in range(3):
                pub.write(wire_frame(i, w=40, h=30))
            received = [hub.recv_image() for _ in range(3)]
        finally:
            hub.close()
    for i, (msg, image) in enumerate(received):
        assert msg == "endo"
        assert image.shape == (30, 40, 3) and image.dtype == np.uint8
        assert np.array_equal(image, synthetic_image(i, 40, 30)[..., ::-1])  # BGR, OpenCV's order


def test_slow_subscriber_never_slows_the_publisher_and_sees_bounded_latency():
    """30 fps of 320x240 for 2.5 s; one subscriber takes 0.25 s per frame, another never reads at all.
    The publisher keeps its pace, and what the slow one gets is always recent (newest-frame policy): in
    order it would fall seconds behind."""
    rate, seconds, w, h = 30, 2.5, 320, 240
    consume_s = 0.25
    images = [synthetic_image(i, w, h) for i in range(4)]
    with Publisher(EPHEMERAL) as pub, Subscriber(pub.endpoint, conflate=True) as slow, \
            Subscriber(pub.endpoint, conflate=False, hwm=1000):  # the dead one
        _connected(pub, 2)
        lags: list[float] = []
        seqs: list[int] = []
        done = threading.Event()

        def consume() -> None:
            while not done.is_set():
                f = slow.recv(timeout=0.5)
                if f is None:
                    continue
                lags.append((now_ns() - f.timeline.captured) / 1e9)
                seqs.append(f.seq)
                time.sleep(consume_s)

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        n = int(rate * seconds)
        write_s: list[float] = []
        t0 = time.monotonic()
        for i in range(n):
            due = t0 + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            f = Frame(image=images[i % 4], seq=i)
            f.timeline.stamp("captured")
            t = time.monotonic()
            pub.write(f)
            write_s.append(time.monotonic() - t)
        elapsed = time.monotonic() - t0
        time.sleep(consume_s * 2)
        done.set()
        consumer.join(5)
    assert pub.sent == n
    assert n / elapsed > 0.8 * rate, f"publisher slowed to {n / elapsed:.1f} fps"
    assert max(write_s) < 0.5  # never blocked on a subscriber (generous: the test machine is shared)
    assert len(seqs) >= 4 and seqs == sorted(seqs)
    # in-order delivery would lag by ~ (frames consumed) x (consume_s - 1/rate): over 2 s by the end
    assert max(lags) < consume_s + 0.6, f"subscriber lag grew to {max(lags):.2f} s"
    assert seqs[-1] >= n - 1 - rate * (consume_s + 0.6)
    assert slow.stats.conflated > 0


def test_curve_subscriber_needs_the_right_keys(tmp_path):
    keys = write_keys(tmp_path / "keys")
    stranger_pub, stranger_sec = zmq.auth.create_certificates(tmp_path, "stranger")  # not authorized
    Path(stranger_sec).chmod(0o600)
    good = CurveClient.from_dir(tmp_path / "keys")
    with Publisher(EPHEMERAL, curve=CurveServer.from_dir(tmp_path / "keys")) as pub:
        subs = {
            "plain": Subscriber(pub.endpoint, conflate=False),
            "unauthorized": Subscriber(pub.endpoint, conflate=False,
                                       curve=CurveClient(secret_key=tmp_path / "stranger.key_secret",
                                                         server_key=keys.server_public)),
            "wrong server key": Subscriber(pub.endpoint, conflate=False,
                                           curve=CurveClient(secret_key=good.secret_key,
                                                             server_key=tmp_path / "stranger.key")),
            "good": Subscriber(pub.endpoint, conflate=False, curve=good),
        }
        try:
            _connected(pub, 1)
            got = {k: 0 for k in subs}
            start = time.monotonic()
            i = 0
            # at least 2 s; on a loaded machine up to 10 s, until the good one got frames and 3 were refused
            while time.monotonic() - start < 2.0 or (
                time.monotonic() - start < 10.0 and (got["good"] == 0 or pub.refused < 3)
            ):
                pub.write(wire_frame(i))
                i += 1
                for k, s in subs.items():
                    while s.recv(timeout=0) is not None:
                        got[k] += 1
                time.sleep(0.02)
            for k, s in subs.items():
                while s.recv(timeout=0.2) is not None:
                    got[k] += 1
            subscribed = pub.subscribers  # read before the subscribers close (closing unsubscribes)
        finally:
            for s in subs.values():
                s.close()
    assert got["good"] > 0
    assert got["plain"] == got["unauthorized"] == got["wrong server key"] == 0
    assert subscribed == 1  # only the authenticated one ever subscribed
    assert pub.refused >= 3  # each of the three was refused at least once (they retry every ~0.1 s)


def test_publisher_counts_no_refusals_for_good_subscribers(tmp_path):
    write_keys(tmp_path, clients=("a", "b"))
    with Publisher(EPHEMERAL, curve=CurveServer.from_dir(tmp_path)) as pub, \
            Subscriber(pub.endpoint, conflate=False, curve=CurveClient.from_dir(tmp_path, name="a")), \
            Subscriber(pub.endpoint, conflate=False, curve=CurveClient.from_dir(tmp_path, name="b")):
        _connected(pub, 2)
        pub.write(wire_frame(0))
    assert pub.refused == 0


def test_secret_key_files_open_to_others_are_refused(tmp_path):
    keys = write_keys(tmp_path)
    assert keys.server_secret.stat().st_mode & 0o777 == 0o600
    keys.server_secret.chmod(0o640)
    with pytest.raises(TransportError, match=r"publisher key .*server.key_secret.*permissions 0640 are too open"):
        Publisher(EPHEMERAL, curve=CurveServer.from_dir(tmp_path))
    keys.server_secret.chmod(0o600)
    keys.client_secrets[0].chmod(0o604)
    with pytest.raises(TransportError, match=r"subscriber key .*client.key_secret.* 0604 .*chmod 600"):
        Subscriber("tcp://127.0.0.1:1", curve=CurveClient.from_dir(tmp_path))
    keys.client_secrets[0].chmod(0o600)
    with Publisher(EPHEMERAL, curve=CurveServer.from_dir(tmp_path)) as pub, \
            Subscriber(pub.endpoint, conflate=False, curve=CurveClient.from_dir(tmp_path)):
        _connected(pub)


@pytest.mark.parametrize("endpoint, loopback", [
    ("tcp://127.0.0.1:5555", True), ("tcp://127.3.2.1:5555", True), ("tcp://localhost:5555", True),
    ("tcp://[::1]:5555", True), ("tcp://lo:5555", True), ("tcp://127.0.0.1:*", True),
    ("ipc:///tmp/streamsr.sock", True), ("inproc://x", True), ("tcp://10.0.0.1;127.0.0.1:5555", True),
    ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False), ("tcp://eth0:5555", False),
    ("tcp://192.168.1.20:5555", False), ("tcp://scope-host:5555", False), ("tcp://[::]:5555", False),
    ("tcp://127.0.0.1;10.0.0.2:5555", False), ("epgm://eth0;239.192.1.1:5555", False),
    ("udp://127.0.0.1:5555", False),
])
def test_is_loopback(endpoint, loopback):
    assert is_loopback(endpoint) is loopback


def test_clear_text_off_host_is_refused_unless_insecure(caplog):
    for ep in ("tcp://0.0.0.0:*", "tcp://*:*", "tcp://192.0.2.7:*"):
        with pytest.raises(ClearTextRefused, match=r"clear text.*curve=.*insecure=True"):
            Publisher(ep)  # refused before any socket exists: nothing is bound
    with caplog.at_level(logging.WARNING, logger="streamsr.transport"):
        with Subscriber("tcp://192.0.2.7:5555", conflate=False) as sub:  # TEST-NET-1: never answers
            assert sub.clear_text_off_host
        assert "unencrypted" in caplog.text
        caplog.clear()
        with Subscriber("tcp://192.0.2.7:5555", conflate=False, insecure=True) as sub:
            assert sub.clear_text_off_host
        with Subscriber("tcp://127.0.0.1:1", conflate=False) as sub:
            assert not sub.clear_text_off_host
        assert caplog.text == ""
    with Publisher(EPHEMERAL) as pub:  # CURVE-less loopback stays the zero-setup default
        assert not pub.clear_text_off_host


@pytest.mark.parametrize("conflate", [False, True])
def test_oversized_message_cuts_the_sender_off_and_later_frames_arrive(conflate):
    """A part larger than max_message_bytes is refused by libzmq as it is announced: the connection is
    dropped (the XPUB sees the subscriber leave and come back), the subscriber never sees the message, and
    valid frames sent after the reconnection are received."""
    ctx = zmq.Context()
    raw = ctx.socket(zmq.XPUB)
    raw.setsockopt(zmq.XPUB_VERBOSE, 1)  # report a resubscription even if the old pipe is not gone yet
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    sub = Subscriber(f"tcp://127.0.0.1:{port}", conflate=conflate, max_frame=(64, 64))
    assert sub.max_message_bytes == 64 * 64 * 3 + 64 * 1024
    try:
        assert new_subscription(raw, 10), "subscriber never connected"
        header, bgr = encode_frame(wire_frame(0, w=64, h=64))
        raw.send_multipart([header, bgr.tobytes()])  # the largest frame accepted
        first = sub.recv(timeout=5)
        assert first is not None and first.seq == 0
        big = bytes(8 * 2**20)
        for parts in ([header, big], [big, bgr.tobytes()]):  # oversized pixels, then an oversized header
            raw.send_multipart(parts, copy=False)
            assert sub.recv(timeout=0.5) is None  # (in-order mode reconnects while the caller waits in recv)
            assert new_subscription(raw, 10), "the oversized message did not cut the connection"
        for seq in range(1, 4):
            h, b = encode_frame(wire_frame(seq, w=64, h=64))
            raw.send_multipart([h, b.tobytes()])
            got = sub.recv(timeout=5)
            assert got is not None and got.seq == seq
    finally:
        sub.close()
        raw.close(0)
        ctx.term()
    assert sub.stats.received == 4 and sub.stats.malformed == 0 and sub.stats.dropped_connections == 2


def test_key_files_errors(tmp_path):
    write_keys(tmp_path)
    with pytest.raises(TransportError, match="already exists"):
        write_keys(tmp_path)
    with pytest.raises(TransportError, match="does not exist"):
        Publisher(EPHEMERAL, curve=CurveServer(secret_key=tmp_path / "nope.key_secret", authorized=None))
    with pytest.raises(TransportError, match="no secret key"):
        Subscriber("tcp://127.0.0.1:1", curve=CurveClient(secret_key=tmp_path / "client.key",
                                                          server_key=tmp_path / "server.key"))


def test_bind_conflict_is_one_line_transport_error():
    with Publisher(EPHEMERAL) as pub:
        with pytest.raises(TransportError, match="cannot bind"):
            Publisher(pub.endpoint)


def _through_subscriber(bad: list[list[bytes]], *, conflate: bool, good_every: int, hwm: int, deadline_s: float,
                        drain_s: float, pace_s: float = 0.0, final_seq: int | None = None):
    """Send `bad` raw from an XPUB socket on 127.0.0.1 to a real Subscriber, a valid frame after every
    `good_every`-th (then `pace_s` of sleep), and receive until every message is counted as received or
    malformed (or `deadline_s` passes), then until `drain_s` brings nothing more; with `final_seq`, then send
    one more valid frame and receive it. Returns (stats, frames received, malformed reasons, seqs of the
    valid frames sent, the final frame or None)."""
    reasons: list[str] = []
    ctx = zmq.Context()
    raw = ctx.socket(zmq.XPUB)
    raw.setsockopt(zmq.SNDHWM, hwm)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    sub = Subscriber(f"tcp://127.0.0.1:{port}", conflate=conflate, hwm=hwm, on_malformed=reasons.append)
    last = None
    try:
        assert raw.poll(10_000), "subscriber never connected"
        raw.recv()  # its subscription
        good_seqs = []
        for k, parts in enumerate(bad):
            raw.send_multipart(parts)
            if k % good_every == good_every - 1:
                header, bgr = encode_frame(wire_frame(k))
                raw.send_multipart([header, bgr.tobytes()])
                good_seqs.append(k)
                if pace_s:
                    time.sleep(pace_s)
        got = []
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline and sub.stats.malformed + sub.stats.received < len(bad) + len(good_seqs):
            f = sub.recv(timeout=0.2)
            if f is not None:
                got.append(f)
        while (f := sub.recv(timeout=drain_s)) is not None:
            got.append(f)
        if final_seq is not None:  # still receiving after all that
            header, bgr = encode_frame(wire_frame(final_seq))
            raw.send_multipart([header, bgr.tobytes()])
            last = sub.recv(timeout=10)
    finally:
        sub.close()
        raw.close(0)
        ctx.term()
    return sub.stats, got, reasons, good_seqs, last


@pytest.mark.parametrize("conflate", [False, True])
def test_fuzz_malformed_messages_are_counted_and_skipped(conflate):
    rng = np.random.default_rng(0)
    bad = malformed_messages(rng)
    for parts in bad:  # each really is rejected by the parser
        with pytest.raises(MalformedMessage):
            parse_message(parts)
    stats, got, reasons, good_seqs, _ = _through_subscriber(bad, conflate=conflate, good_every=10, hwm=10_000,
                                                            deadline_s=10, drain_s=0.2, pace_s=0.002 if conflate else 0.0)
    assert stats.malformed == len(bad) == len(reasons)
    assert stats.received == len(good_seqs)
    assert any("version" in r for r in reasons) and any("bytes" in r for r in reasons)
    assert all(np.array_equal(f.image, synthetic_image(f.seq, 32, 24)) for f in got)
    if conflate:
        assert got and got[-1].seq == good_seqs[-1]
    else:
        assert [f.seq for f in got] == good_seqs


def test_recv_times_out_without_a_publisher():
    with Subscriber("tcp://127.0.0.1:1", conflate=False) as sub:
        t = time.monotonic()
        assert sub.recv(timeout=0.3) is None
        assert time.monotonic() - t < 2
    with Subscriber("tcp://127.0.0.1:1", conflate=True) as sub:
        assert sub.recv(timeout=0.3) is None
        assert list(sub.frames(timeout=0.3)) == []


def _generated_malformed(rng: np.random.Generator, n: int) -> list[list[bytes]]:
    """`n` generated messages that are each not a valid frame: a valid header with one field replaced by a
    random JSON value (wrong types, nesting, huge, negative or non-finite numbers), raw text splices (NaN,
    Infinity, 1e999, 10**k digits, deep brackets), truncations, bloated headers, wrong part counts, JPEG
    payloads that are not JPEGs or of another size, and random bytes."""
    good, bgr = encode_frame(wire_frame(0))
    h = json.loads(good)
    pix = bgr.tobytes()
    small_jpeg = encode_frame(wire_frame(0, w=16, h=8), wire=WireFormat("jpeg"))[1].tobytes()
    keys = ["msg", "dtype", "shape", "v", "seq", "pts", "time_base", "pix_fmt", "scale", "repeated", "timeline",
            "codec", "n"]

    def value(depth: int = 0) -> object:
        kind = int(rng.integers(0, 11))
        if kind == 0:
            return int(rng.integers(-2**62, 2**62)) * int(rng.choice([1, -1]))
        if kind == 1:
            return 10 ** int(rng.integers(19, 400)) * int(rng.choice([1, -1]))
        if kind == 2:
            return float(rng.normal()) * 10 ** float(rng.integers(0, 300))
        if kind == 3:
            return "x" * int(rng.integers(0, 200))
        if kind == 4:
            return None
        if kind == 5:
            return bool(rng.integers(0, 2))
        if kind == 6 and depth < 6:
            return [value(depth + 1) for _ in range(int(rng.integers(0, 4)))]
        if kind == 7 and depth < 6:
            return {str(int(rng.integers(0, 9))): value(depth + 1) for _ in range(int(rng.integers(0, 3)))}
        if kind == 8:
            return [int(rng.integers(-5, 5)), int(rng.integers(-5, 5)), int(rng.integers(-5, 5))]
        if kind == 9:
            nest = int(rng.integers(50, 3000))
            return json.loads("[" * min(nest, 900) + "]" * min(nest, 900))  # nested but within Python's limit
        return -1

    def mutated() -> list[bytes]:
        d = dict(h)
        key = keys[int(rng.integers(0, len(keys)))]
        while True:  # a value that really is wrong for this key
            v = value()
            d[key] = v
            try:
                parse_message([json.dumps(d).encode(), pix])
            except MalformedMessage:
                return [json.dumps(d).encode(), pix]

    splices = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1" * 5000, b"[" * 8000, b"{\"a\":" * 2000,
               b'"\\ud800"', b"9" * 30]

    def spliced() -> list[bytes]:
        target = [b'"seq":0', b'"scale":1', b'"v":1'][int(rng.integers(0, 3))]
        key = target.split(b":")[0]
        return [good.replace(target, key + b":" + splices[int(rng.integers(0, len(splices)))]), pix]

    def jpeg_lies() -> list[bytes]:
        which = int(rng.integers(0, 3))
        d = dict(h, codec="jpeg")
        if which == 0:
            return [json.dumps(d).encode(), pix]  # raw pixels announced as JPEG
        if which == 1:
            return [json.dumps(d).encode(), small_jpeg]  # a real JPEG of another size
        return [json.dumps(d).encode(), b"\xff\xd8" + bytes(rng.integers(0, 256, 50, dtype=np.uint8))]

    gens = [
        mutated, mutated, mutated, spliced, jpeg_lies,
        lambda: [good[: int(rng.integers(0, len(good)))], pix],
        lambda: [good + b" " * (MAX_HEADER_BYTES + 1 - len(good)), pix],
        lambda: [good] * int(rng.choice([1, 3, 4])),
        lambda: [good, pix[: int(rng.integers(0, len(pix)))]],
        lambda: [bytes(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8)), pix],
    ]
    return [gens[int(rng.integers(0, len(gens)))]() for _ in range(n)]


@pytest.mark.parametrize("conflate", [False, True])
def test_fuzz_thousands_of_generated_malformed_messages_never_stop_the_receiver(conflate):
    """3000 generated malformed messages (each checked to be refused by the parser, with MalformedMessage
    and nothing else), a valid frame after every 30th, through the real Subscriber over TCP. Every valid
    frame after them arrives (in order; with newest-wins, the last one), every message is counted as
    received or malformed with a reason, and the receiver is still alive at the end."""
    rng = np.random.default_rng(27)
    bad = _generated_malformed(rng, 3000)
    for parts in bad:
        with pytest.raises(MalformedMessage):
            parse_message(parts)
    st, got, reasons, good_seqs, last = _through_subscriber(bad, conflate=conflate, good_every=30, hwm=100_000,
                                                            deadline_s=60, drain_s=0.3, final_seq=10_000)
    assert last is not None and last.seq == 10_000
    assert st.received == len(good_seqs) + 1 and st.malformed == len(bad) == len(reasons)
    assert st.undecodable == 0  # every lie was caught before decoding
    assert all(r and len(r) <= 300 for r in reasons)
    assert any("nested" in r for r in reasons) and any("64 bits" in r for r in reasons)
    assert any("JPEG" in r for r in reasons) and any(str(MAX_HEADER_BYTES) in r for r in reasons)
    assert all(np.array_equal(f.image, synthetic_image(f.seq, 32, 24)) for f in got)
    if conflate:
        assert got and got[-1].seq == good_seqs[-1]
        assert len(got) + st.conflated == len(good_seqs)
    else:
        assert [f.seq for f in got] == good_seqs


def test_jpeg_wire_round_trip_and_a_lying_jpeg_is_counted_not_raised():
    """jpeg:90 frames decode to the image (lossy: small mean error) in a fraction of the raw bytes; a JPEG
    whose frame header says the announced size but which has no image data passes the header checks, and
    is counted (undecodable and malformed) when taken instead of raising; the next frame still arrives."""
    w, h = 160, 120
    ctx = zmq.Context()
    raw = ctx.socket(zmq.XPUB)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    try:
        with Subscriber(f"tcp://127.0.0.1:{port}", conflate=False) as sub:
            assert raw.poll(10_000), "subscriber never connected"
            raw.recv()
            good, jpg = encode_frame(wire_frame(0, w=w, h=h), wire=WireFormat.parse("jpeg:90"))
            assert jpg.nbytes < w * h * 3 / 4
            data = jpg.tobytes()
            no_scan = data[: data.index(b"\xff\xda")] + b"\xff\xd9"  # headers only, then end of image
            raw.send_multipart([good, data])
            raw.send_multipart([good.replace(b'"seq":0', b'"seq":1'), no_scan])
            header, jpg2 = encode_frame(wire_frame(2, w=w, h=h), wire=WireFormat("jpeg"))
            raw.send_multipart([header, jpg2.tobytes()])
            got = [sub.recv(timeout=10), sub.recv(timeout=10)]
    finally:
        raw.close(0)
        ctx.term()
    assert [f.seq for f in got] == [0, 2]
    assert got[0].image.shape == (h, w, 3)
    assert np.abs(got[0].image.astype(int) - synthetic_image(0, w, h)).mean() < 4
    assert sub.stats.received == 3 and sub.stats.undecodable == sub.stats.malformed == 1
    assert "decoded to nothing" in sub.stats.last_malformed


def test_imagezmq_recv_jpg_reads_our_jpeg_frames():
    """An unmodified imagezmq ImageHub().recv_jpg() reads `--wire jpeg` messages: the stream name and a JPEG
    that cv2.imdecode turns into the BGR image."""
    import cv2

    imagezmq = pytest.importorskip("imagezmq")
    with Publisher(EPHEMERAL, name="endo", wire=WireFormat("jpeg", 95)) as pub:
        hub = imagezmq.ImageHub(open_port=pub.endpoint, REQ_REP=False)
        try:
            hub.zmq_socket.setsockopt(zmq.RCVTIMEO, 5000)
            _connected(pub)
            for i in range(3):
                pub.write(wire_frame(i, w=64, h=48))
            received = [hub.recv_jpg() for _ in range(3)]
        finally:
            hub.close()
    for i, (msg, jpg) in enumerate(received):
        assert msg == "endo"
        image = cv2.imdecode(np.frombuffer(jpg, dtype=np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (48, 64, 3)
        assert np.abs(image.astype(int) - synthetic_image(i, 64, 48)[..., ::-1]).mean() < 4


def test_wire_format_specs():
    assert WireFormat.parse("raw") == WireFormat("raw")
    assert WireFormat.parse("jpeg") == WireFormat("jpeg", 90)
    assert WireFormat.parse("JPEG:75") == WireFormat("jpeg", 75)
    for bad in ("jpeg:0", "jpeg:101", "jpeg:x", "png", "raw:5", ""):
        with pytest.raises(ValueError, match="raw, jpeg or jpeg:QUALITY"):
            WireFormat.parse(bad)


def test_publisher_counts_slow_subscriber_drops_and_the_subscriber_counts_its_exact_misses():
    """A subscriber that does not read while 150 frames of 512x384 (590 KB) go out fills its queue (publisher
    HWM 2, its own 1, and the kernel's socket buffers): the publisher counts the times it found the queue
    full, the frames still went out (sent == 150), and once the subscriber reads again, every published
    message number is either received or counted as dropped by the publisher for it."""
    frames = [wire_frame(i, w=512, h=384) for i in range(4)]
    with Publisher(EPHEMERAL, hwm=2) as pub, Subscriber(pub.endpoint, conflate=False, hwm=1) as sub:
        _connected(pub)
        for i in range(150):
            f = frames[i % 4]
            f.seq = i
            pub.write(f)
        received = 0
        while sub.recv(timeout=2.0) is not None:  # until its queues are empty
            received += 1
        time.sleep(0.2)
        frames[0].seq = 150
        pub.write(frames[0])  # after catching up: closes the gap at the tail
        assert sub.recv(timeout=10) is not None
        received += 1
    assert pub.sent == 151 and pub.dropped_slow >= 1
    st = sub.stats
    assert st.received == received and st.publisher_drops > 0
    assert st.received + st.publisher_drops == 151
    assert st.seq_gaps == st.publisher_drops  # here every missing seq is a publisher drop
