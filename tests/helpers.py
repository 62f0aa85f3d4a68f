"""Test helpers, the one module test modules share (no test module imports another, nor conftest):

- the `streamsr` entry point in the test process (exit status and stderr, without a subprocess's start-up,
  seconds on a loaded 2-core machine), and in a subprocess where the process boundary is the point;
- an engine for a window, one file job run here;
- clips with exact timestamps and damaged copies, and what a written file holds (probe, frame times, audio);
- free ports, a UDP MPEG-TS sender, frames and malformed messages for the ZeroMQ wire format.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamsr.cli import main
from streamsr.frame import Frame
from streamsr.sources import synthetic_image as source_pattern
from streamsr.testing import mux_tone, synthetic_image

# ---- the command line -------------------------------------------------------------------------------------


def run_main(capsys, *args: str) -> tuple[int, str]:
    """(exit status, stderr) of `streamsr ARGS`; the signal handlers main() installs are put back after."""
    code, _, err = run_main_io(capsys, *args)
    return code, err


def run_main_io(capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `streamsr ARGS`, as run_main."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    argv, sys.argv = sys.argv, ["streamsr", *args]
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
        for s, h in saved.items():
            signal.signal(s, h)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """A failed run said why in exactly one `streamsr: error:` line (holding every needle), no traceback."""
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("streamsr: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m streamsr ARGS` in a subprocess (the real entry point, exit code and stderr): only where the
    process boundary is the point (a Ray driver of its own); run_main otherwise."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "streamsr", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def popen_cli(*args: str) -> subprocess.Popen:
    """`python -m streamsr ARGS` started in the background (stdout and stderr piped, unbuffered): a process
    to send signals to, or to run beside another."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "streamsr", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def signal_when(proc: subprocess.Popen, pattern: str, sig: int, timeout: float = 120) -> str:
    """Read a popen_cli child's stderr until `pattern` matches, then send it `sig`; returns all its stderr."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not re.search(pattern, seen) and proc.poll() is None:
        seen += proc.stderr.read(1)
    assert proc.poll() is None, f"finished before {pattern!r} was seen:\n{seen}"
    proc.send_signal(sig)
    _, rest = proc.communicate(timeout=60)
    return seen + rest


# ---- engines and jobs -------------------------------------------------------------------------------------


def engine_for(*, weights, window: int = 44, batch: int = 16, **settings):
    """The engine `select_engine` builds for `weights` and windows of `window` LR pixels (tile = window, no
    halo), `settings` being other EnhancerSpec fields (engine, device, precision, cache_dir)."""
    from streamsr.backends import select_engine
    from streamsr.model import load_generator
    from streamsr.spec import EnhancerSpec

    spec = EnhancerSpec.resolve(weights, tile=window, halo=0, batch=batch, **settings)  # window 44: Tiler()'s
    return select_engine(load_generator(spec.weights), spec)


def enhance_file(job, enhancer, **options):
    """Run one file job here, as `streamsr.enhance_video` does (errors propagate): its JobResult.
    options: JobOptions fields (strict, overwrite, segment_seconds...)."""
    from streamsr.jobs import JobOptions, LocalExecutor, run_jobs

    (result,) = run_jobs([job], LocalExecutor(enhancer), JobOptions(**options), keep_going=False)
    return result


# ---- clips and what a written file holds ------------------------------------------------------------------


def make_timed_clip(
    path: Path,
    pts: list[int],
    *,
    time_base: Fraction = Fraction(1, 1000),
    width: int = 48,
    height: int = 40,
    bframes: bool = True,
    gop: int | None = None,
    audio: tuple[tuple[str, str], ...] = (),
) -> Path:
    """An H.264 clip whose frame i is shown at pts[i] (in `time_base`): variable frame rate, jumps, and
    with `bframes=False` also duplicated pts (decode times are then made distinct, as muxers require).
    MP4 outputs keep `time_base` exactly (track timescale set); gop: frames between keyframes. audio: one mono
    AAC track per (language, title), each a different tone, as long as the video."""
    tb = Fraction(time_base)
    options = {"video_track_timescale": str(tb.denominator)} if path.suffix == ".mp4" else {}
    distinct = sorted(set(pts)) == sorted(pts)
    dts = list(pts)  # with repeats: strictly increasing decode times, each <= its pts, as muxers demand
    for i in range(len(dts) - 2, -1, -1):
        dts[i] = min(dts[i], dts[i + 1] - 1)
    with av.open(str(path), "w", options=options) as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = tb
        video.options = {k: v for k, v in (("bf", None if bframes else "0"), ("g", gop and str(gop))) if v}
        tracks = []
        for k, (language, title) in enumerate(audio):
            a = out.add_stream("aac", rate=16000)
            a.layout = "mono"
            a.metadata.update({"language": language, "title": title})
            tracks.append((a, 220 * (k + 2)))
        for i in range(len(pts)):
            vf = av.VideoFrame.from_ndarray(synthetic_image(i, width, height), format="rgb24")
            vf.pts, vf.time_base = (pts[i] if distinct else i), tb
            for p in video.encode(vf):
                if not distinct:  # encoded at 0, 1, 2...: now give each packet its real (repeating) time
                    p.pts, p.dts = pts[p.pts], dts[p.pts]
                out.mux(p)
        for p in video.encode(None):
            if not distinct:
                p.pts, p.dts = pts[p.pts], dts[p.pts]
            out.mux(p)
        n = int(16000 * (max(pts) + 1) * tb)
        for a, hz in tracks:
            mux_tone(out, a, n, hz)
    return path


def overwrite_middle(src: Path, dst: Path, nbytes: int) -> Path:
    """Copy `src` to `dst` with `nbytes` of garbage (a fixed pattern) over the middle of the file."""
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid - nbytes // 2 : mid + nbytes // 2] = bytes((i * 37 + 11) % 256 for i in range(nbytes // 2 * 2))
    dst.write_bytes(bytes(data))
    return dst


def corrupt_packet(src: Path, dst: Path, index: int) -> None:
    """Copy `src` to `dst` with the payload of the index-th video packet (in file order) overwritten with junk."""
    with av.open(str(src)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    pos, size = sorted(packets)[index]
    data = bytearray(src.read_bytes())
    data[pos + 8 : pos + size] = b"\xaa" * (size - 8)
    dst.write_bytes(bytes(data))


def probe(path: Path) -> dict:
    """A video file's first video stream: size, average rate, decoded frame count and times (s), audio codecs."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f for f in c.decode(video=0)]
        return {
            "size": (v.codec_context.width, v.codec_context.height),
            "rate": v.average_rate,
            "frames": len(frames),
            "pts_s": [float(f.pts * f.time_base) for f in frames],
            "audio": [s.codec_context.name for s in c.streams.audio],
        }


