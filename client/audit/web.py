"""``swarmfuse audit serve``: the auditor's read-only REST API and web page over one task's ledger.

:func:`create_app` builds a FastAPI app from an :class:`~swarmfuse.client.audit.queries.AuditView`
factory and a verifier (both injectable, so tests can pass fakes):

- ``GET /api/members``, ``/api/summaries``, ``/api/rounds``, ``/api/rounds/{id}``,
  ``/api/rounds/{id}/exchanges``, ``/api/orgs/{org}``: the queries of :class:`AuditView` as JSON;
- ``POST /api/verify`` runs the verification and returns its report (only with the header
  ``X-Swarmfuse-Audit: verify``, which a page of another site cannot send without this server's consent, so
  such a page cannot make it run verifications); ``GET /api/verify/latest`` returns the last one this server ran;
- ``GET /`` the page (server-rendered, filters ``?org=...&round=...``), ``GET /docs`` the API reference
  and ``GET /openapi.json`` the OpenAPI document.

Nothing writes to the ledger. Errors are JSON ``{"detail": "..."}``: 404 for an unknown round or org,
503 when the ledger cannot be reached, 502 when it refuses a query or answers what this client cannot read.
The page and its assets are self-contained (no external URL), so it works without internet access.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import grpc
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from swarmfuse.client.audit.queries import (
    AgreementAudit,
    AuditError,
    AuditView,
    ContributionsAudit,
    ExchangeRecord,
    MemberRecord,
    OrgAudit,
    PublishedSummary,
    RoundAudit,
    RoundRecord,
    UnknownRecord,
)
from swarmfuse.client.audit.report import VerificationReport
from swarmfuse.client.gateway import ConnectError, GatewayError, IdentityError
from swarmfuse.client.gateway.errors import RpcError

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
UNREACHABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
VERIFY_HEADER = "X-Swarmfuse-Audit"  # POST /api/verify needs it (value "verify"): no cross-site form can set it
MAX_ROUND_DETAILS = 20  # rounds shown in full on an unfiltered page (newest first); a filter shows any other


class Problem(BaseModel):
    """The body of every error answer."""

    detail: str


class TimelineEvent(BaseModel):
    """One entry of a round's timeline: a state the round record went through, or a record made in it."""

    time: datetime
    kind: str = Field(description="state, alignment, exchange or acknowledgement")
    title: str
    note: str = ""
    tx_id: str


class RoundPanel(BaseModel):
    """What the page shows of one round."""

    audit: RoundAudit
    timeline: list[TimelineEvent]
    exchanges: list[ExchangeRecord]


class PageData(BaseModel):
    """Everything the page renders for one choice of filters."""

    task: str
    org: str | None
    round_id: str | None
    org_choices: list[MemberRecord]
    round_choices: list[str]
    members: list[MemberRecord]
    agreement: AgreementAudit
    summaries: list[PublishedSummary]
    rounds: list[RoundRecord]
    panels: list[RoundPanel]
    hidden_rounds: int = Field(description="rounds left out of the details on an unfiltered page")


class ViewHolder:
    """One shared :class:`AuditView`, opened on first use and reopened after the ledger was unreachable."""

    def __init__(self, factory: Callable[[], AuditView]) -> None:
        self._factory = factory
        self._view: AuditView | None = None
        self._lock = threading.Lock()

    def call(self, query: Callable[[AuditView], Any]) -> Any:
        """Run ``query`` on the view; after a failure to reach the ledger the view is closed (and reopened
        by the next call), and the error goes on."""
        try:
            return query(self._open())
        except (AuditError, GatewayError, IdentityError) as exc:
            if unreachable(exc):
                self.close()
            raise

    def _open(self) -> AuditView:
        with self._lock:
            if self._view is None:
                self._view = self._factory()
            return self._view

    def close(self) -> None:
        with self._lock:
            view, self._view = self._view, None
        if view is not None:
            view.close()


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) says the ledger could not be reached."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectError) or (isinstance(seen, RpcError) and seen.code in UNREACHABLE_CODES):
            return True
        seen = seen.__cause__
    return False


def status_of(exc: AuditError | GatewayError | IdentityError) -> int:
    """The HTTP status of a failed query: 404 no such record, 503 ledger unreachable, 502 refused or unreadable."""
    if isinstance(exc, UnknownRecord):
        return 404
    return 503 if unreachable(exc) else 502


