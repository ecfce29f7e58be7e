"""``swarmfuse org init|export``: an organisation's own material, made on its own host."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from swarmfuse.files import write_atomic
from swarmfuse.network.cli_common import HomeOption, clean_errors, console
from swarmfuse.network.orghome import init_org, open_org_home

app = typer.Typer(no_args_is_help=True, help="One organisation's CA, MSP and TLS material, on its own host.")


@app.command()
def init(
    name: str = typer.Argument(..., help="Org name, e.g. DC4 (its MSP ID is <name>MSP)."),
    address: str = typer.Option(..., "--address", help="host:port its peer is reached at (the host is a TLS SAN)."),
    domain: str | None = typer.Option(None, "--domain", help="Domain of its CAs and nodes (default <name>.swarmfuse.local)."),
    san: list[str] = typer.Option([], "--san", help="Another host name or IP address of its peer (repeatable)."),
    home: Path = HomeOption,
) -> None:
    """Make the org's CA, TLS CA, MSP, peer and user identities in a new home; private keys stay there (0600)."""
    with clean_errors():
        org = init_org(home, name, address, domain, tuple(san))
    table = Table(title=f"org {org.record.name} under {org.home}")
    for column in ("MSP ID", "domain", "peer address", "admin"):
        table.add_column(column)
    table.add_row(org.record.mspid, org.record.domain, org.record.address, str(org.user_dir("Admin")))
    console.print(table)


@app.command("export")
def export(
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the definition (JSON)."),
    home: Path = HomeOption,
) -> None:
    """Write the org's public definition (MSP ID, CA and TLS CA certificates, anchor peer): no private key."""
    with clean_errors():
        definition = open_org_home(home).definition()
        write_atomic(output, (definition.model_dump_json(indent=2) + "\n").encode())
    console.print(f"Wrote the definition of {definition.name} ({definition.mspid}) to {output}.", highlight=False)
