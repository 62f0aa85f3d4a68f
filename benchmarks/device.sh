#!/usr/bin/env bash
# The one script to run on a GPU machine (from the repository root):
#   bash benchmarks/device.sh            # results in $OUT (or benchmarks/out/device/ when OUT is unset)
# 1. what the machine has (GPU, torch, CUDA, torch-tensorrt / tensorrt when importable),
# 2. the CUDA and TensorRT tests:  pytest -m "cuda or tensorrt" tests/test_engines.py
# 3. the GPU engine benchmark:     benchmarks/engines.py --no-cpu (eager fp32, fp16, torch.compile + CUDA
#    graph, TensorRT fp16/fp32 when torch-tensorrt imports), tiles/s and frames/s at 480x270 LR,
# 4. `streamsr bench` on CUDA:     benchmarks/run.py --device cuda (480x270 LR -> 1080p: per-stage and
#    end-to-end latency, pipeline/engine, streamsr vs per-tile loop, efficiency), when av and pyzmq import.
# It needs no network: the package runs from the checkout (PYTHONPATH), engines are built into a scratch
# folder. Wheels in .whl/ (made here by `bash benchmarks/device_wheels.sh`: av and pyzmq, which the lent
# machines lack; carry `.whl`) are installed into /tmp/site first. torch-tensorrt cannot travel that way
# (its TensorRT libraries are fetched from NVIDIA's index at install time), so step 2 skips TensorRT there.
# A step that fails is reported and the next one still runs; the exit status is that of the tests.
# At most 8 files land in $OUT (what the device tool brings back).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/out/device}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export STREAMSR_ENGINE_DIR="${STREAMSR_ENGINE_DIR:-/tmp/streamsr-engines}"
PY="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" || echo "installing .whl/ failed: steps needing av/pyzmq skip"
fi

{
  echo "# device.sh $(date -u +%FT%TZ)"
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

echo "## tests: pytest -m 'cuda or tensorrt' tests/test_engines.py" | tee "$OUT/tests.txt"
"$PY" -m pytest -m "cuda or tensorrt" tests/test_engines.py -ra -q -p no:cacheprovider 2>&1 | tee -a "$OUT/tests.txt"
status=${PIPESTATUS[0]}

echo "## benchmark: benchmarks/engines.py --no-cpu" | tee "$OUT/engines.md"
"$PY" benchmarks/engines.py --no-cpu --reps "${REPS:-7}" --cuda-batch "${CUDA_BATCH:-64}" \
    --engine-dir "$STREAMSR_ENGINE_DIR" --json "$OUT/engines.json" ${WEIGHTS:+--weights "$WEIGHTS"} \
    2>"$OUT/engines.log" | tee -a "$OUT/engines.md" || echo "engines.py failed: see $OUT/engines.log"

if "$PY" -c "import av, zmq" 2>/dev/null; then
  echo "## benchmark: benchmarks/run.py --device cuda" | tee "$OUT/bench.log"
  "$PY" benchmarks/run.py --device cuda --out "$OUT" ${WEIGHTS:+--weights "$WEIGHTS"} 2>>"$OUT/bench.log" \
    >/dev/null || echo "run.py failed: see $OUT/bench.log"
else
  echo "## benchmark: benchmarks/run.py skipped: av or pyzmq missing (bash benchmarks/device_wheels.sh, carry .whl)"
fi

exit "$status"
