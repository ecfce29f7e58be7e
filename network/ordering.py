"""Readiness of ordering on a channel: a Raft leader, as reported on the orderers' metrics endpoints."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterable

from swarmfuse.network.errors import NetworkError
from swarmfuse.network.topology import Topology
from swarmfuse.wait import wait_until

_IS_LEADER = re.compile(r'^consensus_etcdraft_is_leader\{channel="([^"]+)"\} 1(?:\.0)?$', re.MULTILINE)


def raft_leaders(topology: Topology) -> set[str]:
    """Channels for which some orderer of ``topology`` currently reports itself Raft leader."""
    led: set[str] = set()
    for name in topology.orderers:
        url = f"http://{topology.address}:{topology.orderer_ports(name).operations}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                led.update(_IS_LEADER.findall(reply.read().decode()))
        except (urllib.error.URLError, OSError):
            continue
    return led


def wait_for_leaders(topology: Topology, channels: Iterable[str], timeout: float = 60.0) -> None:
    """Block until every channel of ``channels`` has a Raft leader (no-op for BFT, which has no such metric)."""
    wanted = set(channels)
    if topology.consensus != "raft" or not wanted:
        return
    if not wait_until(lambda: wanted <= raft_leaders(topology), timeout, poll=0.25):
        missing = ", ".join(sorted(wanted - raft_leaders(topology)))
        raise NetworkError(f"no Raft leader elected within {timeout:.0f}s on channel(s) {missing}")
