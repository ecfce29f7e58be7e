"""``swarmfuse task create|define|list|invoke|query``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from swarmfuse.chaincode.contracts.records import DEFAULT_DEADLINE_WINDOW_S
from swarmfuse.network import tasks
from swarmfuse.network.cli_common import HomeOption, clean_errors, console
from swarmfuse.network.control import Network
from swarmfuse.network.errors import InvalidInput
from swarmfuse.network.topology import Org

app = typer.Typer(no_args_is_help=True, help="Collaboration tasks: one channel each, with the chaincode deployed.")


@app.command()
def create(
    name: str = typer.Argument(..., help="Task name, used as the channel name (lower case, digits, '.', '-')."),
    orgs: str = typer.Option(..., "--orgs", help="Comma-separated member orgs, e.g. DC1,DC2,DC3 (Auditor allowed)."),
    deadline_window: int = typer.Option(
        DEFAULT_DEADLINE_WINDOW_S, "--deadline-window",
        help="Seconds every deadline a transaction sets (round deadline, new leader's, acknowledgements') must "
             "leave after the endorsing peer's clock."),
    home: Path = HomeOption,
) -> None:
    """Create the task's channel, join its orgs, deploy the chaincode and initialise the task."""
    with clean_errors():
        record = tasks.create(Network(home), name, orgs, deadline_window)
    console.print(f"Task {record.name} created for {', '.join(record.orgs)}; endorsement policy {record.policy}.")


@app.command()
def define(
    name: str = typer.Argument(..., help="The task (channel)."),
    home: Path = HomeOption,
) -> None:
    """Define the task's chaincode anew for the orgs its channel has now (after 'channel update'): its endorsement
    policy becomes a majority of their peers (embedded engine; each member org's peer must be hosted)."""
    with clean_errors():
        record = tasks.define(Network(home), name)
    console.print(f"Task {record.name}: orgs {', '.join(record.orgs)}; endorsement policy {record.policy}.",
                  highlight=False)


@app.command("list")
def list_tasks(home: Path = HomeOption) -> None:
    """The tasks of this network."""
    with clean_errors():
        current = Network(home).require_state()
    table = Table(title="tasks")
    for column in ("task", "orgs", "endorsement policy", "created"):
        table.add_column(column)
    for record in current.tasks.values():
        table.add_row(record.name, ", ".join(record.orgs), record.policy, record.created)
    console.print(table)


def _task_orgs(network: Network, task: str, org: str) -> tuple[Org, list[Org]]:
    current = network.require_state()
    if task not in current.tasks:
        raise InvalidInput(f"no task {task!r} (see 'swarmfuse task list')")
    topology = current.topology()
    members = [topology.org(name) for name in current.tasks[task].orgs]
    if org not in current.tasks[task].orgs:
        raise InvalidInput(f"org {org!r} is not a member of task {task!r}")
    return topology.org(org), [m for m in members if not m.auditor]


@app.command()
def invoke(
    name: str = typer.Argument(..., help="Task (channel) name."),
    function: str = typer.Argument(..., help="Transaction, e.g. Membership:Register."),
    args: list[str] = typer.Argument(None, help="Arguments, one string each."),
    org: str = typer.Option("DC1", "--org", help="Submit as this org's admin."),
    home: Path = HomeOption,
) -> None:
    """Submit a transaction through the org's gateway as its admin and wait for the commit; print its payload."""
    with clean_errors():
        network = Network(home)
        submitter, _ = _task_orgs(network, name, org)
        result = tasks.invoke(network, name, submitter, function, *(args or []))
    console.print(f"committed tx {result.tx_id} in block {result.block_number}", highlight=False)
    if result.payload:
        typer.echo(result.payload.decode(errors="replace"))


@app.command()
def query(
    name: str = typer.Argument(..., help="Task (channel) name."),
    function: str = typer.Argument(..., help="Transaction, e.g. Rounds:Get."),
    args: list[str] = typer.Argument(None, help="Arguments, one string each."),
    org: str = typer.Option("DC1", "--org", help="Evaluate on this org's peer, as its admin."),
    home: Path = HomeOption,
) -> None:
    """Evaluate a transaction on one org's peer through its gateway, as its admin; print its payload."""
    with clean_errors():
        network = Network(home)
        reader, _ = _task_orgs(network, name, org)
        typer.echo(tasks.query(network, name, reader, function, *(args or [])).decode(errors="replace"))
