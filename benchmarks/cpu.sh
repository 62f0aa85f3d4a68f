#!/usr/bin/env bash
# Every CPU figure of benchmarks/RESULTS.md in one run (from the repository root, ~15 min on 2 cores):
#   bash benchmarks/cpu.sh            # JSON + markdown in benchmarks/results/, PNGs in benchmarks/plots/
# Run it on a quiet machine: each step is timed interleaved with its own baselines, but another job on the
# same cores still moves absolute figures. Steps run one after the other, never in parallel; a step that
# fails is reported and the next one still runs; the exit status says whether all of them ran.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
failed=0
step() {
  echo "## $* ($(date -u +%T) UTC, load $(cut -d' ' -f1 /proc/loadavg))" >&2
  "$@" || { echo "step failed: $*" >&2; failed=1; }
}
step "$PY" benchmarks/run.py --out "$OUT"
step "$PY" benchmarks/run.py --quick --out "$OUT"
step "$PY" benchmarks/run.py --engine torch --stem bench-torch --out "$OUT"
step "$PY" benchmarks/pipeline_diag.py --size 128x96 --frames 10 --rounds 4 --out "$OUT"
step "$PY" benchmarks/sweep.py --out "$OUT"
step sh -c "\"$PY\" benchmarks/engines.py --no-cuda --reps 9 --json \"$OUT/engines-cpu.json\" > \"$OUT/engines-cpu.md\""
step "$PY" benchmarks/layers.py --out "$OUT"
step sh -c "\"$PY\" benchmarks/halo.py > \"$OUT/halo.md\""
step "$PY" benchmarks/plots.py --results "$OUT"
exit "$failed"
