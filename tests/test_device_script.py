"""benchmarks/device.sh --dry-run: every step of the GPU device check on the CPU (the CUDA tests collected and
skipped, one `streamsr bench` run of the matrix with the tiny preset, the summary), so the script that will
first run on a GPU machine has run somewhere before, here in CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_device_script_dry_run(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, TMPDIR=str(tmp_path),
               STREAMSR_ENGINE_DIR=str(tmp_path / "engines"))
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device.sh"), "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["bench.jsonl", "bench.md", "engines.md", "machine.txt", "summary.md", "tests.txt"]
    assert "dry run on the CPU: no CUDA line runs" in (out / "machine.txt").read_text()
    assert "skipped" in (out / "tests.txt").read_text() and "failed" not in (out / "tests.txt").read_text()
    rows = [line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| srgan")]
    assert len(rows) == 1 and "| srgan-x4-tiny | 32x32 | 128x128 | torch eager on cpu" in rows[0]
    (run,) = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    assert run["config"]["device"] == "cpu" and run["variants"]["streamsr"]["fps"] > 0
    assert run["pipeline"]["frames"] > 0 and run["live"]["frames_out"] > 0
    assert not list(tmp_path.glob("streamsr-device.*"))  # its scratch folder is removed
