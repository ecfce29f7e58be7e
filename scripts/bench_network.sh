#!/usr/bin/env bash
# Network figures on one engine (--engine auto|embedded|fabric; auto: Fabric when a release is available,
# the embedded engine otherwise): `network up` wall time for 3 and 8 orgs (fresh home each, crypto
# generation included; the CLI's own start-up is shown on its own row), `task create` time, resident
# memory (RSS) per process kind and of the whole 3-org network with a task, and invoke throughput through
# the Gateway client (swarmfuse.network.tasks.invoke: Sample:Put as each org's admin in turn, a new
# gateway connection per invoke, each waiting for its commit status): N sequential invokes, then M
# invokes from C concurrent clients.
# Usage: scripts/bench_network.sh [--sequential N] [--concurrent M] [--clients C] [--port-base P] [--engine E]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The load uses the test-only Sample contract: chaincode servers serve tests/chaincode/sample_app.py.
export CHAINCODE_APP=sample_app PYTHONPATH="$root/tests/chaincode${PYTHONPATH:+:$PYTHONPATH}"
die() { printf '\033[1;31m[bench] error:\033[0m %s\n' "$*" >&2; exit 1; }

n_seq=20 n_conc=40 clients=8 port_base=28000 engine=auto
while (($#)); do
  case $1 in
    --sequential) n_seq=${2:?}; shift ;;
    --concurrent) n_conc=${2:?}; shift ;;
    --clients) clients=${2:?}; shift ;;
    --port-base) port_base=${2:?}; shift ;;
    --engine) engine=${2:?}; shift ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
[[ $n_seq =~ ^[1-9][0-9]*$ && $n_conc =~ ^[1-9][0-9]*$ && $clients =~ ^[1-9][0-9]*$ ]] \
  || die "--sequential, --concurrent and --clients must be positive integers"
[[ $engine =~ ^(auto|embedded|fabric)$ ]] || die "--engine must be auto, embedded or fabric"
[[ -x .venv/bin/python ]] || die "no .venv: run scripts/setup.sh first"
chosen=$(.venv/bin/python -c 'import sys
from swarmfuse.network.binaries import locate
from swarmfuse.network.control import resolve_engine
from swarmfuse.network.errors import NetworkError
try:
    chosen = resolve_engine(sys.argv[1])
    if chosen == "fabric":
        locate()
    print(chosen)
except NetworkError as exc:
    sys.exit(f"[bench] {exc}")' "$engine") || die "engine $engine is not available"
engine=$chosen

work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfuse-bench.XXXXXX")
trap 'for h in "$work"/*/; do [[ -f $h/state.json ]] && .venv/bin/swarmfuse network down --purge --home "$h" >/dev/null 2>&1; done; rm -rf "$work"' EXIT

# Wall time of a command in milliseconds.
timed() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }

printf '\033[1;34m[bench]\033[0m engine %s: network up (8 orgs, then 3), task create, %d + %d invokes\n' \
  "$engine" "$n_seq" "$n_conc" >&2
cli=$(timed .venv/bin/swarmfuse --help)
up8=$(timed .venv/bin/swarmfuse network up --engine "$engine" --orgs 8 --port-base "$port_base" --home "$work/n8")
.venv/bin/swarmfuse network down --purge --home "$work/n8" >/dev/null
up3=$(timed .venv/bin/swarmfuse network up --engine "$engine" --orgs 3 --port-base "$port_base" --home "$work/n3")
task3=$(timed .venv/bin/swarmfuse task create bench --orgs DC1,DC2,DC3 --home "$work/n3")

.venv/bin/python - "$work/n3" "$n_seq" "$n_conc" "$clients" "$up3" "$up8" "$task3" "$cli" <<'PY'
"""Measure RSS and Gateway-client invoke throughput on the running 3-org network, then print the table."""
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from swarmfuse.network import tasks
from swarmfuse.network.control import Network

home, n_seq, n_conc, clients = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
up3, up8, task3, cli_s = (int(v) / 1000 for v in sys.argv[5:9])
network = Network(home)
current = network.require_state()
engine = current.engine
orgs = list(current.topology().orgs)


def put(i: int) -> None:
    tasks.invoke(network, "bench", orgs[i % len(orgs)], "Sample:Put", f"key-{i}", f"value-{i}")


def rss_by_kind() -> dict[str, int]:
    totals: dict[str, int] = {}
    for name in network.running():
        pid = network.supervisor.pid(name)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                kind = name.split("-")[0].rstrip("0123456789")
                totals[kind] = totals.get(kind, 0) + int(line.split()[1])
    return totals


start = time.perf_counter()
for i in range(n_seq):
    put(i)
seq_s = time.perf_counter() - start
start = time.perf_counter()
with ThreadPoolExecutor(clients) as pool:
    list(pool.map(put, range(n_seq, n_seq + n_conc)))
conc_s = time.perf_counter() - start
last = n_seq + n_conc - 1
assert tasks.query(network, "bench", orgs[2], "Sample:Get", f"key-{last}") == f"value-{last}".encode()
rss = rss_by_kind()

nodes = "one engine process" if engine == "embedded" else "a peer per org, 3 Raft orderers"
table = Table(title=f"swarmfuse network figures (engine: {engine})")
table.add_column("measure")
table.add_column("value", justify="right")
table.add_row(f"network up, 3 orgs (fresh home, {nodes}, CLI wall time)", f"{up3:.1f} s")
table.add_row(f"network up, 8 orgs (fresh home, {nodes}, CLI wall time)", f"{up8:.1f} s")
table.add_row("task create, 3 orgs (channel + chaincode deploy + Task:Init, CLI wall time)", f"{task3:.1f} s")
table.add_row("  the CLI's own start-up, included in each CLI wall time (swarmfuse --help)", f"{cli_s:.1f} s")
for kind, kib in sorted(rss.items()):
    table.add_row(f"RSS of the {kind} processes (3-org network)", f"{kib / 1024:.0f} MiB")
table.add_row("RSS of the whole 3-org network", f"{sum(rss.values()) / 1024:.0f} MiB")
table.add_row(f"Gateway invokes, {n_seq} sequential (wait for commit)", f"{n_seq / seq_s:.2f} tx/s ({seq_s / n_seq * 1000:.0f} ms each)")
table.add_row(f"Gateway invokes, {n_conc} from {clients} concurrent clients", f"{n_conc / conc_s:.2f} tx/s")
Console().print(table)
PY
