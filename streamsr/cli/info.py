"""`streamsr info [--json]`: what this machine offers — devices, CPU features, every registered engine with
whether it can run here (and why not), the one "auto" picks, model presets, and every shipped weights name
(`--weights NAME`) with its preset, training stage and intended use, the default marked."""

from __future__ import annotations

import json
import os
import platform

import torch
import typer

from ..backends import auto_choice, engine_statuses
from ..machine import cpu_features, cpu_model
from ..model import DEFAULT_WEIGHTS, PRESETS, SHIPPED, SHIPPED_WEIGHTS, count_macs, read_weights_preset
from ..tiling import DEFAULT_WINDOW


def _report() -> dict[str, object]:
    """Everything `info` shows, as JSON-ready values (the text form prints the same facts)."""
    cuda = [
        {"index": i, "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1)}
        for i, p in ((i, torch.cuda.get_device_properties(i)) for i in range(torch.cuda.device_count()))
    ] if torch.cuda.is_available() else []
    auto = auto_choice()
    weights = None
    if SHIPPED_WEIGHTS.is_file():
        weights = {"path": str(SHIPPED_WEIGHTS), "preset": read_weights_preset(SHIPPED_WEIGHTS).name}
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": {"model": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                "features": cpu_features()},
        "cuda": cuda,
        "engines": [{"name": s.name, "device": s.device, "available": s.available, "reason": s.reason}
                    for s in engine_statuses()],
        "auto": {"engine": auto.engine, "device": auto.device, "why": auto.why},
        "window": DEFAULT_WINDOW,
        "presets": [{"name": p.name, "blocks": p.blocks, "channels": p.channels, "arch": p.arch,
                     "gmac_per_window": round(count_macs(p, DEFAULT_WINDOW, DEFAULT_WINDOW) / 1e9, 3),
                     "description": p.description} for p in PRESETS.values()],
        "default_weights": weights,
        "shipped_weights": [{"name": w.name, "preset": w.preset, "stage": w.stage, "use": w.use,
                             "default": w.name == DEFAULT_WEIGHTS, "path": str(w.path), "present": w.path.is_file()}
                            for w in SHIPPED.values()],
    }


def _feature(present: bool | None) -> str:
    return "unknown" if present is None else ("yes" if present else "no")


def info(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Print devices, CPU features, engines (available or why not, and what auto picks), model presets and
    shipped weights."""
    r = _report()
    if json_out:
        print(json.dumps(r, indent=1))
        return
    cpu = r["cpu"]
    print(f"streamsr on {r['platform']}, python {r['python']}, torch {r['torch']}")
    print("devices:")
    print(f"  cpu: {cpu['model']}, {cpu['cores']} cores, torch threads {cpu['torch_threads']}")
    print("  cpu features: " + ", ".join(f"{k} {_feature(v)}" for k, v in cpu["features"].items()))
    for d in r["cuda"]:
        print(f"  cuda:{d['index']}: {d['name']}, {d['memory_gib']:.0f} GiB")
    if not r["cuda"]:
        print("  cuda: not available")
    print("engines:")
    for e in r["engines"]:
        state = f"available ({e['device']})" if e["available"] else f"not available - {e['reason']}"
        print(f"  {e['name']}: {state}")
    auto = r["auto"]
    print(f"auto: {auto['engine']} on {auto['device']} - {auto['why']}")
    window = r["window"]
    print(f"model presets (GMAC per {window}x{window} tile):")
    for p in r["presets"]:
        print(f"  {p['name']}: {p['blocks']} blocks x {p['channels']} ch, {p['arch']}, {p['gmac_per_window']:.2f} GMAC"
              f" — {p['description']}")
    weights = r["default_weights"]
    print(f"default weights: {weights['path']} ({weights['preset']})" if weights else
          f"default weights: missing ({SHIPPED_WEIGHTS})")
    print("shipped weights (--weights NAME, --compare-with NAME):")
    for w in r["shipped_weights"]:
        mark = " (default)" if w["default"] else ""
        missing = "" if w["present"] else f" [file missing: {w['path']}]"
        print(f"  {w['name']}{mark}: preset {w['preset']}, stage {w['stage']} — {w['use']}{missing}")
