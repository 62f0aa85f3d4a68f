"""The machine this runs on: CPU model and the instruction-set features that matter for inference, cores,
GPU, library versions, load average. Read from /proc/cpuinfo and the libraries themselves; builds nothing.
Where a benchmark ran (bench/), what `streamsr info` shows, and whether training autocasts to bf16
(train/precision.py)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path

import numpy as np
import torch

CPU_FEATURES: dict[str, tuple[str, ...]] = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "AVX512-BF16": ("avx512_bf16",),
    "AMX": ("amx_bf16", "amx_tile"),
}
"""The instruction-set features that decide CPU inference speed, with the /proc/cpuinfo flags that show
them: AVX2 / AVX-512 for fp32 convolution kernels (oneDNN, MLAS), AVX512-BF16 / AMX for native bf16 (without
them bf16 is emulated and slower than fp32, benchmarks/RESULTS.md "Engines")."""


def _cpu_flags() -> set[str]:
    """The `flags` of the first processor in /proc/cpuinfo (empty where there is none: macOS, Windows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_features() -> dict[str, bool | None]:
    """CPU_FEATURES name -> present; None for all when /proc/cpuinfo has no flags (not Linux)."""
    flags = _cpu_flags()
    return {name: (any(f in flags for f in wanted) if flags else None) for name, wanted in CPU_FEATURES.items()}


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 arithmetic (AVX512-BF16 or AMX-BF16), from /proc/cpuinfo flags."""
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC 7B13"), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, object]:
    """Date (UTC), host, CPU, cores, torch threads, GPU, library versions and the load average (1 min)."""
    import av
    import cv2

    info: dict[str, object] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "av": av.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "load_avg_1m_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info
