"""The ``swarmfuse`` command: each concern contributes its own Typer sub-application."""

from __future__ import annotations

import importlib
import logging

import typer

# (command name, module exposing a Typer ``app``) in the order of the data flow.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("network", "swarmfuse.network.cli", "Start, inspect and stop the Fabric network (orderers, peers, chaincode servers)."),
    ("task", "swarmfuse.network.task_cli", "Create and list collaboration tasks (one channel each)."),
    ("data", "swarmfuse.extractors.data.cli", "Fetch the paired emoji data and the text corpus; partition them."),
    ("fuse", "swarmfuse.extractors.fusion.cli", "Evaluate intermediate fusion of text and image features against baselines."),
]

app = typer.Typer(no_args_is_help=True, help="Multimodal data fusion on a permissioned Fabric network.")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for _name, _module, _help in SUBCOMMANDS:
    app.add_typer(importlib.import_module(_module).app, name=_name, help=_help)


def main() -> None:
    app()
