"""Side-by-side table of the engines' figures (bench.py's JSON lines), the goals and the ratio line.

Usage: report.py <results.jsonl> [reason Fabric was not measured]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ENGINES = ("embedded", "fabric")
SUBMIT_GOAL = 3.0  # embedded submit throughput at least this many times Fabric's
UP_GOAL_S = 3.0  # `network up` of 3 orgs within this many seconds on the embedded engine

# (label, key, format, higher is better)
ROWS = (
    ("network up, 3 orgs, fresh home: `swarmfuse network up` wall time", "up_cli_s", "{:.2f} s", False),
    ("network up, 3 orgs, fresh home: Network.up() alone (no CLI imports)", "up_s", "{:.2f} s", False),
    ("task create, 3 orgs (channel, chaincode, Task:Init, endorsable)", "task_create_s", "{:.2f} s", False),
    ("submit throughput (endorse + submit + commit status)", "submit_tps", "{:.1f} tx/s", True),
    ("commit latency p50 (submit → status)", "commit_p50_ms", "{:.0f} ms", False),
    ("commit latency p99 (submit → status)", "commit_p99_ms", "{:.0f} ms", False),
    ("whole submit p50 (endorse → status)", "submit_p50_ms", "{:.0f} ms", False),
    ("CPU per submitted tx: ledger (engine | peers + orderers)", "ledger_cpu_ms_per_tx", "{:.1f} ms", False),
    ("CPU per submitted tx: the 3 chaincode servers", "chaincode_cpu_ms_per_tx", "{:.1f} ms", False),
    ("CPU per submitted tx: the client", "client_cpu_ms_per_tx", "{:.1f} ms", False),
    ("evaluate p50", "evaluate_p50_ms", "{:.1f} ms", False),
    ("evaluate p99", "evaluate_p99_ms", "{:.1f} ms", False),
    ("DC1 gateway alone: endorse p50", "dc1_endorse_p50_ms", "{:.1f} ms", False),
    ("DC1 gateway alone: endorse p50, 200 idle event streams on DC1", "dc1_endorse_p50_ms_idle_streams",
     "{:.1f} ms", False),
    ("DC1 gateway alone: whole submit p50", "dc1_submit_p50_ms", "{:.0f} ms", False),
    ("DC1 gateway alone: whole submit p99", "dc1_submit_p99_ms", "{:.0f} ms", False),
    ("DC1 gateway alone: whole submit p50, 200 idle event streams on DC1", "dc1_submit_p50_ms_idle_streams",
     "{:.0f} ms", False),
    ("DC1 gateway alone: whole submit p99, 200 idle event streams on DC1", "dc1_submit_p99_ms_idle_streams",
     "{:.0f} ms", False),
    ("idle event streams DC1 refused or ended (of 200)", "streams_not_open_idle_streams", "{:.0f}", False),
    ("RSS of the network after the load (all processes)", "rss_mib", "{:.0f} MiB", False),
    ("processes", "processes", "{:d}", False),
)


def main(results: str, fabric_missing: str = "") -> None:
    figures = {}
    for line in Path(results).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            figures[row["engine"]] = row
    engines = [e for e in ENGINES if e in figures]
    first = figures[engines[0]]
    table = Table(title=f"Ledger engines: same client (swarmfuse Gateway client), chaincode (Sample:Put / Sample:Get), "
                        f"3 orgs, {first['tx']} tx per round, concurrency {first['concurrency']}, "
                        f"median of {first['rounds']} rounds")
    table.add_column("measure")
    for engine in engines:
        table.add_column(engine, justify="right")
    if len(engines) == 2:
        table.add_column("embedded / fabric", justify="right")
    for label, key, fmt, _ in ROWS:
        cells = [fmt.format(figures[e][key]) for e in engines]
        if len(engines) == 2:
            cells.append(f"{figures['embedded'][key] / figures['fabric'][key]:.2f}×" if figures["fabric"][key] else "-")
        table.add_row(label, *cells)
    Console(width=max(Console().width, 130)).print(table)

    embedded = figures["embedded"]
    up_runs = ", ".join(f"{s:.2f}" for s in embedded["up_cli_runs_s"])
    print(f"embedded network up runs (CLI wall, s): {up_runs}; Network.up(): "
          f"{', '.join(f'{s:.2f}' for s in embedded['up_runs_s'])}")
    if "fabric" in figures:
        fabric = figures["fabric"]
        ratio = embedded["submit_tps"] / fabric["submit_tps"]
        print(f"goal submit throughput >= {SUBMIT_GOAL:.0f}x Fabric: {'met' if ratio >= SUBMIT_GOAL else 'NOT met'} "
              f"({ratio:.2f}x)")
    else:
        print(f"Fabric not measured: {fabric_missing or 'not available'} (embedded figures only)")
    for label, key in (("CLI", "up_cli_s"), ("Network.up()", "up_s")):
        verdict = "met" if embedded[key] <= UP_GOAL_S else "NOT met"
        print(f"goal embedded network up (3 orgs) <= {UP_GOAL_S:.0f} s, {label}: {verdict} ({embedded[key]:.2f} s)")
    ratio_text = f"{embedded['submit_tps'] / figures['fabric']['submit_tps']:.2f}" if "fabric" in figures else "n/a"
    fabric_up = f"{figures['fabric']['up_cli_s']:.2f}" if "fabric" in figures else "n/a"
    fabric_up_own = f"{figures['fabric']['up_s']:.2f}" if "fabric" in figures else "n/a"
    print(f"embedded_vs_fabric_submit_tps={ratio_text} embedded_up_s={embedded['up_cli_s']:.2f} fabric_up_s={fabric_up} "
          f"embedded_up_inprocess_s={embedded['up_s']:.2f} fabric_up_inprocess_s={fabric_up_own}")


if __name__ == "__main__":
    main(*sys.argv[1:])
