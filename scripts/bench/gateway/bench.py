"""swarmfuse's gateway client under the same load as bench.mjs; prints one JSON line.

Usage: bench.py <connection.json> <channel> <transactions> <concurrency> <key-prefix>
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from swarmfuse.client.gateway import Gateway


def load(pool: ThreadPoolExecutor, count: int, job: Callable[[int], object]) -> list[float]:
    """Run ``job(i)`` for every i below ``count`` on the pool; per-call latencies in milliseconds."""

    def timed(i: int) -> float:
        t0 = time.perf_counter()
        job(i)
        return (time.perf_counter() - t0) * 1000

    return list(pool.map(timed, range(count)))


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main(profile: str, channel: str, transactions: str, concurrency: str, prefix: str) -> None:
    count, workers = int(transactions), int(concurrency)
    with Gateway.from_profile(Path(profile)) as gateway, ThreadPoolExecutor(workers) as pool:
        contract = gateway.network(channel).contract("swarmfuse")
        load(pool, workers, lambda i: contract.submit_transaction("Sample:Put", f"{prefix}-warm-{i}", "w"))
        t0 = time.perf_counter()
        load(pool, count, lambda i: contract.submit_transaction("Sample:Put", f"{prefix}-{i}", f"value-{i}"))
        submit_seconds = time.perf_counter() - t0
        load(pool, workers, lambda i: contract.evaluate_transaction("Sample:Get", f"{prefix}-{i}"))
        evaluations = sorted(load(pool, count, lambda i: contract.evaluate_transaction("Sample:Get", f"{prefix}-{i}")))
    print(json.dumps({
        "client": "swarmfuse.client.gateway",
        "submit_tps": count / submit_seconds,
        "evaluate_p50_ms": percentile(evaluations, 0.5),
        "evaluate_p99_ms": percentile(evaluations, 0.99),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
