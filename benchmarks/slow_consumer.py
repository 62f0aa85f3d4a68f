"""How far behind a slow consumer falls, three ways: a plain SUB read in order (what an imagezmq-style
consumer does: default options), a SUB with a small receive HWM that keeps the newest of what is queued each
time it is ready, and streamsr's Subscriber (a receiver thread drains continuously into a newest-frame slot).

    nice -n 19 python benchmarks/slow_consumer.py [--seconds 20] [--wire jpeg] [--out benchmarks/results]

A Publisher sends 512x384 frames at 30 fps for `--seconds`; each consumer takes 0.2 s per frame (5 fps).
Lag = now - the frame's capture stamp when the consumer starts on it (one host, one clock). Missed by the
publisher = gaps in the header's message number `n` (frames its queue for that consumer dropped)."""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np
import zmq

from streamsr.frame import Frame, now_ns
from streamsr.sources import synthetic_image
from streamsr.transport import Publisher, Subscriber, WireFormat

WORK_S = 0.2
RATE = 30


class Plain:
    """imagezmq's way: a SUB with default options (RCVHWM 1000), every message read in order."""

    name = "plain SUB, in order (imagezmq-style)"

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)

    def next(self) -> dict | None:
        if not self.sock.poll(200):
            return None
        return json.loads(self.sock.recv_multipart()[0])

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


class KeepNewest(Plain):
    """The bounded way without a thread: RCVHWM 2, and when ready take everything queued, keep the last."""

    name = "SUB RCVHWM 2, keep the newest when ready"

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, 2)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)

    def next(self) -> dict | None:
        if not self.sock.poll(200):
            return None
        parts = self.sock.recv_multipart()
        while True:
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
        return json.loads(parts[0])


class Threaded:
    name = "streamsr Subscriber (receiver thread, newest wins)"

    def __init__(self, endpoint: str) -> None:
        self.sub = Subscriber(endpoint, conflate=True)

    def next(self) -> dict | None:
        f = self.sub.recv(timeout=0.2)
        if f is None:
            return None
        return {"timeline": {"captured": f.timeline.captured}, "n": None, "seq": f.seq}

    def close(self) -> None:
        self.sub.close()


def run(kind, wire: WireFormat, seconds: float) -> dict:
    images = [synthetic_image(i, 512, 384) for i in range(8)]
    with Publisher("tcp://127.0.0.1:*", wire=wire) as pub:
        consumer = kind(pub.endpoint)
        assert pub.wait_for_subscribers(1, 10)
        time.sleep(0.2)
        lags: list[tuple[float, float]] = []
        numbers: list[int] = []
        done = threading.Event()
        t0 = time.monotonic()

        def consume() -> None:
            while not done.is_set():
                h = consumer.next()
                if h is None:
                    continue
                lags.append((time.monotonic() - t0, (now_ns() - h["timeline"]["captured"]) / 1e9))
                if h.get("n") is not None:
                    numbers.append(h["n"])
                time.sleep(WORK_S)

        th = threading.Thread(target=consume, daemon=True)
        th.start()
        n = int(seconds * RATE)
        for i in range(n):
            time.sleep(max(0.0, t0 + i / RATE - time.monotonic()))
            f = Frame(image=images[i % 8], seq=i)
            f.timeline.stamp("captured")
            pub.write(f)
        done.set()
        th.join(5)
        consumer.close()
        episodes = pub.dropped_slow
    last = [lag for t, lag in lags if t >= seconds - 5]
    gaps = sum(b - a - 1 for a, b in zip(numbers, numbers[1:]) if b > a)
    return {"consumer": kind.name, "wire": str(wire), "processed": len(lags), "published": n,
            "lag_last5s_p50": float(np.median(last)) if last else float("nan"),
            "lag_max": max((lag for _, lag in lags), default=float("nan")),
            "missed_at_publisher": gaps if numbers else None, "queue_full_episodes": episodes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--wire", default="jpeg")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    wire = WireFormat.parse(args.wire)
    rows = []
    for kind in (Plain, KeepNewest, Threaded):
        r = run(kind, wire, args.seconds)
        rows.append(r)
        print(json.dumps(r), flush=True)
    lines = [f"{args.seconds:g} s of 512x384 at {RATE} fps, wire {wire}, consumer 0.2 s/frame:", "",
             "| consumer | frames processed | lag p50 over the last 5 s | max lag | missed at the publisher "
             "(from `n`) | publisher: queue-full episodes |", "|---|---|---|---|---|---|"]
    for r in rows:
        missed = "-" if r["missed_at_publisher"] is None else r["missed_at_publisher"]
        lines.append(f"| {r['consumer']} | {r['processed']} of {r['published']} | {r['lag_last5s_p50']:.2f} s | "
                     f"{r['lag_max']:.2f} s | {missed} | {r['queue_full_episodes']} |")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"slow_consumer-{wire.codec}"
    (args.out / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
