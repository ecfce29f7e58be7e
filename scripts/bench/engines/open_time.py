"""Embedded ledger open time against ledger height; prints one JSON line per height.

Usage: open_time.py <work dir> <height>[,<height>...] [--full-up-to H]

One ledger is grown to each height in turn (blocks of 10 transactions, 2 writes each, one key rewritten by
every transaction so the state stays small while the history grows) and, at each height, opened as the engine
opens it (``Ledger.open(full_check=False)``: median of 3 opens, each in a fresh process so no connection or
cache of this one helps) and, up to ``--full-up-to`` blocks (default 10 000), with the full check
(``Ledger.verify(full=True)``: every block, commit hash and the whole state). The ledger is built where
``<work dir>`` is: a tmpfs (``/dev/shm``) makes the build quick; the open reads the same bytes either way
once they are in the page cache.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from swarmfuse.network.embedded.ledger import Ledger
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.model import TxResult

TXS_PER_BLOCK = 10
OPENS = 3
_OPEN_ONCE = """
import sys, time
from pathlib import Path
from swarmfuse.network.embedded.ledger import Ledger
started = time.perf_counter()
ledger = Ledger.open(Path(sys.argv[1]), full_check=sys.argv[2] == "full")
print(time.perf_counter() - started, ledger.height)
ledger.close()
"""


def grow(ledger: Ledger, height: int) -> None:
    """Commit blocks until ``ledger`` holds ``height`` of them."""
    while ledger.height < height:
        number = ledger.height
        envelopes = [f"envelope {number}-{i} ".encode() * 40 for i in range(TXS_PER_BLOCK)]
        block = blockfmt.new_block(number, ledger.last_header_hash or b"", envelopes)
        blockfmt.set_transactions_filter(block, [0] * TXS_PER_BLOCK)
        results = [TxResult(f"tx-{number}-{i}", i, 0, [("bench", "counter", str(number).encode()),
                                                        ("bench", f"key-{number % 5000:05d}-{i}", b"v" * 100)],
                            timestamp_s=number, timestamp_nanos=i)
                   for i in range(TXS_PER_BLOCK)]
        ledger.commit(block, results)


def open_seconds(path: Path, full: bool, height: int) -> float:
    """Seconds one ``Ledger.open`` takes in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _OPEN_ONCE, str(path), "full" if full else "quick"],
                          check=True, capture_output=True, text=True)
    seconds, opened_height = done.stdout.split()
    if int(opened_height) != height:
        raise RuntimeError(f"{path} opened at height {opened_height}, not {height}")
    return float(seconds)


OPEN_GOAL_S = 1.0  # the engine's open of a 100 000-block ledger, and no growth with the height


def main(work: str, heights: str, full_up_to: int = 10_000) -> None:
    path = Path(work) / "open-time.sqlite"
    if path.exists():
        sys.exit(f"{path} exists: open_time.py grows its own ledger from block 0, give it an empty work dir")
    opens: dict[int, float] = {}
    for height in sorted(int(h) for h in heights.split(",")):
        started = time.perf_counter()
        with Ledger.open(path, full_check=False) as ledger:
            grow(ledger, height)
        built_s = time.perf_counter() - started
        quick = statistics.median(open_seconds(path, False, height) for _ in range(OPENS))
        full = open_seconds(path, True, height) if height <= full_up_to else None
        opens[height] = quick
        print(json.dumps({"height": height, "open_s": quick, "full_check_s": full, "build_s": built_s,
                          "ledger_mib": path.stat().st_size / 2**20}), flush=True)
    lowest, highest = min(opens), max(opens)
    growth = opens[highest] / opens[lowest]
    verdict = "met" if opens[highest] <= OPEN_GOAL_S and growth < 2 else "NOT met"
    print(f"goal embedded ledger open <= {OPEN_GOAL_S:.0f} s at {highest} blocks and flat in height: {verdict} "
          f"({opens[highest] * 1000:.1f} ms at {highest}, {growth:.1f}x the {lowest}-block open)")
    print("embedded_open_ms " + " ".join(f"{h}={s * 1000:.1f}" for h, s in sorted(opens.items())))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    limit = 10_000
    if "--full-up-to" in arguments:
        at = arguments.index("--full-up-to")
        limit = int(arguments[at + 1])
        del arguments[at:at + 2]
    if len(arguments) != 2:
        sys.exit(__doc__)
    main(*arguments, full_up_to=limit)