def decode_all(path: Path) -> list[av.VideoFrame]:
    """Every frame of the file's first video stream."""
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def frame_times(path: Path) -> tuple[list[Fraction], Fraction, int]:
    """(every decoded frame's time in s as an exact Fraction, the stream time base, packets)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        packets = sum(1 for p in c.demux(s) if p.size)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [f.pts * s.time_base for f in c.decode(s)], Fraction(s.time_base), packets


def audio_packets(path: Path) -> list[tuple[dict, list[bytes]]]:
    """Per audio track, in stream order: (its metadata, the bytes of every packet)."""
    with av.open(str(path)) as c:
        tracks = {s.index: (dict(s.metadata), []) for s in c.streams.audio}
        for p in c.demux(*c.streams.audio):
            if p.size:
                tracks[p.stream.index][1].append(bytes(p))
    return [tracks[k] for k in sorted(tracks)]


def leftovers(folder: Path, stem: str = "out") -> list[str]:
    """Names in `folder` containing `stem`: what a run that should leave nothing left (partials included)."""
    return sorted(p.name for p in folder.iterdir() if stem in p.name)


# ---- sockets and the wire format --------------------------------------------------------------------------


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UdpSender(threading.Thread):
    """Encodes MPEG-TS (MPEG-2 video, 32x24, short GOP) to udp://127.0.0.1:port with PyAV, in sessions:
    each (frames, brightness) pair is one connection; `gap` seconds of silence between sessions."""

    def __init__(self, port: int, sessions: list[tuple[int, int]], *, fps: int = 25, gap: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.port, self.sessions, self.fps, self.gap = port, sessions, fps, gap
        self.stop = threading.Event()

    def run(self) -> None:
        for k, (frames, level) in enumerate(self.sessions):
            if k and self.stop.wait(self.gap):
                return
            out = av.open(f"udp://127.0.0.1:{self.port}?pkt_size=1316", mode="w", format="mpegts")
            s = out.add_stream("mpeg2video", rate=self.fps)
            s.width, s.height, s.pix_fmt, s.gop_size = 32, 24, "yuv420p", 5
            t0 = time.monotonic()
            for i in range(frames):
                if self.stop.is_set():
                    break
                img = np.full((24, 32, 3), level, np.uint8)
                img[:, (i % 8) * 4 : (i % 8) * 4 + 4] = 255 - level
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts = i
                for p in s.encode(vf):
                    out.mux(p)
                time.sleep(max(0.0, t0 + (i + 1) / self.fps - time.monotonic()))
            for p in s.encode(None):
                out.mux(p)
            out.close()


def wire_frame(seq: int, w: int = 32, h: int = 24, **kw) -> Frame:
    """Frame `seq` of the live source's pattern (streamsr.sources.synthetic_image), as a publisher sends it:
    pts seq*3 at 1/30 s, stamped captured now."""
    f = Frame(image=source_pattern(seq, w, h), seq=seq, pts=seq * 3, time_base=Fraction(1, 30), **kw)
    f.timeline.stamp("captured")
    return f


def new_subscription(raw, timeout_s: float) -> bool:
    """Wait on a raw zmq XPUB socket for a (re)subscription, skipping unsubscriptions."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        if raw.poll(int(left * 1000)) and raw.recv()[:1] == b"\x01":
            return True
    return False


