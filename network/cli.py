"""``swarmfuse network up|down|status|check|add-peer|bundle``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from swarmfuse.network.cli_common import HomeOption, clean_errors, console
from swarmfuse.network.control import Network
from swarmfuse.network.topology import Topology

app = typer.Typer(no_args_is_help=True, help="Start, inspect and stop the Fabric network of a home.")


@app.command()
def up(
    orgs: int | None = typer.Option(None, "--orgs", help="Number of DC orgs, 2..8 (default 3 for a new network)."),
    auditor: bool | None = typer.Option(None, "--auditor/--no-auditor", help="Add the read-only Auditor org."),
    consensus: str | None = typer.Option(None, "--consensus", help="raft (3 orderers, default) or bft (4)."),
    port_base: int | None = typer.Option(None, "--port-base", help="First port of the network's range (default 17000)."),
    mutual_tls: bool | None = typer.Option(None, "--mutual-tls/--no-mutual-tls", help="Peers require a client TLS "
                                           "certificate (mutual TLS) and bind Deliver requests to it (default on for a new network)."),
    address: str | None = typer.Option(None, "--address", help="IPv4 address every listener binds to and clients "
                                       "reach; certificates name it (default 127.0.0.1)."),
    names: list[str] | None = typer.Option(None, "--name", help="Another host name (or address) the nodes' TLS "
                                           "certificates carry (repeatable)."),
    engine: str = typer.Option("auto", "--engine", help="embedded, fabric, or auto: Fabric when a release is "
                               "configured or cached, the embedded engine otherwise. Recorded in the home."),
    home: Path = HomeOption,
) -> None:
    """Start a new network, or restart the stopped nodes of the existing one (ledgers kept)."""
    with clean_errors():
        network = Network(home)
        current = network.state()
        topology = None
        if current is None or any(v is not None for v in (orgs, auditor, consensus, port_base, mutual_tls, address, names)):
            base = current.topology() if current else Topology()
            topology = Topology(
                n_orgs=base.n_orgs if orgs is None else orgs,
                auditor=base.auditor if auditor is None else auditor,
                consensus=base.consensus if consensus is None else consensus,  # type: ignore[arg-type]
                port_base=base.port_base if port_base is None else port_base,
                mutual_tls=base.mutual_tls if mutual_tls is None else mutual_tls,
                address=base.address if address is None else address,
                names=base.names if names is None else tuple(names),
                joined=base.joined,
            )
        started_at = time.monotonic()
        result = network.up(topology, engine)
        chosen = network.require_state().engine
        if result.already_running:
            console.print(f"The network under {network.home} is already running (engine: {chosen}).")
            return
        console.print(f"Started {len(result.started)} processes in {time.monotonic() - started_at:.1f}s under "
                      f"{network.home} (engine: {chosen}).")
        _print_status(network)


@app.command()
def status(home: Path = HomeOption) -> None:
    """Table of every process: pid, port and health from its operations endpoint."""
    with clean_errors():
        _print_status(Network(home))


def _print_status(network: Network) -> None:
    rows = network.status()
    table = Table(title=f"swarmfuse network ({network.home}, engine: {network.require_state().engine})")
    for column in ("process", "kind", "pid", "port", "health"):
        table.add_column(column)
    for row in rows:
        colour = {"ok": "green", "down": "red"}.get(row.health, "yellow")
        table.add_row(row.name, row.kind, str(row.pid or "-"), str(row.port), f"[{colour}]{row.health}[/{colour}]")
    console.print(table)


@app.command()
def down(
    purge: bool = typer.Option(False, "--purge", help="Also delete the home (crypto, ledgers, logs)."),
    home: Path = HomeOption,
) -> None:
    """Stop every process the home started (by pid)."""
    with clean_errors():
        stopped = Network(home).down(purge=purge)
    console.print(f"Stopped {len(stopped)} processes" + (f"; deleted {home}." if purge else "."))


@app.command()
def check(home: Path = HomeOption) -> None:
    """Fully check the embedded engine's ledgers: every block, commit hash and the whole state (a start checks the last block)."""
    from swarmfuse.network.embedded.check import check_ledgers  # the engine's modules load only for this command

    with clean_errors():
        reports = check_ledgers(home)
    table = Table(title=f"embedded ledgers under {home}")
    for column in ("channel", "height", "check"):
        table.add_column(column)
    for report in reports:
        verdict = "[green]ok[/green]" if report.problem is None else f"[red]{report.problem}[/red]"
        table.add_row(report.channel, "-" if report.height is None else str(report.height), verdict)
    console.print(table if reports else f"No channel ledgers under {home}.")
    if any(report.problem is not None for report in reports):
        raise typer.Exit(1)


@app.command()
def bundle(
    out: Path = typer.Argument(..., help="A new folder for the bundle."),
    org: str = typer.Option(..., "--org", help="The org whose host the bundle is for, e.g. DC2."),
    task: str = typer.Option(..., "--task", help="The task (channel) its site works on."),
    site_address: str | None = typer.Option(None, "--site-address", help="IPv4 address the org's site agent binds "
                                            "to and other sites reach (default: the network's address)."),
    org_home: Path | None = typer.Option(None, "--org-home", help="The org's own home (an org that joined later): "
                                         "its identities and site pairs come from there."),
    home: Path = HomeOption,
) -> None:
    """Write what the org's host needs to run its site (its own keys only, the task orgs' TLS CAs and endpoints, a
    connection profile, site settings) with a manifest of every file's SHA-256."""
    from swarmfuse.network.bundle import describe, write_bundle

    with clean_errors():
        made = write_bundle(home, org, task, out, site_address, org_home)
    console.print(f"Wrote the {describe(made)} to {out}; give it to {org}'s host only (it holds {org}'s private "
                  "keys) and compare the manifest SHA-256 there.", highlight=False)


@app.command("add-peer")
def add_peer(
    org_home: Path = typer.Option(..., "--org-home", help="The home of an org made with 'swarmfuse org init'."),
    home: Path = HomeOption,
) -> None:
    """Host the peer of an org that joined a task (embedded engine): the engine takes its peer's pairs only, and
    restarts to serve it; then 'swarmfuse task define' lets the task's chaincode policy name it."""
    from swarmfuse.network.hosting import add_peer as host

    with clean_errors():
        network = Network(home)
        org = host(network, org_home)
        topology = network.require_state().topology()
    console.print(f"The engine hosts {org.name}'s peer at {topology.endpoint(topology.peer_ports(org).listen)}.",
                  highlight=False)
