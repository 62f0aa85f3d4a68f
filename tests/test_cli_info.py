"""`streamsr info` (streamsr/cli/info.py), in this process: every engine named with why it is or is not
available, the JSON form agreeing with /proc/cpuinfo, every shipped weights name with its preset, stage and
use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from helpers import run_main_io


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the reasons given on a machine without CUDA")
def test_info_names_every_engine_with_its_reason_on_a_cpu_machine(capsys):
    code, out, err = run_main_io(capsys, "info")
    assert code == 0, err
    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
             for line in out.splitlines() if line.startswith("  ") and ":" in line}
    trt = lines["tensorrt"]
    assert trt.startswith("not available - ")
    assert "torch-tensorrt is not installed" in trt or "no CUDA device" in trt
    assert lines["torch"] == "available (cpu)"
    for name in ("torch-compile", "onnxruntime"):
        assert lines[name].startswith(("available", "not available - "))
    auto = next(line for line in out.splitlines() if line.startswith("auto: "))
    expected = "onnxruntime" if lines["onnxruntime"].startswith("available") else "torch"
    assert auto.startswith(f"auto: {expected} on cpu - ")
    assert re.search(r"cpu features: AVX2 (yes|no|unknown), AVX-512 (yes|no|unknown), AVX512-BF16 (yes|no|unknown), "
                     r"AMX (yes|no|unknown)", out)


def test_info_json_parses_and_agrees_with_cpuinfo(capsys):
    code, out, err = run_main_io(capsys, "info", "--json")
    assert code == 0, err
    data = json.loads(out)
    engines = {e["name"]: e for e in data["engines"]}
    assert set(engines) == {"tensorrt", "torch-compile", "onnxruntime", "torch"}
    assert engines["torch"]["available"] and engines["torch"]["reason"] is None
    assert all(e["available"] == (e["reason"] is None) for e in engines.values())
    assert engines[data["auto"]["engine"]]["available"]
    if not torch.cuda.is_available():
        assert not engines["tensorrt"]["available"] and engines["tensorrt"]["reason"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split()
        assert data["cpu"]["features"]["AVX2"] == ("avx2" in flags)
        assert data["cpu"]["features"]["AVX512-BF16"] == ("avx512_bf16" in flags)


def test_info_lists_every_shipped_weights_name_with_its_preset_stage_and_use(capsys):
    from streamsr.model import DEFAULT_WEIGHTS, SHIPPED

    code, out, err = run_main_io(capsys, "info", "--json")
    assert code == 0, err
    listed = {w["name"]: w for w in json.loads(out)["shipped_weights"]}
    code, text, err = run_main_io(capsys, "info")
    assert code == 0, err
    assert list(listed) == list(SHIPPED)
    assert [n for n, w in listed.items() if w["default"]] == [DEFAULT_WEIGHTS]
    lines = text.splitlines()
    start = lines.index("shipped weights (--weights NAME, --compare-with NAME):")
    for name, w in SHIPPED.items():
        assert (listed[name]["preset"], listed[name]["stage"], listed[name]["use"]) == (w.preset, w.stage, w.use)
        assert listed[name]["present"] and listed[name]["path"] == str(w.path)
        mark = " (default)" if name == DEFAULT_WEIGHTS else ""
        assert f"  {name}{mark}: preset {w.preset}, stage {w.stage} — {w.use}" in lines[start + 1 :]
