"""The summary table of benchmarks/device.sh: one row per `streamsr bench --json` run of its matrix
(preset x LR size x engine), so the figures of a GPU session land in one small file for RESULTS.md.

    python -m streamsr.bench.device RUN.json [RUN.json ...] > summary.md

Each row: preset, LR and output size, engine (as the run described it), streamsr fps (upload -> download,
one frame at a time), engine-only fps, the pipeline's fps and capture->emit p50/p99 (file policy, two frames
in flight on CUDA), the live run's capture->emit p99 and drops, and the run's wall time. A run that failed
is listed with its error so a missing row is never silent.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

COLUMNS = ("preset", "LR", "out", "engine", "streamsr fps", "engine fps", "pipeline fps", "pipeline e2e p50/p99 ms",
           "live e2e p99 ms", "live dropped", "wall s")


def _num(x: object, fmt: str = ".1f") -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool) or math.isnan(x):
        return "-"
    return format(x, fmt)


def row(result: dict) -> list[str]:
    """The table row of one `BenchResult.to_dict()`."""
    config, variants = result["config"], result["variants"]
    w, h = result["lr_size"]
    preset = config.get("preset") or "-"  # device.sh always names it
    pipe, live = result.get("pipeline") or {}, result.get("live") or {}
    e2e = pipe.get("e2e") or {}
    return [
        preset, f"{w}x{h}", f"{4 * w}x{4 * h}", result["engine"].split(";")[0],
        _num(variants.get("streamsr", {}).get("fps")), _num(variants.get("engine", {}).get("fps")),
        _num(pipe.get("fps")), f"{_num(e2e.get('p50'))} / {_num(e2e.get('p99'))}",
        _num((live.get("e2e") or {}).get("p99")), _num(live.get("dropped"), "d"), _num(result.get("wall_s"), ".0f"),
    ]


def table(paths: list[Path]) -> str:
    """Markdown table of the runs in `paths` (JSON files); unreadable ones get a row saying so."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for path in paths:
        try:
            cells = row(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            cells = [path.stem, f"no result ({type(e).__name__}: {e})"] + [""] * (len(COLUMNS) - 2)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    print(table(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
