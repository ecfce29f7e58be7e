"""``swarmfuse channel add-org|sign|update``: a task channel's membership changed by channel update, each org
admin signing with the key in its own home."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from swarmfuse.network import channelupdate
from swarmfuse.network.cli_common import HomeOption, clean_errors, console

app = typer.Typer(no_args_is_help=True, help="Channel updates: add or remove an org, sign the update, submit it.")

OrgOption = typer.Option(None, "--org", help="Whose admin acts, in a network home (an org home acts as its own org).")


def _wrote(task: str, output: Path) -> None:
    console.print(f"Wrote the update of channel {task} to {output}: each admin signs it with 'swarmfuse channel sign', "
                  "one submits it with 'swarmfuse channel update' (a majority of the channel's org admins must sign).",
                  highlight=False)


def _print(title: str, signed_by: tuple[str, ...]) -> None:
    table = Table(title=title)
    table.add_column("signed by")
    for mspid in signed_by or ("(no signature yet)",):
        table.add_row(mspid)
    console.print(table)


@app.command("add-org")
def add_org(
    task: str = typer.Argument(..., help="Task (channel) name."),
    definition: Path = typer.Option(..., "--definition", help="The org's definition, from 'swarmfuse org export'."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the update (a CONFIG_UPDATE envelope)."),
    org: str = typer.Option("DC1", "--org", help="Read the channel's config through this org's peer, as its admin."),
    home: Path = HomeOption,
) -> None:
    """Build the update adding the org to the task's channel, from the config in force; no signature yet."""
    with clean_errors():
        update = channelupdate.add_org(home, task, org, definition)
        channelupdate.write_unsigned(update, output)
    _wrote(task, output)


@app.command("remove-org")
def remove_org(
    task: str = typer.Argument(..., help="Task (channel) name."),
    name: str = typer.Option(..., "--name", help="The org to remove, by its name in the channel (e.g. DC4)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the update (a CONFIG_UPDATE envelope)."),
    org: str = typer.Option("DC1", "--org", help="Read the channel's config through this org's peer, as its admin."),
    home: Path = HomeOption,
) -> None:
    """Build the update removing an org from the task's channel, from the config in force; no signature yet."""
    with clean_errors():
        update = channelupdate.remove_org(home, task, org, name)
        channelupdate.write_unsigned(update, output)
    _wrote(task, output)


@app.command()
def sign(
    update: Path = typer.Argument(..., help="The update file (rewritten with the signature added)."),
    org: str | None = OrgOption,
    home: Path = HomeOption,
) -> None:
    """Add the org admin's signature to the update, with the key in this home."""
    with clean_errors():
        result = channelupdate.sign(update, channelupdate.admin_of(home, org))
    _print(f"update of channel {result.channel}", result.signed_by)


@app.command("update")
def submit(
    update: Path = typer.Argument(..., help="The signed update file."),
    org: str = typer.Option("DC1", "--org", help="Submit through this org's gateway, signing as its admin too."),
    home: Path = HomeOption,
) -> None:
    """Submit the update (adding this admin's signature, as 'peer channel update' does); refused unless the
    signatures satisfy the channel's policies."""
    with clean_errors():
        number = channelupdate.submit(home, update, org)
        channel = channelupdate.summary(update.read_bytes()).channel
    console.print(f"Channel {channel}: config block {number} committed; the new config is in force.", highlight=False)
