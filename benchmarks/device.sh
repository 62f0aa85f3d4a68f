#!/usr/bin/env bash
# The one script to run on a GPU machine (from the repository root):
#   bash benchmarks/device.sh            # results in $OUT (or benchmarks/out/device/ when OUT is unset)
#   bash benchmarks/device.sh --dry-run  # the same steps on the CPU, everything but CUDA, in well under a minute
# 1. machine.txt: what the machine has (GPU, torch, CUDA, torch-tensorrt / tensorrt when importable);
# 2. tests.txt:   the CUDA and TensorRT tests (pytest -m "cuda or tensorrt": engines, device-resident Enhancer,
#                 two frames in flight, no allocation per frame);
# 3. `streamsr bench --quick` on CUDA for each of MATRIX (preset x LR size x engine; tensorrt is added when
#    torch-tensorrt imports), most important first: summary.md (one row per run: streamsr / engine / pipeline
#    fps, capture->emit p50/p99, live p99 and drops), bench.md (every run's full table), bench.jsonl (every
#    run's JSON, one per line);
# 4. engines.md: benchmarks/engines.py --no-cpu, only when time is left (it is the longest and least needed).
# It must end in < 8 minutes (the device time a task gets): each bench run has a timeout (RUN_TIMEOUT), and a
# run or step that would start after BUDGET seconds is skipped and says so. It needs no network: the package
# runs from the checkout (PYTHONPATH), engines are built into a scratch folder; the wheels in .whl/ (av and
# pyzmq, which the lent machines lack: `bash benchmarks/device_wheels.sh` here, then carry `.whl`) are
# installed into /tmp/site. torch-tensorrt cannot travel that way (its TensorRT libraries come from NVIDIA's
# index at install time), so TensorRT is measured only where it is already installed.
# A step that fails is reported and the next one still runs; the exit status is that of the tests (and 1 on a
# dry run whose bench produced no row). At most 8 files land in $OUT (what the device tool brings back).
set -u
cd "$(dirname "$0")/.."
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT="${OUT:-benchmarks/out/device}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/streamsr-device.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export STREAMSR_ENGINE_DIR="${STREAMSR_ENGINE_DIR:-$WORK/engines}"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
BUDGET="${BUDGET:-440}"        # seconds after which no new step starts (the whole script must stay < 480)
RUN_TIMEOUT="${RUN_TIMEOUT:-110}"
if [ "$DRY" = 1 ]; then
  # CPU stand-ins for every CUDA choice: the tiny preset, one small size, torch eager (torch-compile needs tens
  # of seconds of C++ compile on a CPU); frames, repetitions and the live run cut to the least that runs them
  DEVICE=cpu
  MATRIX="${MATRIX:-srgan-x4-tiny:32x32:torch}"
  BENCH_ARGS="--frames 1 --repeats 1 --live-seconds 0.5 --x264-preset ultrafast --batch 4"
else
  DEVICE=cuda
  MATRIX="${MATRIX:-srgan-x4:480x270:torch-compile srgan-x4-lite:480x270:torch-compile srgan-x4:480x270:torch srgan-x4-lite:480x270:torch srgan-x4:160x120:torch-compile srgan-x4-lite:160x120:torch-compile srgan-x4:160x120:torch srgan-x4-lite:160x120:torch}"
  # 64 tiles per call: the CUDA graph replays few launches per frame (135 tiles at 480x270); x264 veryfast so
  # the encoder of the 1080p pipeline output is not what is measured; 2 s of live replay per repetition
  BENCH_ARGS="--batch ${BATCH:-64} --x264-preset veryfast --live-seconds 2"
fi

if [ "$DRY" = 1 ]; then
  echo "dry run: not installing .whl/ (the CPU environment has av and pyzmq)"
elif compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" || echo "installing .whl/ failed: steps needing av/pyzmq skip"
fi