def malformed_messages(rng: np.random.Generator) -> list[list[bytes]]:
    """300 multipart messages the wire parser must refuse, cycling through 22 kinds of fault."""
    from streamsr.transport import encode_frame

    good_header, bgr = encode_frame(wire_frame(0))
    h = json.loads(good_header)
    pix = bgr.tobytes()

    def hdr(**changes) -> bytes:
        d = dict(h)
        for k, v in changes.items():
            if v is ...:
                d.pop(k)
            else:
                d[k] = v
        return json.dumps(d).encode()

    kinds = [
        lambda: [good_header],  # one part
        lambda: [good_header, pix, b"extra"],  # three parts
        lambda: [b"{not json", pix],
        lambda: [b"\xff\xfe\x00", pix],  # not UTF-8
        lambda: [b"[1, 2, 3]", pix],  # JSON, not an object
        lambda: [hdr(v=2), pix],  # unknown version
        lambda: [hdr(v=...), pix],  # plain imagezmq-style header, no version
        lambda: [hdr(v=True), pix],
        lambda: [good_header, pix[: -int(rng.integers(1, 100))]],  # size mismatch
        lambda: [good_header, pix + b"\x00"],
        lambda: [hdr(shape=[24, 32]), pix],
        lambda: [hdr(shape=[24, 32, 4]), pix],
        lambda: [hdr(shape=[-24, 32, 3]), pix],
        lambda: [hdr(dtype="float32"), pix],
        lambda: [hdr(pix_fmt="rgb24"), pix],
        lambda: [hdr(seq=-1), pix],
        lambda: [hdr(seq="7"), pix],
        lambda: [hdr(time_base=[1, 0]), pix],
        lambda: [hdr(timeline={"nope": 1}), pix],
        lambda: [hdr(timeline={"captured": 1.5}), pix],
        lambda: [hdr(scale=0), pix],
        lambda: [bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8)),
                 bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8))],
    ]
    return [kinds[i % len(kinds)]() for i in range(300)]


class SlowEngine:
    """A real engine plus `delay_s` seconds of sleep per call: an enhancer slower than a live source on any
    machine, however idle, so the live paths must drop frames (or hint at the low rate)."""

    def __init__(self, inner, delay_s: float) -> None:
        self._inner = inner
        self._delay_s = delay_s

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def run(self, tiles, *args, **kwargs):
        time.sleep(self._delay_s)
        return self._inner.run(tiles, *args, **kwargs)
