"""Live recordings and viewers under faults (issue 27), with real processes, PyAV streams and ZeroMQ sockets
on 127.0.0.1: a network source killed and back at another size, a replayed file that disappears, a publisher
restarted at another (odd) size under `view --record`, nested and overflowing headers, a receiver that dies,
the library runner's result and hints."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from helpers import (
    SlowEngine,
    decode_all,
    engine_for,
    free_tcp_port,
    free_udp_port,
    new_subscription,
    popen_cli,
    run_main,
    wire_frame,
)
from streamsr.enhancer import Enhancer
from streamsr.errors import InputError
from streamsr.frame import Frame
from streamsr.sinks import Recorder, segment_path
from streamsr.sources import synthetic_image
from streamsr.testing import IterableSource, make_clip
from streamsr.tiling import Tiler
from streamsr.transport import Publisher, encode_frame

_SENDER = """
import sys, time
import av, numpy as np
port, w, h, level = map(int, sys.argv[1:])
out = av.open(f"udp://127.0.0.1:{port}?pkt_size=1316", mode="w", format="mpegts")
s = out.add_stream("mpeg2video", rate=25)
s.width, s.height, s.pix_fmt, s.gop_size = w, h, "yuv420p", 5
t0 = time.monotonic()
i = 0
while True:  # until killed
    img = np.full((h, w, 3), level, np.uint8)
    img[:, (i % 8) * 4 : (i % 8) * 4 + 4] = 255 - level
    vf = av.VideoFrame.from_ndarray(img, format="rgb24")
    vf.pts = i
    for p in s.encode(vf):
        out.mux(p)
    i += 1
    time.sleep(max(0.0, t0 + i / 25 - time.monotonic()))
