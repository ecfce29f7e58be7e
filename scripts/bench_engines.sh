#!/usr/bin/env bash
# The two ledger engines side by side: the embedded engine always, Fabric when a release is available
# (SWARMFUSE_FABRIC_HOME or the cache). Same client (our Gateway client), chaincode (Sample:Put submits,
# Sample:Get evaluates), load (N transactions from C concurrent workers) and topology (3 orgs) on each:
# `network up` time of a fresh 3-org home (CLI wall time and Network.up() alone, median of R runs), task
# create time, submit throughput (endorse + submit + commit status), commit latency p50/p99 (submit →
# status), evaluate p50/p99 and the network's RSS. One engine runs at a time (the other is down).
# Through the first org alone: endorse and submit latency without and with 200 idle ChaincodeEvents streams
# open on that org. Then the embedded ledger's open time against its height (--open-heights, default 1k, 10k
# and 100k blocks, built on /dev/shm when there is one; the build of 100k blocks takes about a minute).
# Ends with: embedded_vs_fabric_submit_tps=<ratio|n/a> embedded_up_s=<s> fabric_up_s=<s|n/a> ...
#            embedded_open_ms <height>=<ms> ...
# Usage: scripts/bench_engines.sh [--tx N] [--concurrency C] [--rounds R] [--port-base P] [--open-heights H,H,..|none]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The load uses the test-only Sample contract: chaincode servers serve tests/chaincode/sample_app.py.
export CHAINCODE_APP=sample_app PYTHONPATH="$root/tests/chaincode${PYTHONPATH:+:$PYTHONPATH}"
die() { printf '\033[1;31m[bench] error:\033[0m %s\n' "$*" >&2; exit 1; }
say() { printf '\033[1;34m[bench]\033[0m %s\n' "$*" >&2; }

tx=200 concurrency=16 rounds=3 port_base=30000 open_heights=1000,10000,100000
while (($#)); do
  case $1 in
    --tx) tx=${2:?}; shift ;;
    --concurrency) concurrency=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --port-base) port_base=${2:?}; shift ;;
    --open-heights) open_heights=${2:?}; shift ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
[[ $tx =~ ^[1-9][0-9]*$ && $concurrency =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ ]] \
  || die "--tx, --concurrency and --rounds must be positive integers"
[[ $open_heights == none || $open_heights =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] \
  || die "--open-heights must be a comma-separated list of positive block counts, or none"
[[ $port_base =~ ^[0-9]+$ ]] && ((port_base >= 1024 && port_base <= 65465)) || die "--port-base must be in 1024..65465"
[[ -x .venv/bin/python ]] || die "no .venv: run scripts/setup.sh first"

# Every network is started under $work; whatever is still up there when this exits is stopped and purged.
work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfuse-bench-engines.XXXXXX")
child=""  # the running bench.py: asked to stop (it tears its network down) before the sweep below
cleanup() {
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  .venv/bin/python - "$work" <<'PY' || printf '\033[1;31m[bench] warning:\033[0m could not stop every network under %s\n' "$work" >&2
import sys
from pathlib import Path
from swarmfuse.network.control import Network
failed = False
for home in sorted(Path(sys.argv[1]).glob("*/state.json")):
    try:
        Network(home.parent).down(purge=True)
    except Exception as exc:  # keep going: stop the other homes
        print(f"[bench] could not stop {home.parent}: {exc}", file=sys.stderr)
        failed = True
sys.exit(1 if failed else 0)
PY
  rm -rf "$work" "${ledgers:-}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fabric_missing=$(.venv/bin/python -c 'from swarmfuse.network.binaries import locate
from swarmfuse.network.errors import FabricUnavailable
try:
    locate()
except FabricUnavailable as exc:
    print(exc)')
engines=(embedded)
if [[ -z $fabric_missing ]]; then
  engines+=(fabric)
else
  say "Fabric is not available, measuring the embedded engine only: $fabric_missing"
fi

results=$work/results.jsonl
for engine in "${engines[@]}"; do
  say "engine $engine: $rounds x network up, task create, $rounds rounds of $tx submits + $tx evaluates at concurrency $concurrency"
  # In the background so that a signal reaches the trap at once, not after the whole engine's run.
  .venv/bin/python scripts/bench/engines/bench.py "$engine" "$work" "$tx" "$concurrency" "$rounds" "$port_base" >>"$results" &
  child=$!
  wait "$child"
  child=""
done
.venv/bin/python scripts/bench/engines/report.py "$results" "$fabric_missing"
if [[ $open_heights != none ]]; then
  ledgers=$(mktemp -d "$( [[ -d /dev/shm && -w /dev/shm ]] && echo /dev/shm || echo "$work")/swarmfuse-open-time.XXXXXX")
  say "embedded ledger open time at heights $open_heights (ledger under $ledgers)"
  .venv/bin/python scripts/bench/engines/open_time.py "$ledgers" "$open_heights"
fi