def create_app(views: Callable[[], AuditView], verifier: Callable[[], VerificationReport], *,
               allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The audit app over the view ``views()`` opens (once, shared; reopened after a connection failure).

    ``verifier()`` runs one verification of the task's ledger (with whatever artefacts folder it was
    given) and returns its report. ``allowed_hosts`` limits the ``Host`` headers served (a defence against
    DNS rebinding when bound to loopback); ``None`` serves any.
    """
    holder = ViewHolder(views)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        holder.close()

    app = FastAPI(title="swarmfuse audit", version="1", docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Read-only queries of one task's ledger, as an auditor reads it.",
                  responses={503: {"model": Problem, "description": "the ledger cannot be reached"}})
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(when=when, size=size, short=short, fraction=lambda text: float(Fraction(text)))
    latest: list[VerificationReport] = []  # the last report this server made, if any
    running = threading.Lock()
    not_found = {404: {"model": Problem, "description": "no such round or org on the ledger"}}

    @app.exception_handler(AuditError)
    @app.exception_handler(GatewayError)
    @app.exception_handler(IdentityError)
    async def _ledger_problem(request: Request, exc: AuditError | GatewayError | IdentityError) -> JSONResponse:
        status = status_of(exc)
        if status != 404:
            logger.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(Problem(detail=_detail(status, exc)).model_dump(), status_code=status)

    @app.get("/api/members", tags=["ledger"])
    def members() -> list[MemberRecord]:
        """Every org registered in the task: status, modalities, registration time and transaction."""
        return holder.call(lambda view: view.members())

    @app.get("/api/summaries", tags=["ledger"])
    def summaries(org: str | None = None) -> list[PublishedSummary]:
        """The latest data summary of every (org, modality), each with its versions; with org, that org's only."""
        return holder.call(lambda view: view.summaries(org))

    @app.get("/api/agreement", tags=["ledger"])
    def agreement() -> AgreementAudit:
        """The terms every founder confirmed and rounds follow (``in_force`` is null while there are none), and
        every version that was in force."""
        return holder.call(lambda view: view.agreement())

    @app.get("/api/contributions", tags=["ledger"])
    def contributions() -> ContributionsAudit:
        """Every round that published a contribution table (newest first): the table, the values the chaincode
        derived from it, the credits of the closed ones; and the units each org earned in all."""
        return holder.call(lambda view: view.contributions())

    @app.get("/api/rounds", tags=["ledger"])
    def rounds() -> list[RoundRecord]:
        """Every round's current record."""
        return holder.call(lambda view: view.rounds())

    @app.get("/api/rounds/{round_id}", tags=["ledger"], responses=not_found)
    def round_detail(round_id: str) -> RoundAudit:
        """One round: its record, its history, the alignment, its exchanges and acknowledgements."""
        return holder.call(lambda view: view.round(round_id))

    @app.get("/api/rounds/{round_id}/exchanges", tags=["ledger"], responses=not_found)
    def round_exchanges(round_id: str) -> list[ExchangeRecord]:
        """The off-chain exchanges of one round: sender, receiver, kind, SHA-256, size, transaction."""
        return holder.call(lambda view: view.exchanges(round_id))

    @app.get("/api/orgs/{org}", tags=["ledger"], responses=not_found)
    def org_detail(org: str) -> OrgAudit:
        """One org (MSP ID or network name): membership, summaries and every write it made."""
        return holder.call(lambda view: view.org(org))

    @app.post("/api/verify", tags=["verification"],
              responses={403: {"model": Problem, "description": f"no {VERIFY_HEADER}: verify header"},
                         409: {"model": Problem, "description": "a verification is running already"}})
    def verify(requested: str | None = Header(None, alias=VERIFY_HEADER)) -> VerificationReport:
        """Verify the task's ledger now (it only reads) and return the report; it becomes the latest. Send the
        header ``X-Swarmfuse-Audit: verify``: a custom header needs a CORS preflight this server never grants,
        so pages of other sites cannot start verifications."""
        if requested != "verify":
            raise HTTPException(403, f"send the header '{VERIFY_HEADER}: verify' to run a verification")
        if not running.acquire(blocking=False):
            raise HTTPException(409, "a verification is running already; try again when it has finished")
        try:
            report = verifier()
            latest[:] = [report]
            logger.info("verification of %s: %d passed, %d failed in %.1f s", report.channel,
                        report.summary.passed, report.summary.failed, report.seconds)
            return report
        finally:
            running.release()

    @app.get("/api/verify/latest", tags=["verification"],
             responses={404: {"model": Problem, "description": "no verification has run yet"}})
    def verify_latest() -> VerificationReport:
        """The last verification this server ran (none survive a restart)."""
        if not latest:
            raise HTTPException(404, "no verification has run since this server started: POST /api/verify")
        return latest[0]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request, org: str | None = None,
             round_id: str | None = Query(None, alias="round")) -> HTMLResponse:
        try:
            data = holder.call(lambda view: page_data(view, org or None, round_id or None))
        except (AuditError, GatewayError, IdentityError) as exc:
            status = status_of(exc)
            title = {404: "Not on the ledger", 503: "Ledger unreachable"}.get(status, "Query failed")
            return templates.TemplateResponse(request, "error.html", {"title": title, "detail": _detail(status, exc)},
                                              status_code=status)
        return templates.TemplateResponse(request, "page.html", {"data": data, "report": latest[0] if latest else None})

    @app.get("/partials/verification", response_class=HTMLResponse, include_in_schema=False)
    def verification_partial(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "_verification.html", {"report": latest[0] if latest else None})

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "docs.html", {"spec": app.openapi()})

    return app


