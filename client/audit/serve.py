"""``swarmfuse audit serve``: run the audit web app (:mod:`.web`) with uvicorn.

Kept apart from :mod:`.web` so that ``swarmfuse --help`` does not import FastAPI and Jinja2.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import typer

from swarmfuse.network.cli_common import HomeOption
from swarmfuse.network.topology import AUDITOR

logger = logging.getLogger(__name__)


def loopback_hosts(bind: str) -> list[str] | None:
    """The ``Host`` headers to serve when bound to ``bind``: loopback's names when it is loopback (a page
    elsewhere cannot then read the ledger through DNS rebinding), any otherwise (``None``)."""
    try:
        loopback = bind == "localhost" or ipaddress.ip_address(bind).is_loopback
    except ValueError:
        loopback = False
    return sorted({bind, "127.0.0.1", "localhost"}) if loopback else None


def serve(
    home: Path = HomeOption,
    task: str = typer.Option(..., "--task", help="The task (channel) to audit."),
    org: str = typer.Option(AUDITOR, "--org", help="The org whose identity reads the ledger (default: the auditor)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: loopback only)."),
    port: int = typer.Option(8600, "--port", help="TCP port to listen on."),
    artefacts: Path | None = typer.Option(
        None, "--artefacts", exists=True, file_okay=False,
        help="A site folder (<home>/sites/<Org>) whose exchanged files and models verification checks against "
             "the ledger."),
) -> None:
    """Serve the task's ledger read-only over HTTP: a web page at /, a REST API under /api, its reference at /docs.

    It exposes the ledger's contents (members, summaries, rounds, exchanges and their hashes, verification
    results) read-only and without authentication to whoever can reach it: it listens on 127.0.0.1 unless
    --host says otherwise. Nothing it serves writes to the ledger.
    """
    from functools import partial

    import uvicorn

    from swarmfuse.client.audit.cli import audit_view
    from swarmfuse.client.audit.queries import AuditView
    from swarmfuse.client.audit.verify import verify_task
    from swarmfuse.client.audit.web import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    with audit_view(home, task, org):  # a wrong home, task or org, or a network that is down, fails here in one line
        pass
    app = create_app(partial(AuditView.open, home, task, org),
                     partial(verify_task, home, task, org, artefacts=artefacts),
                     allowed_hosts=loopback_hosts(host))
    logger.info("auditing task %s as %s at http://%s:%d/ (read-only)", task, org, host, port)
    uvicorn.run(app, host=host, port=port, log_level="info")
