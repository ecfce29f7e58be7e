"""Opening one task's ledger as one org of a network home: the task and the org checked, the Gateway connected."""

from __future__ import annotations

from pathlib import Path

from swarmfuse.client.gateway import Gateway
from swarmfuse.client.ledger.task import TaskLedger
from swarmfuse.errors import SwarmfuseError
from swarmfuse.network import state as state_file
from swarmfuse.network.layout import Layout
from swarmfuse.network.topology import Org, Topology


class TaskUnknown(SwarmfuseError, LookupError):
    """No network under the home, no such task, or the org is not one of the task's orgs."""


def task_topology(home: Path, task: str, org: str) -> Topology:
    """The network's topology once ``org`` (its name, e.g. ``DC1``) is known to be one of ``task``'s orgs."""
    layout = Layout(home.expanduser().resolve())
    current = state_file.load(layout.state_file)
    if current is None:
        raise TaskUnknown(f"no network under {layout.home}: run 'swarmfuse network up' first")
    if task not in current.tasks:
        raise TaskUnknown(f"no task {task!r} in {layout.home} (see 'swarmfuse task list')")
    if org not in current.tasks[task].orgs:
        raise TaskUnknown(f"org {org!r} is not a member of task {task!r}")
    return current.topology()


def task_org(home: Path, task: str, org: str) -> tuple[Layout, Org]:
    """The home's layout and ``org`` of ``task`` (checked as :func:`task_topology` does)."""
    return Layout(home.expanduser().resolve()), task_topology(home, task, org).org(org)


def open_task(home: Path, task: str, org: str, user: str = "user") -> TaskLedger:
    """``task``'s chaincode as ``user`` of ``org``, through the org's connection profile; leaving a ``with`` block
    closes the connection. Raises :class:`TaskUnknown`, or a ``GatewayError`` when the peer is unreachable."""
    layout, found = task_org(home, task, org)
    return TaskLedger(Gateway.from_profile(layout.profile(found), user=user), task)
