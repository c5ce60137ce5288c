#!/usr/bin/env bash
# Every CUDA path that exists on a lent GPU machine, in one command, one JSON out:
#
#   bash scripts/gpu_check.sh [--dry-run] [--out DIR] [--steps N] [--repeats N]
#
# Writes DIR/gpu_check.json (default $OUT, the device tool's folder that comes back, else
# ./gpu_check_out). Needs python3 with torch (CUDA), onnx, onnxruntime; no ROS, no TensorRT.
# Sized for the device machine's budget (docs/deployment.md): about 2-4 minutes on an H200.
# --dry-run: tiny model, CPU, 3 steps (what the CPU test runs).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT/training:$ROOT/geovr_ros${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" scripts/gpu_check.py "$@"
