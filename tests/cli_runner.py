"""The swarmfuse CLI as the tests call it: in-process (typer's runner) or as a command in a child process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from swarmfuse.cli import app

_runner = CliRunner()


def invoke_cli(*args: str, **options: Any) -> Result:
    """``swarmfuse *args`` in-process: the runner's result (exit code, ``output``, and ``stdout`` / ``stderr`` apart);
    an exception other than the CLI's own exit fails the test. ``options`` go to the runner (``terminal_width``...)."""
    result = _runner.invoke(app, list(args), **options)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def run_cli(*args: str) -> tuple[int, str]:
    """``swarmfuse *args`` in-process: its exit code and output (see :func:`invoke_cli`)."""
    result = invoke_cli(*args)
    return result.exit_code, result.output


def run_cli_process(*args: str, timeout: float = 300, cwd: Path | str | None = None,
                    env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m swarmfuse *args`` in a child process (its own interpreter, logging and exit), in ``cwd`` with
    ``env`` when given: the finished process, stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "swarmfuse", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env, check=False)
