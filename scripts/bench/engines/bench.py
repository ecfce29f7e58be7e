"""One ledger engine under the bench_engines.sh load; prints one JSON line of figures.

Usage: bench.py <engine> <work dir> <transactions> <concurrency> <rounds> <port base>

1. ``network up`` of 3 orgs in a fresh home, ``rounds`` times through the CLI (wall time of the
   ``swarmfuse`` command, as a user sees it) and ``rounds`` times in this process (``Network.up``: the
   network's own start-up, without the CLI's imports); the last in-process network is kept.
2. ``task create bench`` for DC1–DC3 on it (timed once).
3. ``rounds`` rounds of: ``concurrency`` warm-up submits, then ``transactions`` submits of Sample:Put
   from ``concurrency`` workers (endorse, submit, wait for the commit status; round-robin over the
   three orgs' gateways, one gRPC connection each), then ``concurrency`` + ``transactions``
   evaluates of Sample:Get (each result checked). Figures are medians over the rounds; the CPU time
   per submitted transaction is split into the ledger's processes (engine, or peers + orderers), the
   chaincode servers and this client.
4. Through the first org's gateway alone: ``transactions`` submits from ``concurrency`` workers, then the same
   with ``IDLE_STREAMS`` ChaincodeEvents streams open on that org (waiting for events that never come, as
   idle site agents' listeners do): endorse and whole-submit p50/p99 both ways, and how many of the streams
   the endpoint refused or ended.

Every home lives under ``<work dir>`` and is torn down before this exits (the calling script's trap
catches what an interrupted run leaves).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from swarmfuse.client.gateway import Gateway
from swarmfuse.client.gateway.commit import raise_unless_valid
from swarmfuse.network import tasks
from swarmfuse.network.control import Network
from swarmfuse.network.topology import Topology

ORGS = 3
TASK = "bench"
IDLE_STREAMS = 200
SWARMFUSE = Path(sys.executable).with_name("swarmfuse")
T = TypeVar("T")


def log(message: str) -> None:
    print(f"\033[1;34m[bench]\033[0m {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_pool(pool: ThreadPoolExecutor, count: int, job: Callable[[int], T]) -> list[T]:
    return list(pool.map(job, range(count)))


def up_via_cli(engine: str, home: Path, port_base: int) -> float:
    """Wall time of ``swarmfuse network up`` for a fresh 3-org home (the network is then stopped and purged)."""
    args = [str(SWARMFUSE), "network", "up", "--engine", engine, "--orgs", str(ORGS),
            "--port-base", str(port_base), "--home", str(home)]
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    seconds = time.perf_counter() - t0
    try:
        if done.returncode != 0:
            raise RuntimeError(f"network up failed (exit {done.returncode}): {(done.stdout + done.stderr)[-2000:]}")
    finally:
        if (home / "state.json").exists():
            Network(home).down(purge=True)
    return seconds


def up_in_process(engine: str, home: Path, port_base: int) -> tuple[float, Network]:
    network = Network(home)
    t0 = time.perf_counter()
    network.up(Topology(n_orgs=ORGS, port_base=port_base), engine)
    return time.perf_counter() - t0, network


def rss_mib(network: Network) -> float:
    """Sum of the resident memory of every process of the network."""
    total_kib = 0
    for name in network.running():
        pid = network.supervisor.pid(name)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time so far of ``pids`` (0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def load(network: Network, engine: str, transactions: int, concurrency: int, rounds: int) -> dict[str, float]:
    orgs = list(network.require_state().topology().orgs)
    gateways = [Gateway.from_profile(network.layout.profile(org)) for org in orgs]
    try:
        contracts = [gateway.network(TASK).contract("swarmfuse") for gateway in gateways]

        def submit(key: str, value: str, i: int) -> tuple[float, float]:
            """Endorse, then submit and wait for the status: (submit→status ms, whole transaction ms)."""
            t0 = time.perf_counter()
            transaction = contracts[i % len(contracts)].new_proposal("Sample:Put", key, value).endorse()
            t1 = time.perf_counter()
            status = transaction.submit().status()
            t2 = time.perf_counter()
            raise_unless_valid(status)
            return (t2 - t1) * 1000, (t2 - t0) * 1000

        def evaluate(key: str, expected: str, i: int) -> float:
            t0 = time.perf_counter()
            result = contracts[i % len(contracts)].evaluate_transaction("Sample:Get", key)
            elapsed = (time.perf_counter() - t0) * 1000
            if result.decode() != expected:
                raise AssertionError(f"Sample:Get({key}) returned {result!r}, not {expected!r}")
            return elapsed

        # The chaincode servers (the same on both engines) apart from the ledger's own processes.
        kinds: dict[str, list[int]] = {"chaincode": [], "ledger": []}
        for name in network.running():
            if (pid := network.supervisor.pid(name)) is not None:
                kinds["chaincode" if name.startswith("chaincode-") else "ledger"].append(pid)
        per_round: list[dict[str, float]] = []
        pool = ThreadPoolExecutor(concurrency)
        try:
            for r in range(rounds):
                prefix = f"{engine}-{r}"
                run_pool(pool, concurrency, lambda i, prefix=prefix: submit(f"{prefix}-warm-{i}", "w", i))
                cpu_before = {kind: cpu_seconds(pids) for kind, pids in kinds.items()} | {"client": own_cpu_seconds()}
                t0 = time.perf_counter()
                submits = run_pool(pool, transactions, lambda i, prefix=prefix: submit(f"{prefix}-{i}", f"value-{i}", i))
                seconds = time.perf_counter() - t0
                cpu_after = {kind: cpu_seconds(pids) for kind, pids in kinds.items()} | {"client": own_cpu_seconds()}
                cpu_ms = {kind: (cpu_after[kind] - cpu_before[kind]) * 1000 / transactions for kind in cpu_before}
                run_pool(pool, concurrency, lambda i, prefix=prefix: evaluate(f"{prefix}-warm-{i}", "w", i))
                evaluations = run_pool(pool, transactions,
                                       lambda i, prefix=prefix: evaluate(f"{prefix}-{i}", f"value-{i}", i + 1))
                commits = [c for c, _ in submits]
                totals = [t for _, t in submits]
                per_round.append({
                    "submit_tps": transactions / seconds,
                    "commit_p50_ms": percentile(commits, 0.5),
                    "commit_p99_ms": percentile(commits, 0.99),
                    "submit_p50_ms": percentile(totals, 0.5),
                    "ledger_cpu_ms_per_tx": cpu_ms["ledger"],
                    "chaincode_cpu_ms_per_tx": cpu_ms["chaincode"],
                    "client_cpu_ms_per_tx": cpu_ms["client"],
                    "evaluate_p50_ms": percentile(evaluations, 0.5),
                    "evaluate_p99_ms": percentile(evaluations, 0.99),
                })
                log(f"{engine} round {r + 1}/{rounds}: {per_round[-1]['submit_tps']:.1f} submit tx/s, "
                    f"commit p50 {per_round[-1]['commit_p50_ms']:.0f} ms, "
                    f"evaluate p50 {per_round[-1]['evaluate_p50_ms']:.1f} ms")
        finally:  # on an interruption, drop the queued transactions instead of running them all
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        for gateway in gateways:
            gateway.close()
    return {metric: statistics.median(r[metric] for r in per_round) for metric in per_round[0]}


def idle_streams(network: Network, transactions: int, concurrency: int) -> dict[str, float]:
    """Endorse and submit latency through the first org's gateway without, then with, ``IDLE_STREAMS`` open
    ChaincodeEvents streams on that org; and how many of those streams did not stay open."""
    org = network.require_state().topology().orgs[0]
    gateway = Gateway.from_profile(network.layout.profile(org))
    figures: dict[str, float] = {}
    pool = ThreadPoolExecutor(concurrency)
    try:
        channel = gateway.network(TASK)
        contract = channel.contract("swarmfuse")

        def submit(key: str) -> tuple[float, float]:
            t0 = time.perf_counter()
            transaction = contract.new_proposal("Sample:Put", key, "v").endorse()
            t1 = time.perf_counter()
            raise_unless_valid(transaction.submit().status())
            return (t1 - t0) * 1000, (time.perf_counter() - t0) * 1000

        for suffix, count in (("", 0), ("_idle_streams", IDLE_STREAMS)):
            streams = [channel.chaincode_events("idle-listener") for _ in range(count)]  # no such chaincode: no events
            try:
                time.sleep(1.0 if count else 0.0)  # let every call reach the endpoint
                run_pool(pool, concurrency, lambda i, suffix=suffix: submit(f"streams{suffix}-warm-{i}"))
                results = run_pool(pool, transactions, lambda i, suffix=suffix: submit(f"streams{suffix}-{i}"))
                # An open call is not done; one the endpoint refused (or ended) is.
                figures[f"streams_not_open{suffix}"] = sum(1 for stream in streams if stream._call.done())
            finally:
                for stream in streams:
                    stream.close()
            endorse, whole = [e for e, _ in results], [w for _, w in results]
            figures |= {f"dc1_endorse_p50_ms{suffix}": percentile(endorse, 0.5),
                        f"dc1_endorse_p99_ms{suffix}": percentile(endorse, 0.99),
                        f"dc1_submit_p50_ms{suffix}": percentile(whole, 0.5),
                        f"dc1_submit_p99_ms{suffix}": percentile(whole, 0.99)}
            log(f"{count} idle streams on {org.name}: endorse p50 {figures[f'dc1_endorse_p50_ms{suffix}']:.1f} ms, "
                f"submit p50 {figures[f'dc1_submit_p50_ms{suffix}']:.0f} ms, p99 "
                f"{figures[f'dc1_submit_p99_ms{suffix}']:.0f} ms, {figures[f'streams_not_open{suffix}']:.0f} not open")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        gateway.close()
    return figures


def main(engine: str, work: str, transactions: str, concurrency: str, rounds: str, port_base: str) -> None:
    root, count, workers, repeats, base = Path(work), int(transactions), int(concurrency), int(rounds), int(port_base)
    figures: dict[str, object] = {"engine": engine, "tx": count, "concurrency": workers, "rounds": repeats}
    network: Network | None = None
    try:
        cli_times = []
        for r in range(repeats):
            log(f"{engine}: network up of {ORGS} orgs through the CLI ({r + 1}/{repeats})")
            cli_times.append(up_via_cli(engine, root / f"{engine}-cli-{r}", base))
        own_times = []
        for r in range(repeats):
            log(f"{engine}: Network.up of {ORGS} orgs in process ({r + 1}/{repeats})")
            seconds, network = up_in_process(engine, root / f"{engine}-net-{r}", base)
            own_times.append(seconds)
            if r < repeats - 1:
                network.down(purge=True)
                network = None
        assert network is not None
        figures |= {"up_cli_s": statistics.median(cli_times), "up_s": statistics.median(own_times),
                    "up_cli_runs_s": cli_times, "up_runs_s": own_times}
        log(f"{engine}: task create {TASK} for DC1,DC2,DC3")
        t0 = time.perf_counter()
        tasks.create(network, TASK, ",".join(f"DC{i}" for i in range(1, ORGS + 1)))
        figures["task_create_s"] = time.perf_counter() - t0
        figures |= load(network, engine, count, workers, repeats)
        figures |= idle_streams(network, count, workers)
        figures["rss_mib"] = rss_mib(network)
        figures["processes"] = len(network.running())
    finally:
        if network is not None and (network.home / "state.json").exists():
            network.down(purge=True)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    # SIGTERM (the calling script's trap) unwinds like an exception: the network is torn down on the way out.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    main(*sys.argv[1:])