"""


def _sender(port: int, w: int, h: int, level: int) -> subprocess.Popen:
    """A separate process serving MPEG-TS (MPEG-2 video, WxH, 25 fps) to udp://127.0.0.1:port until killed."""
    return subprocess.Popen([sys.executable, "-c", _SENDER, str(port), str(w), str(h), str(level)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(path: Path, procs: list[subprocess.Popen], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        for p in procs:
            assert p.poll() is None, p.communicate()[1]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.1)


def test_network_source_killed_and_back_at_another_size_continues_into_a_segment(tmp_path, tiny_weights):
    """`stream udp://... --record rec.mp4` (a process) of a PyAV sender (a process) at 32x24; the sender is
    killed and a new one serves 40x32. The frames recorded before stay in rec.mp4 (finished, decodable,
    128x96), the stream carries on into rec.001.mp4 (160x128), and SIGTERM ends it with both named in the
    summary, exit 130."""
    port = free_udp_port()
    rec = tmp_path / "rec.mp4"
    first = _sender(port, 32, 24, 40)
    procs = [first]
    try:
        time.sleep(0.5)
        streamer = popen_cli("stream", f"udp://127.0.0.1:{port}", "--record", str(rec), "--read-timeout", "0.5",
                             "--weights", str(tiny_weights), "--device", "cpu", "-q")
        procs.append(streamer)
        _wait_for(tmp_path / ".rec.partial.mp4", procs)
        time.sleep(1.0)  # some frames at the first size
        first.kill()
        first.wait(10)
        procs.remove(first)
        second = _sender(port, 40, 32, 200)
        procs.append(second)
        _wait_for(tmp_path / ".rec.001.partial.mp4", procs)
        assert rec.exists() and not (tmp_path / ".rec.partial.mp4").exists()  # finished when the size changed
        time.sleep(1.0)
        streamer.send_signal(signal.SIGTERM)
        _, err = streamer.communicate(timeout=60)
    finally:
        for p in procs:
            p.kill()
    assert streamer.returncode == 130, err
    assert "Traceback" not in err
    before, after = decode_all(rec), decode_all(tmp_path / "rec.001.mp4")
    assert len(before) >= 1 and all((f.width, f.height) == (128, 96) for f in before)
    assert len(after) >= 1 and all((f.width, f.height) == (160, 128) for f in after)
    m = re.search(r"1 size change\(s\).*recorded (\S+) \((\d+) frames, 128x96\), (\S+) \((\d+) frames, 160x128\)", err)
    assert m, err
    assert (m.group(1), int(m.group(2))) == (str(rec), len(before))
    assert (m.group(3), int(m.group(4))) == (str(tmp_path / "rec.001.mp4"), len(after))
    assert not list(tmp_path.glob(".*partial*"))


def test_replayed_file_that_disappears_keeps_the_recording_and_prints_the_summary(capsys, tmp_path, tiny_weights):
    """`stream clip.mp4 --realtime --loop --record`: the clip is deleted while it plays, so the next loop
    cannot reopen it. The stream ends with the summary and one error line (exit 1), and the recording holds
    every frame that went out, finished and decodable."""
    clip = make_clip(tmp_path / "clip.mp4", frames=6, width=32, height=24, fps=20)
    out = tmp_path / "live.mp4"
    done = threading.Event()

    def delete_once_recording() -> None:  # the file is open then; the next loop has to reopen it
        while not done.is_set() and not (tmp_path / ".live.partial.mp4").exists():
            time.sleep(0.02)
        clip.unlink()

    deleter = threading.Thread(target=delete_once_recording, daemon=True)
    deleter.start()
    try:
        code, err = run_main(capsys, "stream", str(clip), "--realtime", "--loop", "--record", str(out), "--weights",
                             str(tiny_weights), "--device", "cpu", "--engine", "torch", "-q")
    finally:
        done.set()
        deleter.join(5)
    assert code == 1, err
    lines = err.splitlines()
    assert lines[-1].startswith("streamsr: error: input ") and str(clip.name) in lines[-1], err
    m = re.search(r"(\d+) frames out of (\d+) in .*recorded (\S+) \((\d+) frames, 128x96\)", lines[-2])
    assert m, err
    assert m.group(3) == str(out) and int(m.group(4)) == int(m.group(1)) >= 1
    assert len(decode_all(out)) == int(m.group(1))


def test_view_records_a_publisher_restarted_at_another_odd_size(tmp_path):
    """`view --record` (a process) while a publisher sends 32x24 frames, stops, and a new one on the same
    endpoint sends 63x47 (odd: 4:2:0 needs even sizes): both sizes are recorded, each in its own file,
    every frame, the odd one padded to 64x48 by repeating its last row and column."""
    port = free_tcp_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    rec = tmp_path / "seen.mp4"
    view = popen_cli("view", endpoint, "--all-frames", "--record", str(rec), "--timeout", "6", "-q")
    try:
        for w, h, n in ((32, 24, 6), (63, 47, 5)):
            with Publisher(endpoint) as pub:
                assert pub.wait_for_subscribers(1, 60), "viewer never subscribed"
                time.sleep(0.2)
                for i in range(n):
                    pub.write(wire_frame(i, w=w, h=h))
                    time.sleep(0.05)
                time.sleep(0.5)
        _, err = view.communicate(timeout=60)
    finally:
        view.kill()
    assert view.returncode == 0, err
    first, second = decode_all(rec), decode_all(segment_path(rec, 1))
    assert [(f.width, f.height) for f in first] == [(32, 24)] * 6
    assert [(f.width, f.height) for f in second] == [(64, 48)] * 5
    img = second[0].to_ndarray(format="rgb24").astype(int)
    want = synthetic_image(0, 63, 47).astype(int)
    assert np.abs(img[:47, :63] - want).mean() < 12  # lossy, but the same picture
    assert np.abs(img[:47, 63] - img[:47, 62]).mean() < 12  # the padding repeats the edge
    assert f"recorded {rec} (6 frames, 32x24), {segment_path(rec, 1)} (5 frames, 64x48, 63x47 padded)" in err


def test_recorder_pads_odd_sizes_and_never_deletes_on_abort(tmp_path):
    rec = Recorder(tmp_path / "r.mp4", rate=10)
    for i in range(3):
        rec.write(Frame(image=synthetic_image(i, 63, 63), seq=i))
    rec.abort()  # what a failing pipeline calls: the recording is finished, not discarded
    frames = decode_all(tmp_path / "r.mp4")
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (64, 64)
    assert [s.frames for s in rec.segments] == [3]


_VIEW_JSON = """
import json, sys
from streamsr.cli import main
sys.argv = ["streamsr", "view", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    print(json.dumps({"code": e.code}))
else:
    print(json.dumps({"code": 0}))
"""


def test_nested_and_overflowing_headers_do_not_stop_a_viewer(tmp_path):
    """A raw publisher sends `view --all-frames` (a process) headers that once froze or killed a viewer — 100 000
    nested brackets (over the header cap), 10 000 (under it: the parser would recurse), stamps and sizes of
    10**400 and 10**30, NaN and Infinity — each followed by a valid frame. Every valid frame arrives, every
    bad message is counted as malformed, and it exits 0."""
    good, bgr = encode_frame(wire_frame(0))
    h = json.loads(good)
    pix = bgr.tobytes()

    def with_(**kw) -> bytes:
        return json.dumps({**h, **kw}).encode()

    bad = [
        [b"[" * 100_000, pix],
        [b"[" * 10_000, pix],
        [b'{"v": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", pix],
        [with_(timeline={"captured": 10**400}), pix],
        [with_(timeline={"captured": 10**30}), pix],
        [with_(seq=10**400), pix],
        [with_(shape=[10**30, 32, 3]), pix],
        [with_(time_base=[1, 10**400]), pix],
        [good.replace(b'"seq":0', b'"seq":NaN'), pix],
        [good.replace(b'"seq":0', b'"seq":Infinity'), pix],
        [good.replace(b'"seq":0', b'"seq":1e999'), pix],
        [b'{"v":1,' + b'"k":1,' * 4000 + b'"z":0}', pix],
    ]
    ctx = zmq.Context()
    raw = ctx.socket(zmq.XPUB)
    raw.setsockopt(zmq.XPUB_VERBOSE, 1)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    view = subprocess.Popen([sys.executable, "-c", _VIEW_JSON, f"tcp://127.0.0.1:{port}", "--all-frames",
                             "--timeout", "4", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert new_subscription(raw, 60), "viewer never subscribed"
        time.sleep(0.3)
        for k, parts in enumerate(bad):
            raw.send_multipart(parts)
            header, frame_bgr = encode_frame(wire_frame(k + 1))
            raw.send_multipart([header, frame_bgr.tobytes()])
            time.sleep(0.02)
        out, err = view.communicate(timeout=60)
    finally:
        view.kill()
        raw.close(0)
        ctx.term()
    assert json.loads(out.strip().splitlines()[-1]) == {"code": 0}, err
    assert "Traceback" not in err
    m = re.search(r"received (\d+) frames \(seq 1\.\.(\d+)\).*?(\d+) malformed", err)
    assert m, err
    assert (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (len(bad), len(bad), len(bad))


def test_a_viewer_whose_receiver_dies_says_so_and_exits_1(capsys, monkeypatch):
    """Nothing a peer sends can end the receiver thread any more; should anything else ever do, the viewer
    must not go on showing nothing (a frozen picture looks live): it names the failure and exits 1."""
    from streamsr.transport.subscriber import Subscriber

    real = Subscriber._watch_connection
    calls = {"n": 0}

    def failing(self):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("boom")
        return real(self)

    monkeypatch.setattr(Subscriber, "_watch_connection", failing)
    with Publisher("tcp://127.0.0.1:*") as pub:
        code, err = run_main(capsys, "view", pub.endpoint, "-q")
    assert code == 1
    assert err.splitlines()[-1] == f"streamsr: error: subscriber {pub.endpoint} stopped receiving (RuntimeError: boom)"


@pytest.fixture(scope="module")
def tiny_enhancer(tiny_weights) -> Enhancer:
    tiler = Tiler()
    engine = engine_for(device="cpu", precision="fp32", window=tiler.window, weights=str(tiny_weights))
    return Enhancer(engine, tiler)


def test_runner_returns_the_result_of_a_failed_source_with_the_recording_kept(tmp_path, tiny_enhancer):
    """streamsr.live.stream, the library runner: a source that fails mid-stream ends the run with `failure`
    set (not an exception), counts that add up and the recording finished; with no output named it would
    have published, and the notices and status reach the callbacks."""
    from streamsr.live import stream

    def frames():
        for i in range(6):
            f = Frame(image=synthetic_image(i, 32, 24), seq=i)
            f.timeline.stamp("captured")
            yield f
            time.sleep(0.05)
        raise InputError("scope cable pulled")

    first = Frame(image=synthetic_image(0, 32, 24), seq=0)
    src = IterableSource(frames(), live=True, info=IterableSource([first]).info)
    notices: list[str] = []
    result = stream(src, record=tmp_path / "r.mp4", enhancer=tiny_enhancer, on_notice=notices.append)
    assert result.failure == "scope cable pulled" and not result.interrupted
    assert result.frames_in == 6 == result.frames_out + result.dropped + result.unfinished
    assert [s.frames for s in result.recording] == [result.frames_out]
    assert len(decode_all(tmp_path / "r.mp4")) == result.frames_out
    assert result.published is None and any("128x96" in n for n in notices)


def test_runner_publishes_on_the_default_endpoint_without_outputs_and_hints_at_low_fps(monkeypatch, tiny_enhancer):
    """No output named: it publishes (on DEFAULT_ENDPOINT, here moved to a free port). An enhancer far
    slower than its 50 fps source: one hint, once, naming the remedies."""
    import streamsr.live as live

    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    monkeypatch.setattr(live, "DEFAULT_ENDPOINT", endpoint)
    monkeypatch.setattr(live, "LOW_FPS_AFTER_S", 0.5)
    slow = Enhancer(SlowEngine(tiny_enhancer.engine, 0.15), tiny_enhancer.tiler)  # far below a 50 fps source
    notices: list[str] = []
    from streamsr.sources import SyntheticSource

    result = live.stream(SyntheticSource(width=32, height=24, rate=50), enhancer=slow, duration=5,
                         on_notice=notices.append)
    assert result.endpoint == endpoint and result.published == result.frames_out >= 1
    assert not result.interrupted and result.failure is None
    hints = [n for n in notices if n.startswith("hint:")]
    assert len(hints) == 1 and "--preset" in hints[0] and "--device cuda" in hints[0], notices


def test_log_warnings_get_a_line_of_their_own_under_the_status_line(capsys):
    from streamsr.cli.common import StatusLine

    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        status = StatusLine()
        status.show("in 10 fps | out 3 fps")
        logging.getLogger("streamsr.sources").warning("stream udp://x stalled; reopening it")
        status.show("in 10 fps | out 3 fps")
        status.notice("hint: something")
        status.end()
    finally:
        root.removeHandler(handler)
    err = capsys.readouterr().err
    assert "\nstream udp://x stalled; reopening it\n" in err
    assert "\nstreamsr: hint: something\n" in err
    assert err.endswith("\n")


def test_a_second_signal_while_finishing_is_ignored_for_a_grace_period(capsys, monkeypatch):
    """The first Ctrl-C/SIGTERM interrupts; one more while the recording is being finished must not cut the
    encoder's flush short (it is ignored, with a line saying so); after the grace period one interrupts again."""
    import streamsr.cli as cli

    cli._first_signal.clear()
    with pytest.raises(KeyboardInterrupt):
        cli._raise_keyboard_interrupt(signal.SIGINT, None)
    cli._raise_keyboard_interrupt(signal.SIGTERM, None)  # ignored
    assert "still finishing the outputs; SIGTERM ignored" in capsys.readouterr().err
    monkeypatch.setattr(cli, "SIGNAL_GRACE_S", 0.0)
    with pytest.raises(KeyboardInterrupt):
        cli._raise_keyboard_interrupt(signal.SIGINT, None)
    cli._first_signal.clear()


class _FakeConnection:
    """A connection ReconnectingSource can open: `n` frames of w x h, then lost."""

    def __init__(self, w: int, h: int, n: int) -> None:
        from fractions import Fraction

        from streamsr.sources import SourceLost

        self.width, self.height, self.n = w, h, n
        self.rate, self.time_base, self.codec = Fraction(25), Fraction(1, 25), "fake"
        self._lost = SourceLost

    def __iter__(self):
        for i in range(self.n):
            yield synthetic_image(i, self.width, self.height), i, time.monotonic_ns()
        raise self._lost(f"fake {self.width}x{self.height} ended")

    def close(self) -> None:
        pass


def test_a_source_reopened_at_another_size_carries_on_at_that_size(caplog):
    """ReconnectingSource used to raise "came back at 40x32, was 32x24"; now it says so and carries on, with
    seq continuing, and counts the change (the recording then starts a segment)."""
    from streamsr.sources import LiveOptions, ReconnectingSource

    sizes = iter([(32, 24), (40, 32)])
    src = ReconnectingSource(lambda: _FakeConnection(*next(sizes, (40, 32)), 3), label="fake scope",
                             options=LiveOptions(backoff_initial=0.01, give_up_after=0))
    with caplog.at_level(logging.WARNING, logger="streamsr.sources"):
        got = []
        for f in src:
            got.append(f)
            if len(got) == 6:
                break
    src.close()
    assert [(f.width, f.height) for f in got] == [(32, 24)] * 3 + [(40, 32)] * 3
    assert [f.seq for f in got] == list(range(6))
    assert src.size_changes == 1 and src.size == (40, 32) and src.reconnects == 1
    assert "fake scope came back at 40x32, was 32x24; continuing at the new size" in caplog.text
