"""``swarmfuse task create|list``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from swarmfuse.network import tasks
from swarmfuse.network.cli_common import HomeOption, clean_errors, console
from swarmfuse.network.control import Network

app = typer.Typer(no_args_is_help=True, help="Collaboration tasks: one channel each, with the chaincode deployed.")


@app.command()
def create(
    name: str = typer.Argument(..., help="Task name, used as the channel name (lower case, digits, '.', '-')."),
    orgs: str = typer.Option(..., "--orgs", help="Comma-separated member orgs, e.g. DC1,DC2,DC3 (Auditor allowed)."),
    home: Path = HomeOption,
) -> None:
    """Create the task's channel, join its orgs, deploy the chaincode and initialise the task."""
    with clean_errors():
        record = tasks.create(Network(home), name, orgs)
    console.print(f"Task {record.name} created for {', '.join(record.orgs)}; endorsement policy {record.policy}.")


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
