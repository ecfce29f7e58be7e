"""Options and error handling shared by the ``network`` and ``task`` commands."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from swarmfuse.network.errors import NetworkError

DEFAULT_HOME = Path(os.environ.get("SWARMFUSE_HOME", "~/.swarmfuse"))

HomeOption = typer.Option(DEFAULT_HOME, "--home", help="Network home: all state, crypto, ledgers and logs.")

console = Console()
errors = Console(stderr=True)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn a :class:`NetworkError` into one red line on stderr and exit status 1."""
    try:
        yield
    except NetworkError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
