#!/usr/bin/env bash
# Fusion accuracy against the privacy of the feature releases (emoji data, the main job's extractors, which it
# trains or loads from the cache): per-release epsilon in {inf, 8, 4, 1} at delta 1e-5, 3 seeds by default.
# Ends with: dp eps_inf=<acc> eps_8=<acc> eps_4=<acc> eps_1=<acc>   (fused test accuracy, mean over the seeds)
# Usage: scripts/bench_dp.sh [--seeds N] [--projection-dim K] [--clip C] [--json FILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exec "${PYTHON:-$root/.venv/bin/python}" "$root/scripts/bench/dp/bench.py" "$@"