{
  echo "# device.sh $(date -u +%FT%TZ)$([ "$DRY" = 1 ] && echo ' (dry run on the CPU: no CUDA line runs)')"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi: not available"
  "$PY" - <<'PYEOF'
import importlib, torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, available {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print("device:", torch.cuda.get_device_name(), torch.cuda.get_device_capability())
for mod in ("torch_tensorrt", "tensorrt", "triton", "onnxruntime", "av", "zmq", "safetensors", "pytest", "typer"):
    try:
        m = importlib.import_module(mod)
        print(f"{mod} {getattr(m, '__version__', '?')}")
    except Exception as e:  # report and go on: the tests skip what is missing
        print(f"{mod}: not importable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
PYEOF
} 2>&1 | tee "$OUT/machine.txt"

TESTS="tests/test_engines.py tests/test_enhancer_cuda_path.py"
echo "## tests: pytest -m 'cuda or tensorrt' $TESTS" | tee "$OUT/tests.txt"
"$PY" -m pytest -m "cuda or tensorrt" $TESTS -ra -q -p no:cacheprovider 2>&1 | tee -a "$OUT/tests.txt"
status=${PIPESTATUS[0]}
[ "$status" = 5 ] && status=0  # "no tests ran": every test skipped or deselected (a dry run)

if [ "$DRY" = 0 ] && "$PY" -c "import torch_tensorrt" 2>/dev/null; then
  MATRIX="srgan-x4:480x270:tensorrt srgan-x4-lite:480x270:tensorrt $MATRIX"
fi
: >"$OUT/bench.jsonl"
echo "# streamsr bench --quick --device $DEVICE $BENCH_ARGS" >"$OUT/bench.md"
runs=()
if ! "$PY" -c "import av, zmq" 2>/dev/null; then
  echo "## bench skipped: av or pyzmq missing (bash benchmarks/device_wheels.sh here, carry .whl)" | tee -a "$OUT/bench.md"
else
  i=0
  for item in $MATRIX; do
    IFS=: read -r preset size engine <<<"$item"
    i=$((i + 1))
    if [ "$SECONDS" -ge "$BUDGET" ]; then
      echo "## $preset $size $engine: skipped, ${SECONDS}s of the ${BUDGET}s budget used" | tee -a "$OUT/bench.md"
      continue
    fi
    json="$WORK/run$(printf %02d $i)-$preset-$size-$engine.json"
    echo "## $preset $size $engine (started at ${SECONDS}s)" | tee -a "$OUT/bench.md"
    timeout "$RUN_TIMEOUT" "$PY" -m streamsr bench --quick --device "$DEVICE" --engine "$engine" --preset "$preset" \
        --size "$size" $BENCH_ARGS --json "$json" -q >>"$OUT/bench.md" 2>"$WORK/err.txt"
    rc=$?
    if [ "$rc" != 0 ]; then
      echo "run failed (exit $rc$([ "$rc" = 124 ] && echo ": over ${RUN_TIMEOUT}s")): $(tail -n 3 "$WORK/err.txt" | tr '\n' ' ')" \
        | tee -a "$OUT/bench.md"
    fi
    runs+=("$json")
    [ -f "$json" ] && "$PY" -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))" "$json" >>"$OUT/bench.jsonl"
  done
fi
{
  echo "# device.sh bench summary ($DEVICE$([ "$DRY" = 1 ] && echo ', dry run'))"
  echo
  [ "${#runs[@]}" -gt 0 ] && "$PY" -m streamsr.bench.device "${runs[@]}"
} | tee "$OUT/summary.md"

if [ "$DRY" = 1 ]; then
  echo "## benchmarks/engines.py --no-cpu: skipped on a dry run (CUDA only)" | tee "$OUT/engines.md"
  grep -q "^| srgan" "$OUT/summary.md" || status=1
elif [ "$SECONDS" -lt $((BUDGET - 120)) ]; then
  echo "## benchmark: benchmarks/engines.py --no-cpu" | tee "$OUT/engines.md"
  timeout $((BUDGET - SECONDS)) "$PY" benchmarks/engines.py --no-cpu --reps "${REPS:-5}" --cuda-batch "${BATCH:-64}" \
      --engine-dir "$STREAMSR_ENGINE_DIR" 2>"$WORK/engines.log" | tee -a "$OUT/engines.md" \
      || echo "engines.py failed or ran out of time: $(tail -n 3 "$WORK/engines.log" | tr '\n' ' ')" | tee -a "$OUT/engines.md"
else
  echo "## benchmarks/engines.py --no-cpu: skipped, ${SECONDS}s of the ${BUDGET}s budget used" | tee "$OUT/engines.md"
fi
echo "device.sh: done in ${SECONDS}s, tests exit $status"
exit "$status"
