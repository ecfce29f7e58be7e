"""The full check of a home's embedded-engine ledgers, on demand (``swarmfuse network check``).

The engine's start checks only what a crash can have left (the last block of each channel), so that it takes
the same time at any height; this check covers every block's hashes and links, every commit hash and the whole
state (:meth:`~swarmfuse.network.embedded.ledger.Ledger.verify`), in time proportional to the ledgers. It reads
each ledger in one read transaction, so it may run while the engine commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from swarmfuse.network import state as state_file
from swarmfuse.network.embedded.engine import ledger_dir
from swarmfuse.network.embedded.ledger import Ledger, LedgerCorrupt
from swarmfuse.network.errors import InvalidInput, NotRunning
from swarmfuse.network.layout import Layout

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LedgerReport:
    """One channel's ledger: its height when it checks out, else the first inconsistency found."""

    channel: str
    height: int | None
    problem: str | None


def check_ledgers(home: Path) -> list[LedgerReport]:
    """Fully check every channel ledger of the embedded engine of ``home``, in channel-name order."""
    layout = Layout(home.expanduser().resolve())
    current = state_file.load(layout.state_file)
    if current is None:
        raise NotRunning(f"no network state under {layout.home}")
    if current.engine != "embedded":
        raise InvalidInput(f"the network under {layout.home} runs Fabric, whose peers keep and check their own "
                           "ledgers; `swarmfuse audit verify` checks a channel's blocks as a peer delivers them")
    reports = []
    for path in sorted(ledger_dir(layout).glob("*.sqlite")):
        try:
            with Ledger.open(path, full_check=True) as ledger:
                reports.append(LedgerReport(path.stem, ledger.height, None))
        except LedgerCorrupt as exc:
            logger.error("ledger %s is inconsistent: %s", path, exc)
            reports.append(LedgerReport(path.stem, None, str(exc)))
    return reports
