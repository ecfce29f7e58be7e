"""``swarmfuse round open|status|list|abort --bundle``: a site's host that holds only its org's bundle drives rounds
from it (the multi-host test, tests/network/test_multihost.py, opens and watches a round so); here, without a
network, the refusals that come before any connection: a changed bundle (naming the file), another org or task."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_files import IDENTITY, minimal_bundle
from cli_runner import run_cli

ROUND_COMMANDS = [
    ("open", "R1", "--roles", "DC1=label,DC2=text", "--label-holder", "DC1"),
    ("status", "R1"),
    ("list",),
    ("abort", "R1", "--reason", "test"),
]


@pytest.mark.parametrize("command", ROUND_COMMANDS, ids=lambda command: command[0])
def test_a_changed_bundle_is_refused_naming_the_file(command: tuple[str, ...], tmp_path: Path) -> None:
    bundle = minimal_bundle(tmp_path / "bundle", "DC1", "task1")
    (bundle / IDENTITY).write_text("another certificate\n")
    code, output = run_cli("round", *command, "--bundle", str(bundle), "--home", str(tmp_path / "site"))
    text = " ".join(output.split())
    assert code == 1 and f"{IDENTITY} was altered" in text, output


@pytest.mark.parametrize("command", ROUND_COMMANDS, ids=lambda command: command[0])
def test_another_org_or_task_than_the_bundle_s_is_refused(command: tuple[str, ...], tmp_path: Path) -> None:
    bundle = minimal_bundle(tmp_path / "bundle", "DC1", "task1")
    code, output = run_cli("round", *command, "--bundle", str(bundle), "--org", "DC2", "--home", str(tmp_path / "s"))
    assert code == 1 and "--org DC2 is not the bundle's (DC1)" in " ".join(output.split()), output
    code, output = run_cli("round", *command, "--bundle", str(bundle), "--task", "t2", "--home", str(tmp_path / "s"))
    assert code == 1 and "--task t2 is not the bundle's (task1)" in " ".join(output.split()), output


def test_without_org_and_task_or_a_bundle_the_command_says_what_to_give(tmp_path: Path) -> None:
    code, output = run_cli("round", "status", "R1", "--home", str(tmp_path / "site"))
    assert code == 1 and "give --org and --task (or --bundle)" in output, output
