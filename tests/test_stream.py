"""`streamsr stream` / `view` / `keys` end to end, and the live pipeline, with real sockets on 127.0.0.1, real
PyAV inputs and the tiny generator preset."""

from __future__ import annotations

import re
import signal
import threading
import time

import av
import numpy as np
import pytest

from helpers import (
    SlowEngine, UdpSender, decode_all, engine_for, free_tcp_port, free_udp_port, popen_cli, run_main,
)
from streamsr.enhancer import Enhancer
from streamsr.errors import OutputError
from streamsr.frame import Frame
from streamsr.pipeline import PipelineConfig, PipelineStats, run_pipeline
from streamsr.sinks import Display
from streamsr.sources import SyntheticSource
from streamsr.testing import CollectingSink as Collect
from streamsr.testing import IterableSource, make_clip
from streamsr.tiling import Tiler
from streamsr.transport import Subscriber, write_keys


SUMMARY = re.compile(r"(\d+) frames out of (\d+) in ([\d.]+) s \(([\d.]+) fps\), (\d+) dropped \(newest-frame policy\)"
                     r"(?:, (\d+) in flight when it stopped)?")


@pytest.fixture
def run_stats(monkeypatch) -> list[PipelineStats]:
    """The PipelineStats of each run_pipeline call `streamsr stream` (its runner) makes in this test (in process)."""
    import streamsr.live as live_runner

    runs: list[PipelineStats] = []
    real = live_runner.run_pipeline

    def recording(*args, stats: PipelineStats, **kwargs) -> PipelineStats:
        runs.append(stats)
        return real(*args, stats=stats, **kwargs)

    monkeypatch.setattr(live_runner, "run_pipeline", recording)
    return runs


def assert_summary_is(text: str, stats: PipelineStats) -> None:
    """The summary line `stream` printed states this run's counts, and an fps that is out / seconds."""
    m = SUMMARY.search(text)
    assert m, text
    out, n_in, seconds, fps, dropped, unfinished = m.groups()
    assert (int(out), int(n_in), int(dropped), int(unfinished or 0)) == (
        stats.frames_out, stats.frames_in, stats.dropped, stats.unfinished), text
    s = float(seconds)  # printed to 0.1 s
    assert int(out) / (s + 0.05) - 0.05 <= float(fps) <= int(out) / max(s - 0.05, 1e-3) + 0.05, text


@pytest.fixture(scope="module")
def tiny_enhancer(tiny_weights) -> Enhancer:
    tiler = Tiler()
    engine = engine_for(device="cpu", precision="fp32", window=tiler.window, weights=str(tiny_weights))
    return Enhancer(engine, tiler)


def test_stream_paced_replay_to_view_with_curve_every_published_frame_in_order(tmp_path, tiny_weights, capsys):
    """The acceptance run: `keys`, then `view --record` (a separate process) subscribed first, then
    `stream --realtime --publish` (here) of a generated clip, both with CURVE. Every frame the stream published
    reaches the viewer in order at 4x size, and the viewer's recording holds them all."""
    keys = tmp_path / "keys"
    assert run_main(capsys, "keys", str(keys))[0] == 0
    clip = make_clip(tmp_path / "clip.mp4", frames=10, width=32, height=24, fps=10)
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    rec = tmp_path / "view.mp4"
    viewer = popen_cli("view", endpoint, "--all-frames", "--timeout", "2", "--record", str(rec), "--curve", str(keys), "-q")
    try:
        code, stream_err = run_main(capsys, "stream", str(clip), "--realtime", "--publish", endpoint, "--curve",
                                    str(keys), "--wait-subscriber", "60", "--weights", str(tiny_weights), "-q")
        _, view_err = viewer.communicate(timeout=60)
    finally:
        viewer.kill()
    assert code == 0, stream_err
    assert viewer.returncode == 0, view_err
    published = int(re.search(r"published (\d+)", stream_err).group(1))
    assert published >= 1
    m = re.search(r"received (\d+) frames \(seq (\d+)\.\.(\d+)\).*?(\d+) out of order, (\d+) malformed", view_err)
    assert m, view_err
    received, first, last, out_of_order, malformed = map(int, m.groups())
    assert received == published and out_of_order == 0 and malformed == 0
    assert 0 <= first <= last <= 9
    frames = decode_all(rec)
    assert len(frames) == published
    assert all((f.width, f.height) == (128, 96) for f in frames)
    assert re.search(r"latency capture->received p50 \d+", view_err)


def test_stream_enhances_a_udp_mpegts_source_live(tmp_path, tiny_weights, run_stats, capsys):
    port = free_udp_port()
    sender = UdpSender(port, [(25 * 30, 90)])
    sender.start()
    out = tmp_path / "udp.mp4"
    try:
        code, err = run_main(capsys, "stream", f"udp://127.0.0.1:{port}", "--record", str(out), "--frames", "6",
                             "--weights", str(tiny_weights), "--device", "cpu", "-q")
    finally:
        sender.stop.set()
        sender.join(5)
    assert code == 0, err
    frames = decode_all(out)
    assert len(frames) >= 6 and all((f.width, f.height) == (128, 96) for f in frames)
    [stats] = run_stats
    assert len(frames) == stats.frames_out  # the recorder writes every emitted frame
    assert_summary_is(err, stats)


