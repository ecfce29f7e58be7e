"""Options and the one error handler the CLI's commands share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from swarmfuse.errors import SwarmfuseError

DEFAULT_HOME = Path(os.environ.get("SWARMFUSE_HOME", "~/.swarmfuse"))

HomeOption = typer.Option(DEFAULT_HOME, "--home", help="Network home: all state, crypto, ledgers and logs.")

console = Console()
errors = Console(stderr=True)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn an anticipated failure (a :class:`~swarmfuse.errors.SwarmfuseError`, or the OS refusing a file or
    socket) into one red line on stderr and exit status 1; anything else is a bug and keeps its traceback."""
    try:
        yield
    except (SwarmfuseError, OSError) as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
