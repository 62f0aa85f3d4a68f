"""`streamsr view` as a separate process against real ZeroMQ sockets on 127.0.0.1: it never imports torch,
reports receiving time and idle wait apart, and survives oversized and malformed messages with bounded
memory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from helpers import malformed_messages, new_subscription, run_main, wire_frame
from streamsr.transport import Publisher, encode_frame, write_keys

_VIEW = """
import json, sys
from streamsr.cli import main
sys.argv = ["streamsr", "view", *sys.argv[1:]]
code = None
try:
    main()
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


def _start_view(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", _VIEW, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _finish(p: subprocess.Popen) -> tuple[dict, str]:
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "Traceback" not in err, err
    return json.loads(out.strip().splitlines()[-1]), err


def _vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_view_imports_no_torch_and_reports_receiving_time_apart_from_the_idle_wait():
    """Five frames 0.25 s apart, then silence: the viewer must say ~1 s of receiving (first to last frame)
    and ~1.5 s idle (its --timeout), not 2.5 s "in" which it received them; and it never imported torch."""
    with Publisher("tcp://127.0.0.1:*") as pub:
        view = _start_view(pub.endpoint, "--timeout", "1.5", "-q")
        assert pub.wait_for_subscribers(1, timeout=60), view.stderr.read() if view.poll() is not None else ""
        time.sleep(0.3)  # also part of the wait for the first frame
        for seq in range(5):
            pub.write(wire_frame(seq))
            time.sleep(0.25)
        got, err = _finish(view)
    assert got == {"code": None, "torch": False}
    m = re.search(r"received 5 frames \(seq 0\.\.4\) over ([\d.]+) s from first to last frame, ([\d.]+) fps; "
                  r"waited ([\d.]+) s for the first and ([\d.]+) s idle after the last", err)
    assert m, err
    receiving, fps, waited, idle = map(float, m.groups())
    assert 0.9 <= receiving <= 1.4 and 2.8 <= fps <= 4.5
    assert waited >= 0.2 and 1.4 <= idle <= 2.0


def test_fuzz_oversized_and_malformed_messages_against_view_memory_stays_bounded():
    """A raw publisher sends `view --max-size 64x64 --all-frames` valid frames, 300 malformed messages and
    three 48 MiB messages. The viewer's peak memory (VmHWM) must not grow by the size of even one of
    them (libzmq cuts the sender off when the size is announced); it reconnects, keeps counting malformed
    messages, receives every valid frame sent while connected, and exits cleanly."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the viewer's memory")
    rng = np.random.default_rng(1)
    bad = malformed_messages(rng)
    big = bytes(48 * 2**20)
    ctx = zmq.Context()
    raw = ctx.socket(zmq.XPUB)
    raw.setsockopt(zmq.XPUB_VERBOSE, 1)
    raw.setsockopt(zmq.SNDHWM, 10_000)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    view = _start_view(f"tcp://127.0.0.1:{port}", "--max-size", "64x64", "--all-frames", "--timeout", "3", "-q")
    try:
        assert new_subscription(raw, 60), "viewer never subscribed"
        time.sleep(0.3)
        peak_before = _vm_kib(view.pid, "VmHWM")
        sent_good = 0
        for k, parts in enumerate(bad):
            raw.send_multipart(parts)
            if k % 10 == 9:
                header, bgr = encode_frame(wire_frame(k, w=64, h=48))
                raw.send_multipart([header, bgr.tobytes()])
                sent_good += 1
            if k % 100 == 50:
                header, _ = encode_frame(wire_frame(k, w=64, h=48))
                raw.send_multipart([header, big], copy=False)
                assert new_subscription(raw, 10), "the oversized message did not cut the viewer's connection"
        time.sleep(1.0)
        peak_after = _vm_kib(view.pid, "VmHWM")
    finally:
        raw.close(0)
        ctx.term()
    got, err = _finish(view)
    assert got == {"code": None, "torch": False}
    growth_mib = (peak_after - peak_before) / 1024
    print(f"viewer peak memory growth {growth_mib:.1f} MiB")
    assert growth_mib < 16, f"viewer peak memory grew by {growth_mib:.0f} MiB"
    m = re.search(r"received (\d+) frames.*; 0 skipped for newer, \d+ missed upstream, 0 out of order, "
                  r"(\d+) malformed, connection to the publisher lost (\d+) time\(s\)", err)
    assert m, err
    received, malformed, dropped = map(int, m.groups())
    # messages sent between the cut-off and the resubscription are lost to PUB/SUB; the rest arrive
    assert received == sent_good and malformed == len(bad) and dropped == 4  # 3 cut-offs, then the raw socket closed


def test_view_warns_about_clear_text_from_another_host(capsys):
    code, err = run_main(capsys, "view", "tcp://192.0.2.7:5555", "--timeout", "0.3", "-q")  # TEST-NET-1
    assert code == 1
    warning = "streamsr: WARNING: receiving from tcp://192.0.2.7:5555 without --curve: the video crosses the network unencrypted"
    lines = err.splitlines()
    assert lines[0] == warning and lines[-2] == warning  # at the start and after the summary
    assert lines[-1] == "streamsr: error: no frames from tcp://192.0.2.7:5555 within 0.3 s"
    code, err = run_main(capsys, "view", "tcp://127.0.0.1:1", "--timeout", "0.3", "-q")
    assert code == 1 and "WARNING" not in err


def test_view_refuses_a_secret_key_open_to_others(capsys, tmp_path):
    keys = write_keys(tmp_path)
    keys.client_secrets[0].chmod(0o644)
    code, err = run_main(capsys, "view", "tcp://127.0.0.1:1", "--curve", str(tmp_path), "--timeout", "0.3")
    assert code == 1
    assert err.splitlines() == [f"streamsr: error: subscriber key {keys.client_secrets[0]} is accessible by others "
                                f"(permissions 0644 are too open); a secret key must be private: chmod 600 "
                                f"{keys.client_secrets[0]}"]


def test_view_with_wrong_keys_says_the_handshake_failed(capsys, tmp_path):
    write_keys(tmp_path / "a")
    write_keys(tmp_path / "b")
    from streamsr.transport import CurveServer

    with Publisher("tcp://127.0.0.1:*", curve=CurveServer.from_dir(tmp_path / "a")) as pub:
        code, err = run_main(capsys, "view", pub.endpoint, "--curve", str(tmp_path / "b"), "--timeout", "1", "-q")
        pub.write(wire_frame(0))
    assert code == 1
    assert re.search(r"no frames from .* within 1 s \(\d+ CURVE handshake\(s\) failed: check the --curve keys", err), err
    assert pub.refused >= 1