def test_sigterm_and_ctrl_c_stop_stream_and_view_with_playable_recordings(tmp_path, tiny_weights):
    """A running `stream` gets SIGTERM and a running `view` gets SIGINT (Ctrl-C): both print their summary,
    exit 130 (the one exit status of a stop by signal) and leave a finished, decodable recording (no .partial
    file)."""
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    out, rec = tmp_path / "live.mp4", tmp_path / "seen.mp4"
    viewer = popen_cli("view", endpoint, "--record", str(rec), "-q")
    streamer = popen_cli("stream", "synthetic:32x24@10", "--publish", endpoint, "--record", str(out),
                         "--wait-subscriber", "60", "--weights", str(tiny_weights), "-q")
    procs = (streamer, viewer)
    try:
        partials = [tmp_path / ".live.partial.mp4", tmp_path / ".seen.partial.mp4"]
        deadline = time.monotonic() + 90
        while not all(p.exists() for p in partials) and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs]
            time.sleep(0.1)
        time.sleep(0.5)  # a few frames more
        streamer.send_signal(signal.SIGTERM)
        _, stream_err = streamer.communicate(timeout=30)
        viewer.send_signal(signal.SIGINT)
        _, view_err = viewer.communicate(timeout=30)
    finally:
        for p in procs:
            p.kill()
    assert streamer.returncode == 130, stream_err
    assert viewer.returncode == 130, view_err
    assert "stopped;" in stream_err and "stopped; received" in view_err
    assert "Traceback" not in stream_err + view_err
    for path, partial in zip((out, rec), partials):
        assert path.exists() and not partial.exists()
        frames = decode_all(path)
        assert len(frames) >= 1 and (frames[0].width, frames[0].height) == (128, 96)


def test_view_timeout_without_frames_is_a_one_line_error(capsys):
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    code, err = run_main(capsys, "view", endpoint, "--timeout", "0.3", "-q")
    assert (code, err.splitlines()[-1]) == (1, f"streamsr: error: no frames from {endpoint} within 0.3 s")
    assert "Traceback" not in err


def test_keys_refuses_to_overwrite(tmp_path, capsys):
    assert run_main(capsys, "keys", str(tmp_path), "--client", "a", "--client", "b")[0] == 0
    for name in ("server.key", "server.key_secret", "a.key_secret", "b.key_secret", "authorized/a.key", "authorized/b.key"):
        assert (tmp_path / name).is_file(), name
    assert oct((tmp_path / "a.key_secret").stat().st_mode & 0o777) == "0o600"
    code, err = run_main(capsys, "keys", str(tmp_path), "--client", "a")
    assert code == 1 and err.startswith("streamsr: error: ") and "already exists" in err and err.count("\n") == 1


def test_display_without_a_gui_is_a_one_line_error():
    import cv2

    try:
        cv2.namedWindow("probe")
        cv2.destroyWindow("probe")
        pytest.skip("this OpenCV has a GUI and a display")
    except cv2.error:
        pass
    with pytest.raises(OutputError, match="GUI support") as e:
        Display()
    assert "\n" not in str(e.value)


