#!/usr/bin/env bash
# What each step of the ResNet50 training recipe adds (image-only and fusion accuracy over 3 seeds, cold
# training seconds on this machine); trains every step once (cached). Writes <out>/image_steps.json/.md and
# the copy `swarmfuse fuse report` reports. Usage: scripts/bench_image_extractor.sh [--out DIR] [--seeds 0,1,2]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
exec "$PYTHON" "$ROOT/scripts/bench/image_extractor/bench.py" "$@"
