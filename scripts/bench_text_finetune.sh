#!/usr/bin/env bash
# What label smoothing in the AWD-LSTM classifier's fine-tuning does to fusion: text-only and intermediate fusion
# accuracy for 3 text trainings with and without it (each trained once, cached), with the default image extractor.
# Usage: scripts/bench_text_finetune.sh [--out DIR] [--text-seeds 0,1,2] [--head-seeds 0,1,2]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
exec "$PYTHON" "$ROOT/scripts/bench/text_finetune/bench.py" "$@"
