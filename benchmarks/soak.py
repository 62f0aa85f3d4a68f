"""Soak: `streamsr stream synthetic --wire jpeg --record` for N minutes with a fast viewer (`streamsr view`)
and a slow one (an in-order Subscriber taking 1 s per frame, slower than the stream: its publisher queue
fills and the publisher drops for it), all separate processes on 127.0.0.1. RSS of each sampled every 10 s;
at the end the counts must add up:

- stream: frames in = out + dropped (newest-frame policy) + in flight; published = out; the recording holds
  every frame out;
- fast viewer: frames shown + skipped for newer + dropped for it by the publisher = published;
- slow viewer: frames received + dropped for it by the publisher (gaps in `n`) + the tail it never got
  (published after its last frame) = published.

    nice -n 19 python benchmarks/soak.py [--minutes 10] [--source synthetic:128x96@10] [--tiny]
                                         [--stem soak] [--out benchmarks/results]

--tiny enhances with an untrained tiny generator (srgan-x4-tiny) instead of the shipped weights: the soak
does not measure the model, and a fast one makes the stream outrun the slow viewer on a small CPU, so the
publisher's drops for it are exercised too (with the shipped model on a loaded 2-core CPU the stream is
slower than the slow viewer).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

_SLOW = """
import json, signal, sys, time
from streamsr.transport import Subscriber
stop = False
def end(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, end)
sub = Subscriber(sys.argv[1], conflate=False)
got, last_n = 0, None
while not stop:
    f = sub.recv(timeout=0.5)
    if f is None:
        continue
    got += 1
    time.sleep(1.0)
st = sub.stats
print(json.dumps({"received": st.received, "publisher_drops": st.publisher_drops, "last_n": st.last_number,
                  "malformed": st.malformed}))
sub.close()
"""


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--source", default="synthetic:128x96@10")
    ap.add_argument("--tiny", action="store_true", help="an untrained tiny generator: a fast stream")
    ap.add_argument("--stem", default="soak")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cli = [sys.executable, "-m", "streamsr"]
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "soak.mp4"
        weights: list[str] = []
        if args.tiny:
            import torch

            from streamsr.model import Generator, save_weights

            torch.manual_seed(0)
            weights = ["--weights", str(save_weights(Generator("srgan-x4-tiny"), Path(tmp) / "tiny.safetensors"))]
        fast = subprocess.Popen([*cli, "view", endpoint, "--timeout", "20", "-q"], stderr=subprocess.PIPE, text=True,
                                env=env)
        slow = subprocess.Popen([sys.executable, "-c", _SLOW, endpoint], stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(3)
        streamer = subprocess.Popen([*cli, "stream", args.source, "--publish", endpoint, "--wire", "jpeg", "--record",
                                     str(rec), "--wait-subscriber", "60", "--device", "cpu", *weights, "-q"],
                                    stderr=subprocess.PIPE, text=True, env=env)
        procs = {"stream": streamer, "fast view": fast, "slow viewer": slow}
        samples: list[dict] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.minutes * 60:
            samples.append({"t": round(time.monotonic() - t0), **{k: rss_mib(p.pid) for k, p in procs.items()}})
            print(json.dumps(samples[-1]), flush=True)
            for k, p in procs.items():
                if p.poll() is not None:
                    raise SystemExit(f"{k} ended early with {p.returncode}")
            time.sleep(10)
        streamer.send_signal(signal.SIGTERM)
        _, stream_err = streamer.communicate(timeout=120)
        time.sleep(2)
        slow.send_signal(signal.SIGTERM)
        slow_out, _ = slow.communicate(timeout=60)
        _, fast_err = fast.communicate(timeout=60)
        with av.open(str(rec)) as c:
            recorded = sum(1 for _ in c.decode(video=0))
    m = re.search(r"(\d+) frames out of (\d+) in ([\d.]+) s .*?, (\d+) dropped \(newest-frame policy\)"
                  r"(?:, (\d+) in flight when it stopped)?.*?published (\d+) \(jpeg:90, (\d+) KiB/frame\)"
                  r"(?:, a subscriber's queue was full (\d+) time)?", stream_err)
    if not m:
        raise SystemExit(f"no summary from stream:\n{stream_err}")
    out, n_in, secs, dropped, unfinished, published, kib, episodes = m.groups()
    out, n_in, dropped, unfinished, published = int(out), int(n_in), int(dropped), int(unfinished or 0), int(published)
    v = re.search(r"received (\d+) frames.*?; (\d+) skipped for newer, (\d+) missed upstream.*?(\d+) malformed",
                  fast_err)
    if not v:
        raise SystemExit(f"no summary from view:\n{fast_err}")
    shown, skipped, missed, fast_malformed = map(int, v.groups())
    p = re.search(r"(\d+) of the missed dropped by the publisher", fast_err)
    fast_pub = int(p.group(1)) if p else 0
    s = json.loads(slow_out.strip().splitlines()[-1])
    tail = published - 1 - s["last_n"]
    rows = {
        "minutes": args.minutes, "source": args.source, "model": "srgan-x4-tiny (untrained)" if args.tiny else
        "shipped weights", "stream_exit": streamer.returncode,
        "stream": {"in": n_in, "out": out, "dropped": dropped, "in_flight": unfinished, "published": published,
                   "kib_per_frame": int(kib), "queue_full_episodes": int(episodes or 0), "recorded": recorded,
                   "adds_up": n_in == out + dropped + unfinished and published == out == recorded},
        "fast_view": {"shown": shown, "skipped_for_newer": skipped, "publisher_drops": fast_pub,
                      "malformed": fast_malformed, "adds_up": shown + skipped + fast_pub == published},
        "slow_viewer": {**s, "tail": tail,
                        "adds_up": s["received"] + s["publisher_drops"] + tail == published},
        "rss_mib": samples,
    }
    print(json.dumps({k: v for k, v in rows.items() if k != "rss_mib"}, indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = []
    for name in procs:
        vals = [x[name] for x in samples if x[name] is not None]
        first = [x[name] for x in samples if x[name] is not None and 60 <= x["t"] < 120]
        last = [x[name] for x in samples if x[name] is not None and x["t"] >= samples[-1]["t"] - 60]
        lines.append(f"| {name} | {first[0] if first else vals[0]:.1f} | {last[-1]:.1f} | {max(vals):.1f} | "
                     f"{(last[-1] - (first[0] if first else vals[0])):+.1f} |")
    md = ["| process | RSS at 1 min (MiB) | RSS at the end | max | growth after the first minute |",
          "|---|---|---|---|---|", *lines, "", "```", json.dumps({k: v for k, v in rows.items() if k != "rss_mib"},
                                                                   indent=1), "```"]
    (args.out / f"{args.stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
