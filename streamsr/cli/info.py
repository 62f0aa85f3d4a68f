"""`streamsr info`: what this machine offers — devices, engines, model presets, shipped weights."""

from __future__ import annotations

import os
import platform

import torch

from ..backends import available_engines
from ..model import PRESETS, SHIPPED_WEIGHTS, count_macs, read_weights_preset
from ..tiling import DEFAULT_HALO, DEFAULT_TILE


def info() -> None:
    """Print devices, engines and model presets streamsr sees."""
    print(f"streamsr on {platform.platform()}, python {platform.python_version()}, torch {torch.__version__}")
    print("devices:")
    print(f"  cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            print(f"  cuda:{i}: {p.name}, {p.total_memory / 2**30:.0f} GiB")
    else:
        print("  cuda: not available")
    print(f"engines: {', '.join(available_engines())}")
    window = DEFAULT_TILE + 2 * DEFAULT_HALO
    print(f"model presets (GMAC per {window}x{window} tile):")
    for p in PRESETS.values():
        print(f"  {p.name}: {p.blocks} blocks x {p.channels} ch, {count_macs(p, window, window) / 1e9:.2f} GMAC — {p.description}")
    if SHIPPED_WEIGHTS.is_file():
        print(f"default weights: {SHIPPED_WEIGHTS} ({read_weights_preset(SHIPPED_WEIGHTS).name})")
    else:
        print(f"default weights: missing ({SHIPPED_WEIGHTS})")
