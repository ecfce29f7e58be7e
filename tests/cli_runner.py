"""The swarmfuse CLI run in-process, as the network tests call it."""

from __future__ import annotations

from typer.testing import CliRunner

from swarmfuse.cli import app

_runner = CliRunner()


def run_cli(*args: str) -> tuple[int, str]:
    """``swarmfuse *args``: its exit code and output; an exception other than the CLI's own exit fails the test."""
    result = _runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output
