#!/usr/bin/env bash
# Throughput of the ResNet50 and AWD-LSTM extractors: PyTorch eager vs ONNX Runtime FP32/INT8, batch 1 and 32.
# Ends with: resnet50_ort_vs_torch=<ratio> awd_lstm_ort_vs_torch=<ratio>   (extra arguments go to the module)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
# torch's OpenMP threads wait passively, like ONNX Runtime's (no spinning): the same footing for both.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec "$PYTHON" "$ROOT/scripts/bench/extractors/bench.py" "$@"
