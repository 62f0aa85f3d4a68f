"""The standard benchmark (what `streamsr bench` runs), saved for RESULTS.md and the plots.

    python benchmarks/run.py [--quick] [--out benchmarks/results] [--repeats N] [--frames N] [--size WxH]

Writes OUT/bench[-quick].json (every figure, per-frame samples included) and OUT/bench[-quick].md (the
printed table). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streamsr.bench import format_markdown, run_bench, standard_config
from streamsr.eval_report import nan_to_none

HERE = Path(__file__).resolve().parent


def save(result, out: Path, stem: str) -> tuple[Path, Path]:
    """Write stem.json and stem.md under `out`; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / f"{stem}.json", out / f"{stem}.md"
    j.write_text(json.dumps(nan_to_none(result.to_dict()), indent=1, default=str))
    m.write_text(format_markdown(result) + "\n")
    return j, m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--stem", default=None, help="output file stem (default: bench or bench-quick)")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--preset", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--pipeline-frames", type=int, default=None)
    ap.add_argument("--size", default=None, help="LR WxH")
    ap.add_argument("--live-seconds", type=float, default=None, help="live run per repetition (0: skip)")
    args = ap.parse_args(argv)
    w = h = None
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
    cuda = args.device.startswith("cuda") or (args.device == "auto" and _cuda())
    config = standard_config(quick=args.quick, cuda=cuda, device=args.device, engine=args.engine,
                             weights=args.weights,
                             preset=args.preset, repeats=args.repeats, frames=args.frames,
                             pipeline_frames=args.pipeline_frames, live_seconds=args.live_seconds, width=w,
                             height=h)
    result = run_bench(config, progress=lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True))
    j, m = save(result, args.out, args.stem or ("bench-quick" if args.quick else "bench"))
    print(format_markdown(result))
    print(f"wrote {j} and {m}", file=sys.stderr)
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
