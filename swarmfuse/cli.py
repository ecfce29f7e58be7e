"""The ``swarmfuse`` command: each concern contributes its own Typer sub-application."""

from __future__ import annotations

import importlib
import logging

import typer

# (command name, module exposing a Typer ``app``) in the order of the data flow.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("network", "swarmfuse.network.cli", "Start, inspect and stop the ledger network of a home (embedded engine or Fabric)."),
    ("task", "swarmfuse.network.task_cli", "Create and list collaboration tasks (one channel each)."),
    ("org", "swarmfuse.network.org_cli", "One organisation's own CA, MSP and TLS material, and its public definition."),
    ("channel", "swarmfuse.network.channel_cli", "Change a task channel's orgs by channel update, signed by its admins."),
    ("data", "swarmfuse.extractors.data.cli", "Fetch the paired emoji data and the text corpus; partition them."),
    ("site", "swarmfuse.client.site.cli", "A data centre's site agent: its data, extractors and round work."),
    ("fuse", "swarmfuse.client.demo.fuse_cli", "Fusion methods against their baselines, in each extractor regime."),
    ("audit", "swarmfuse.client.audit.cli", "Read a task's ledger as an auditor: members, summaries, rounds, exchanges."),
]
# Typer apps that live beside another command's module: (command name, module, attribute, help).
EXTRA_SUBCOMMANDS: list[tuple[str, str, str, str]] = [
    ("round", "swarmfuse.client.site.cli", "rounds", "Fusion rounds of a task: open, status, list, abort."),
]
# Single commands that live in another command's module: (command name, module, function).
EXTRA_COMMANDS: list[tuple[str, str, str]] = [
    ("predict", "swarmfuse.client.site.cli", "predict_command"),
]

app = typer.Typer(no_args_is_help=True, help="Multimodal data fusion on a permissioned Fabric network.")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _add_missing_extras(name: str, error: ModuleNotFoundError) -> None:
    """A stand-in for a command whose dependencies are not installed: whatever follows, it names the extra."""

    def explain() -> None:
        typer.echo(f"error: 'swarmfuse {name}' needs {error.name}, which is not installed: "
                   "pip install 'swarmfuse[ml]'", err=True)
        raise typer.Exit(1)

    settings = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
    app.command(name, help=f"(unavailable: needs {error.name}; pip install 'swarmfuse[ml]')",
                context_settings=settings)(explain)


for _name, _module, _help in SUBCOMMANDS:
    try:
        app.add_typer(importlib.import_module(_module).app, name=_name, help=_help)
    except ModuleNotFoundError as _error:  # a light install (ledger, chaincode, client) without the ML extras
        if _error.name is None or _error.name.split(".")[0] == "swarmfuse":
            raise
        _add_missing_extras(_name, _error)

for _name, _module, _attribute, _help in EXTRA_SUBCOMMANDS:
    app.add_typer(getattr(importlib.import_module(_module), _attribute), name=_name, help=_help)
for _name, _module, _function in EXTRA_COMMANDS:
    app.command(_name)(getattr(importlib.import_module(_module), _function))


def main() -> None:
    app()
