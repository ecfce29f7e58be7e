#!/usr/bin/env bash
# Fusion accuracy of the three extractor regimes on the emoji data, on the same aligned test entities:
# (a) label-free site extractors, (b) the same after split learning, (c) the reference trained with DC1's labels.
# Trains (or loads from the cache) the site extractors and the reference ones. The same evaluation as
# `swarmfuse fuse evaluate --regimes a,b,c` (swarmfuse.client.demo.local_regimes.evaluate_regimes).
# Ends with: split a=<fused> b=<fused> c=<fused> best_single_a=<acc> best_single_b=<acc>
# Usage: scripts/bench_split.sh [--epochs N] [--seeds N] [--site-seed S] [--json FILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exec "${PYTHON:-$root/.venv/bin/python}" "$root/scripts/bench/split/bench.py" "$@"
