"""Side-by-side table of bench.py and bench.mjs results (median over rounds) and the ratio line.

Usage: report.py <results.jsonl> [engine]   (one JSON object per run, as the two bench clients print them)
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

OURS, NODE = "swarmfuse.client.gateway", "node @hyperledger/fabric-gateway"
METRICS = ("submit_tps", "evaluate_p50_ms", "evaluate_p99_ms")


def medians(path: Path) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, float]]] = {}
    for line in path.read_text().splitlines():
        result = json.loads(line)
        runs.setdefault(result["client"], []).append(result)
    return {client: {m: statistics.median(r[m] for r in results) for m in METRICS} for client, results in runs.items()}


def main(results: str, engine: str = "") -> None:
    figures = medians(Path(results))
    ours, node = figures[OURS], figures[NODE]
    on = f" (engine: {engine})" if engine else ""
    table = Table(title=f"Fabric Gateway clients: same network{on}, chaincode, concurrency and transaction count")
    table.add_column("client")
    for metric in ("submit tx/s", "evaluate p50 ms", "evaluate p99 ms"):
        table.add_column(metric, justify="right")
    for name, row in (("swarmfuse (Python)", ours), ("fabric-gateway (Node)", node)):
        table.add_row(name, *(f"{row[m]:.1f}" for m in METRICS))
    Console().print(table)
    print(f"submit_tps_ratio={ours['submit_tps'] / node['submit_tps']:.2f} "
          f"evaluate_p50_ratio={ours['evaluate_p50_ms'] / node['evaluate_p50_ms']:.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
