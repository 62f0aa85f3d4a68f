"""Wire formats measured: bytes per frame, encode / decode ms, and the latency the wire adds (publisher write
-> frame in the subscriber's hands, decode included) over ZeroMQ on 127.0.0.1, for raw and JPEG at a few
qualities, at 512x384 (4x of a 128x96 scope) and 1920x1080.

    nice -n 19 python benchmarks/wire.py [--frames 60] [--out benchmarks/results]

Content: real enhanced frames: samples/sample.mp4 (endoscopy) resized to a quarter of the size and enhanced
4x by the shipped generator, as `stream` publishes them (JPEG sizes depend on content: noise costs more). PSNR is of the decoded JPEG against the raw
frame. Frames are published at 10 fps so nothing queues: the latency is the wire's own cost. Tails, not
means: p50 / p99 / max over the frames."""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np

from streamsr.frame import Frame, now_ns
from streamsr.latency import summarize_ms
from streamsr.transport import Publisher, Subscriber, WireFormat, encode_frame, parse_message, to_frame

SIZES = [(512, 384), (1920, 1080)]
WIRES = ["raw", "jpeg:75", "jpeg:90", "jpeg:95"]


def sample_frames(width: int, height: int, n: int, distinct: int = 8) -> list[np.ndarray]:
    """`n` frames (cycling `distinct` ones) of real 4x output at width x height: sample.mp4 frames resized
    (bicubic) to width/4 x height/4, then enhanced by the shipped generator, as `stream` would publish them."""
    import streamsr

    root = Path(__file__).resolve().parents[1]
    with av.open(str(root / "samples" / "sample.mp4")) as c:
        lr = [f.to_ndarray(format="rgb24") for _, f in zip(range(distinct), c.decode(video=0))]
    lr = [np.ascontiguousarray(cv2.resize(im, (width // 4, height // 4), interpolation=cv2.INTER_CUBIC)) for im in lr]
    out = [streamsr.upscale(im, device="cpu") for im in lr]
    return [out[i % len(out)] for i in range(n)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def measure(images: list[np.ndarray], wire: WireFormat) -> dict:
    enc_ms, dec_ms, sizes, quality = [], [], [], []
    for i, im in enumerate(images):
        f = Frame(image=im, seq=i)
        t = time.perf_counter()
        header, payload = encode_frame(f, wire=wire)
        enc_ms.append((time.perf_counter() - t) * 1e3)
        sizes.append(len(header) + payload.nbytes)
        parsed = parse_message([header, payload.tobytes()])
        t = time.perf_counter()
        out = to_frame(*parsed)
        dec_ms.append((time.perf_counter() - t) * 1e3)
        quality.append(psnr(out.image, im))
    # over the wire
    lat: list[float] = []
    with Publisher("tcp://127.0.0.1:*", wire=wire, hwm=8) as pub, \
            Subscriber(pub.endpoint, conflate=False, hwm=8) as sub:
        assert pub.wait_for_subscribers(1, 10)
        time.sleep(0.2)
        sent: dict[int, int] = {}
        done = threading.Event()

        def receive() -> None:
            while not done.is_set():
                fr = sub.recv(timeout=0.2)
                if fr is not None:
                    lat.append((now_ns() - sent[fr.seq]) / 1e6)

        th = threading.Thread(target=receive, daemon=True)
        th.start()
        for i, im in enumerate(images):
            f = Frame(image=im, seq=i)
            sent[i] = now_ns()
            pub.write(f)
            time.sleep(0.1)
        time.sleep(0.5)
        done.set()
        th.join(5)
    e, d, w = summarize_ms(enc_ms), summarize_ms(dec_ms), summarize_ms(lat)
    size = float(np.median(sizes))
    return {"wire": str(wire), "bytes": size, "mbit_30fps": size * 8 * 30 / 1e6, "encode_p50": e.p50,
            "encode_p99": e.p99, "decode_p50": d.p50, "decode_p99": d.p99, "latency_p50": w.p50,
            "latency_p99": w.p99, "latency_max": w.max, "received": w.count, "psnr": float(np.median(quality))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    rows = []
    for w, h in SIZES:
        images = sample_frames(w, h, args.frames)
        for spec in WIRES:
            r = measure(images, WireFormat.parse(spec))
            r["size"] = f"{w}x{h}"
            rows.append(r)
            print(json.dumps(r), flush=True)
    lines = ["| size | wire | bytes/frame | Mbit/s at 30 fps | encode ms p50 / p99 | decode ms p50 / p99 | "
             "added latency ms p50 / p99 / max | PSNR dB |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        q = "lossless" if r["wire"] == "raw" else f"{r['psnr']:.1f}"
        lines.append(f"| {r['size']} | {r['wire']} | {r['bytes'] / 1024:,.0f} KiB | {r['mbit_30fps']:,.0f} | "
                     f"{r['encode_p50']:.1f} / {r['encode_p99']:.1f} | {r['decode_p50']:.1f} / {r['decode_p99']:.1f} | "
                     f"{r['latency_p50']:.1f} / {r['latency_p99']:.1f} / {r['latency_max']:.1f} | {q} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "wire.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "wire.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