def page_data(view: AuditView, org: str | None, round_id: str | None) -> PageData:
    """Gather the page for the filters: ``org`` (an MSP ID) and ``round_id`` narrow what is shown."""
    members = view.members()
    if org is not None and org not in {m.org for m in members}:
        raise UnknownRecord(f"{org} has not registered in task {view.task}")
    rounds = sorted(view.rounds(), key=lambda r: r.opened_at, reverse=True)
    if round_id is not None and round_id not in {r.round_id for r in rounds}:
        raise UnknownRecord(f"no round {round_id!r} in task {view.task}")
    shown = [r for r in rounds if (round_id is None or r.round_id == round_id)
             and (org is None or org in r.participants)]
    detailed = shown if round_id is not None else shown[:MAX_ROUND_DETAILS]
    panels = [round_panel(view.round(r.round_id), org) for r in detailed]
    return PageData(
        task=view.task, org=org, round_id=round_id, org_choices=members, round_choices=[r.round_id for r in rounds],
        members=[m for m in members if org is None or m.org == org], agreement=view.agreement(),
        summaries=[s for s in view.summaries() if org is None or s.latest.org == org],
        rounds=shown, panels=panels, hidden_rounds=len(shown) - len(detailed),
    )


def round_panel(audit: RoundAudit, org: str | None) -> RoundPanel:
    """A round's timeline and its exchanges (those ``org`` sent or received, when given)."""
    exchanges = [e for e in audit.exchanges if org is None or org in (e.sender, e.receiver)]
    return RoundPanel(audit=audit, timeline=timeline(audit), exchanges=exchanges)


def timeline(audit: RoundAudit) -> list[TimelineEvent]:
    """The round's story in time order: each version of its record (its state) and each record made in it."""
    events: list[TimelineEvent] = []
    previous: RoundRecord | None = None
    for version in audit.history:
        record = version.value
        if record is None:
            events.append(TimelineEvent(time=version.timestamp, kind="state", title="deleted", tx_id=version.tx_id))
            continue
        events.append(TimelineEvent(time=version.timestamp, kind="state", title=record.state,
                                    note=_state_note(previous, record), tx_id=version.tx_id))
        previous = record
    if audit.alignment is not None:
        a = audit.alignment
        events.append(TimelineEvent(time=a.recorded_at, kind="alignment", title="entities aligned",
                                    note=f"{a.entity_count} entities, recorded by {a.leader}", tx_id=a.tx_id))
    events += [TimelineEvent(time=e.recorded_at, kind="exchange", title=f"{e.kind} sent",
                             note=f"{e.sender} → {e.receiver}, {size(e.bytes)}", tx_id=e.tx_id)
               for e in audit.exchanges]
    events += [TimelineEvent(time=k.acknowledged_at, kind="acknowledgement", title="model acknowledged",
                             note=f"by {k.org}", tx_id=k.tx_id) for k in audit.acknowledgements]
    return sorted(events, key=lambda event: event.time)


def _state_note(previous: RoundRecord | None, record: RoundRecord) -> str:
    if previous is None:
        return f"opened by {record.opened_by}; leader {record.leader}; {len(record.participants)} participants"
    notes = []
    if record.leader != previous.leader:
        notes.append(f"leader {previous.leader} → {record.leader}")
    if record.model_sha256 and record.model_sha256 != previous.model_sha256:
        notes.append(f"model {short(record.model_sha256)}")
    if record.abort_reason and record.abort_reason != previous.abort_reason:
        notes.append(f"reason: {record.abort_reason}")
    if record.state == "closed" and record.acknowledgements:
        notes.append(f"{len(record.acknowledgements)} acknowledgements")
    return "; ".join(notes)


def when(moment: datetime | None) -> str:
    """A ledger time as ``YYYY-MM-DD HH:MM:SS`` UTC (the page shows the full time on hover)."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def size(count: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    if count < 1024:
        return f"{count} B"
    value, unit = count / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def short(text: str | None, keep: int = 10) -> str:
    """The head of a hash or transaction ID, for places with no room for all of it."""
    return "" if not text else text if len(text) <= keep else f"{text[:keep]}…"


def _detail(status: int, exc: Exception) -> str:
    return f"the ledger cannot be reached: {exc}" if status == 503 else str(exc)
