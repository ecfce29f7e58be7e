"""Fixture ``db_url``: each database the site store's tests run on, and a summary line of what ran on which.

SQLite always (a file in the test's tmp dir); PostgreSQL too when ``SWARMFUSE_TEST_POSTGRES_URL`` names a
database (scripts/test.sh starts a throwaway server on loopback and sets it). A non-SQLite database must be a
throwaway one: each test starts by dropping every table in it. The summary ("site store: N passed on SQLite
3.x, N passed on PostgreSQL 15.x") names the server version each database answered with.

A plugin of ``tests/conftest.py`` (``pytest_plugins``), as tests/round_job.py is, so that its hooks need no
second ``conftest`` module.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter

import pytest
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import make_url

POSTGRES_URL_ENV = "SWARMFUSE_TEST_POSTGRES_URL"
DATABASE_URLS: list[str] = ["sqlite:///{tmp}/site.sqlite"]
if os.environ.get(POSTGRES_URL_ENV):
    DATABASE_URLS.append(os.environ[POSTGRES_URL_ENV])

_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
_backend_of: dict[str, str] = {}  # test node ID -> backend name
_versions: dict[str, str] = {}  # backend name -> server version
_passed: Counter[str] = Counter()


def _url_id(url: str) -> str:
    parsed = make_url(url.replace("{tmp}", "/tmp"))
    return parsed.get_backend_name() + (f"-{parsed.host}" if parsed.host else "")


def _drop_everything(url: str) -> str:
    """Drop every table of the database at ``url``; its server's version."""
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
        if engine.dialect.name == "sqlite":
            return sqlite3.sqlite_version
        return ".".join(map(str, engine.dialect.server_version_info or ()))
    finally:
        engine.dispose()


@pytest.fixture(params=DATABASE_URLS, ids=_url_id)
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """An empty database of each kind (``{tmp}`` in a URL is the test's tmp dir)."""
    url = request.param.replace("{tmp}", str(tmp_path))
    backend = make_url(url).get_backend_name()
    _versions[backend] = _drop_everything(url)
    _backend_of[request.node.nodeid] = backend
    return url


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and report.nodeid in _backend_of:
        _passed[_backend_of[report.nodeid]] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _backend_of:
        return
    parts = [f"{count} passed on {_NAMES.get(name, name)} {_versions.get(name, '')}".rstrip()
             for name, count in sorted(_passed.items(), key=lambda item: item[0] != "sqlite")]
    if not any(url.startswith("postgresql") for url in DATABASE_URLS):
        parts.append(f"PostgreSQL not tested ({POSTGRES_URL_ENV} unset)")
    terminalreporter.write_line(f"site store: {', '.join(parts) or 'none passed'}")