def test_live_pipeline_keeps_the_newest_frame_and_counts_drops(tiny_enhancer):
    """A 200 fps source into a slower enhancer: the pipeline drops stale frames (counted) instead of
    queueing them, so the capture->emitted latency stays near one enhance time; `stop` ends the run
    cleanly (sinks closed) even though the source never ends."""
    tiny_enhancer = Enhancer(SlowEngine(tiny_enhancer.engine, 0.02), tiny_enhancer.tiler)  # slower than 200 fps
    src = SyntheticSource(width=32, height=24, rate=200)
    sink = Collect()
    stop = threading.Event()

    def on_frame(_f: Frame) -> None:
        if len(sink.frames) >= 8:
            stop.set()

    t = time.monotonic()
    stats = run_pipeline(src, tiny_enhancer, [sink], config=PipelineConfig(live=True, queue_size=1, keep_timelines=4),
                         on_frame=on_frame, stop=stop)
    elapsed = time.monotonic() - t
    assert sink.closed and not sink.aborted
    assert stats.frames_out == len(sink.frames) >= 8
    assert stats.dropped > 0 and stats.frames_in == stats.frames_out + stats.dropped + stats.unfinished
    assert len(stats.timelines) <= 4
    seqs = [f.seq for f in sink.frames]
    assert seqs == sorted(seqs) and seqs[-1] - seqs[0] > len(seqs)  # gaps: stale frames were skipped
    assert all(f.image.shape == (96, 128, 3) for f in sink.frames)
    # without dropping, frame k would wait behind k others; with it, latency stays bounded
    enhance_s = elapsed / len(sink.frames)
    lat = [f.timeline.span_ms("captured", "emitted") / 1e3 for f in sink.frames]
    assert max(lat[len(lat) // 2 :]) < 4 * enhance_s + 0.5


def test_recorder_times_frames_by_capture_and_survives_clock_jumps(tmp_path):
    """Recorder: opened at the first frame, pts from capture stamps (a 0.5 s stall stays 0.5 s in the file),
    a source restart whose stamps go backwards still gives strictly increasing pts; nothing is written
    and no file appears when no frame came."""
    from streamsr.sinks import Recorder
    from streamsr.sources import synthetic_image

    empty = Recorder(tmp_path / "empty.mp4")
    empty.close()
    assert not (tmp_path / "empty.mp4").exists() and empty.frames_written == 0

    rec = Recorder(tmp_path / "r.mp4", rate=10)
    t0 = 10**12
    stamps = [t0 + k * 100_000_000 for k in range(5)] + [t0 + 900_000_000, t0 + 100_000_000, t0 + 200_000_000]
    for i, t in enumerate(stamps):
        f = Frame(image=synthetic_image(i, 32, 24), seq=i)
        f.timeline.stamp("captured", t)
        rec.write(f)
    rec.close()
    with av.open(str(tmp_path / "r.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == len(stamps)
    times = [float(f.pts * f.time_base) for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[5] - times[4] == pytest.approx(0.5, abs=0.02)


def test_live_pipeline_delivers_the_last_frame_of_a_finite_source(tiny_enhancer):
    """The end marker must not replace a frame still waiting for the enhancer: a burst that ends while the
    enhancer is busy still has its newest (last) frame emitted, and every frame is emitted or dropped."""
    images = [np.full((24, 32, 3), i, np.uint8) for i in range(20)]
    frames = [Frame(image=img, seq=i) for i, img in enumerate(images)]
    sink = Collect()
    stats = run_pipeline(IterableSource(frames, live=True), tiny_enhancer, [sink], config=PipelineConfig(live=True))
    assert sink.frames[-1].seq == 19
    assert stats.frames_out + stats.dropped == stats.frames_in == 20 and stats.unfinished == 0


def test_stream_refuses_clear_text_off_the_host_before_loading_a_model(capsys):
    """The refusal logic alone (nothing is bound): one line naming both fixes, exit 1, and no model loaded."""
    for publish in ("tcp://0.0.0.0:5555", "*:5555", "tcp://192.168.1.20:5555", "tcp://scope-host:5555"):
        code, err = run_main(capsys, "stream", "synthetic:32x24@10", "--publish", publish,
                             "--weights", "/nonexistent.safetensors")  # would fail later, were it loaded
        assert code == 1
        assert err == (f"streamsr: error: --publish {publish} is not a loopback address and the video would leave "
                       "this host unencrypted: add --curve DIR (keys from `streamsr keys DIR`), or --insecure to "
                       "accept that\n")


def test_stream_insecure_warns_at_start_and_in_the_summary(capsys, monkeypatch, tiny_weights, run_stats):
    """`--insecure` on a non-loopback address: a WARNING first and after the summary. To bind no public
    interface, 127.0.0.1 is made to count as non-loopback for this run."""
    import streamsr.cli.stream
    import streamsr.transport.publisher

    for module in (streamsr.cli.stream, streamsr.transport.publisher):
        monkeypatch.setattr(module, "is_loopback", lambda endpoint: False)
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    args = ("stream", "synthetic:32x24@10", "--publish", endpoint, "--frames", "2", "--engine", "torch",
            "--device", "cpu", "--weights", str(tiny_weights), "-q")
    code, err = run_main(capsys, *args)
    assert code == 1 and "--insecure to accept that" in err
    code, err = run_main(capsys, *args, "--insecure")
    assert code == 0, err
    warning = (f"streamsr: WARNING: publishing on {endpoint} without encryption (--insecure): anyone on the "
               "network can watch")
    lines = err.splitlines()
    assert lines[0] == warning and lines[-1] == warning
    [stats] = run_stats  # the refused first run never reached the pipeline
    assert stats.frames_out >= 2
    assert_summary_is(lines[-2], stats)


def test_stream_counts_refused_unauthenticated_subscribers(capsys, tmp_path, tiny_weights):
    write_keys(tmp_path / "keys")
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    with Subscriber(endpoint, conflate=False) as plain:  # no CURVE: keeps knocking, is refused each time
        code, err = run_main(capsys, "stream", "synthetic:32x24@10", "--publish", endpoint, "--curve",
                             str(tmp_path / "keys"), "--duration", "1.5", "--engine", "torch", "--device", "cpu",
                             "--weights", str(tiny_weights), "-q")
        assert plain.recv(timeout=0) is None
    assert code == 0, err
    m = re.search(r"published \d+ \([^)]*\), refused (\d+) unauthenticated connection attempt\(s\)", err)
    assert m and int(m.group(1)) >= 1, err
