#!/usr/bin/env bash
# Our Fabric Gateway client (swarmfuse.client.gateway) against the official Node client
# (@hyperledger/fabric-gateway, installed here with npm into scripts/bench/gateway/node_modules, cached):
# one network, chaincode swarmfuse, the same concurrency and transaction count for both. Submit = Sample:Put
# (endorse, submit, wait for commit), evaluate = Sample:Get. Rounds alternate the clients; the table shows
# medians over rounds and ends with `submit_tps_ratio=<ours/node> evaluate_p50_ratio=<ours/node>`.
# By default it starts its own 3-org network with a task on --engine (auto: Fabric when a release is
# available, the embedded engine otherwise) and tears it down at the end; both clients run unchanged on
# either engine.
# Usage: scripts/bench_gateway.sh [--tx N] [--concurrency C] [--rounds R] [--port-base P] [--engine E]
#                                 [--home DIR --task NAME]   (reuse a running network and task; nothing torn down)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The load uses the test-only Sample contract: chaincode servers serve tests/chaincode/sample_app.py.
export CHAINCODE_APP=sample_app PYTHONPATH="$root/tests/chaincode${PYTHONPATH:+:$PYTHONPATH}"
die() { printf '\033[1;31m[bench] error:\033[0m %s\n' "$*" >&2; exit 1; }
say() { printf '\033[1;34m[bench]\033[0m %s\n' "$*" >&2; }

tx=200 concurrency=8 rounds=3 port_base=29000 engine="" home="" task=""
while (($#)); do
  case $1 in
    --tx) tx=${2:?}; shift ;;
    --concurrency) concurrency=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --port-base) port_base=${2:?}; shift ;;
    --engine) engine=${2:?}; shift ;;
    --home) home=${2:?}; shift ;;
    --task) task=${2:?}; shift ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
[[ $tx =~ ^[1-9][0-9]*$ && $concurrency =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ ]] \
  || die "--tx, --concurrency and --rounds must be positive integers"
[[ -n $home && -z $task || -z $home && -n $task ]] && die "--home and --task go together"
[[ -n $home && -n $engine ]] && die "--engine applies to the network this script starts, not to --home"
engine=${engine:-auto}
[[ $engine =~ ^(auto|embedded|fabric)$ ]] || die "--engine must be auto, embedded or fabric"
[[ -x .venv/bin/python ]] || die "no .venv: run scripts/setup.sh first"
command -v npm >/dev/null || die "npm is needed for the Node reference client"

bench_dir=scripts/bench/gateway
lock=$bench_dir/node_modules/.package-lock.json
if [[ ! -f $lock || $bench_dir/package.json -nt $lock ]]; then
  say "installing @hyperledger/fabric-gateway and @grpc/grpc-js"
  (cd "$bench_dir" && npm install --no-audit --no-fund --loglevel=error >&2)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfuse-bench-gw.XXXXXX")
started=""  # set once this script has started its own network: only that one is torn down
cleanup() {
  if [[ -n $started && -f $work/net/state.json ]] && ! .venv/bin/swarmfuse network down --purge --home "$work/net" >/dev/null 2>&1; then
    printf '\033[1;31m[bench] warning:\033[0m could not stop the network in %s; left in place\n' "$work/net" >&2
    return
  fi
  rm -rf "$work"
}
trap cleanup EXIT
if [[ -z $home ]]; then
  home=$work/net task=bench started=1
  say "starting a 3-org network (engine: $engine) in $home"
  .venv/bin/swarmfuse network up --engine "$engine" --orgs 3 --port-base "$port_base" --home "$home" >/dev/null
  # Returns once every task org's gateway can endorse: no waiting for gossip here.
  .venv/bin/swarmfuse task create "$task" --orgs DC1,DC2,DC3 --home "$home" >/dev/null
fi
profile=$home/orgs/DC1/connection.json
[[ -f $profile ]] || die "no connection profile $profile"
engine=$(.venv/bin/python -c 'import json, sys; print(json.load(open(sys.argv[1])).get("engine", "fabric"))' "$profile")
say "engine: $engine"

# One warm-up submit: fails early, with the gateway's message, when the network does not accept submits.
.venv/bin/python - "$profile" "$task" <<'PY' || die "the network did not accept a warm-up submit"
import sys
from pathlib import Path
from swarmfuse.client.gateway import Gateway
with Gateway.from_profile(Path(sys.argv[1])) as gateway:
    gateway.network(sys.argv[2]).contract("swarmfuse").submit_transaction("Sample:Put", "bench-ready", "1")
PY

results=$work/results.jsonl
for ((round = 1; round <= rounds; round++)); do
  say "round $round/$rounds: $tx submits + $tx evaluates per client, concurrency $concurrency"
  node "$bench_dir/bench.mjs" "$profile" "$task" "$tx" "$concurrency" "node-$round-$$" >>"$results"
  .venv/bin/python "$bench_dir/bench.py" "$profile" "$task" "$tx" "$concurrency" "py-$round-$$" >>"$results"
done
.venv/bin/python "$bench_dir/report.py" "$results" "$engine"
