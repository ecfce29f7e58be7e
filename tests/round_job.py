"""Session fixture ``job``: the main job (``demo.run_job``) run once per ledger engine, shared by the site
and audit tests: three site agents, the Auditor in the task, one fusion round to ``closed``, and network
and agents kept running for the checks that follow (stopped at the end of the session).

A plugin of ``tests/conftest.py`` (``pytest_plugins``) rather than a ``tests/client/conftest.py``: a second
``conftest`` module would shadow the root one for every test that does ``from conftest import ...``.
Tests that alter the job's network (kill agents, open more rounds) must leave round ``config.round_id`` and
the members as they are; audit tests read only those.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import ENGINES, free_port_base, new_network

if TYPE_CHECKING:
    from swarmfuse.client.demo.job import JobConfig, JobReport


@pytest.fixture(scope="session", params=ENGINES)
def job(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[JobConfig, JobReport]]:
    """One complete round on its own network of the engine (kept running until the session ends)."""
    from swarmfuse.client.demo import job as demo
    from swarmfuse.client.demo.job import JobConfig

    root = tmp_path_factory.mktemp(f"job-{request.param}")
    config = JobConfig(out=root / "out", home=root / "home", engine=request.param, port_base=free_port_base(),
                       keep_running=True)
    try:
        yield config, demo.run_job(config)
    finally:
        for org in demo.ORGS:
            kill_agent(config.home, org)
        network = new_network(config.home, request.param)
        if network.state() is not None and network.running():
            network.down()


def agent_pids(home: Path, org: str) -> list[int]:
    """The site agent processes of ``org`` serving under ``home``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in cmd and org.encode() in cmd and str(home).encode() in cmd:
                found.append(int(entry.name))
    return found


def kill_agent(home: Path, org: str, signum: int = signal.SIGTERM) -> None:
    for pid in agent_pids(home, org):
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass
