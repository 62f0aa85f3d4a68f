#!/usr/bin/env bash
# Fetch, here, the wheels the lent GPU machines lack (they have torch, onnxruntime, opencv, typer, tqdm,
# safetensors, pytest, but no av or pyzmq, and no network) into .whl/ (git-ignored), for their Python 3.12:
#   bash benchmarks/device_wheels.sh     # then run with carry [".whl"]: benchmarks/device.sh installs them
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "av==${AV_VERSION:-18.1.0}" "pyzmq==${PYZMQ_VERSION:-27.3.0}"
ls -l .whl
