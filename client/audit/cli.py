"""``swarmfuse audit members|summaries|agreement|contributions|rounds|round|exchanges|org|verify``: a task's ledger as an auditor
reads it.

Every command connects as one org's identity (``--org``, the read-only ``Auditor`` by default) and prints
rich tables, or with ``--json`` the query's pydantic models as JSON. A command added here takes the
common options (:data:`HomeOption`, :data:`TaskOption`, :data:`OrgOption`, :data:`JsonOption`) and runs
its queries inside :func:`audit_view`, which turns every anticipated failure into one red line and exit 1.
``verify`` is the exception: exit 1 there means a check failed, so a failure to verify exits with 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from swarmfuse.client.audit.serve import serve
from swarmfuse.network.cli_common import HomeOption, clean_errors
from swarmfuse.network.topology import AUDITOR

if TYPE_CHECKING:
    from swarmfuse.client.audit.queries import (
        AgreementRecord,
        AuditView,
        ExchangeRecord,
        MemberRecord,
        OrgAudit,
        PublishedSummary,
        RoundAudit,
        RoundRecord,
        SummaryRecord,
    )

app = typer.Typer(no_args_is_help=True, help="A task's ledger as an auditor reads it: members, summaries, rounds.")
console = Console()
errors = Console(stderr=True)

TaskOption = typer.Option(..., "--task", help="The task (channel) to audit.")
OrgOption = typer.Option(AUDITOR, "--org", help="The org whose identity reads the ledger.")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of tables.")

HASH = {"overflow": "fold"}  # full hashes and tx IDs in the one-record tables, folded rather than cut
SHORT = 16  # hex digits of a hash or tx ID in list tables (64 bits); --json prints them in full
CAPTION = f"hashes and tx IDs: first {SHORT} hex digits (--json prints them in full)"


@contextmanager
def audit_view(home: Path, task: str, org: str) -> Iterator[AuditView]:
    """An open :class:`AuditView`; any anticipated failure becomes one red line on stderr and exit status 1."""
    from swarmfuse.client.audit.queries import AuditView

    with clean_errors(), AuditView.open(home, task, org) as view:
        yield view


def print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    """Print a model, or a list of models, as their ``model_dump(mode="json")``."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else [v.model_dump(mode="json") for v in value]
    typer.echo(json.dumps(data, indent=2))


# --- commands -----------------------------------------------------------------------------------


@app.command()
def members(home: Path = HomeOption, task: str = TaskOption, org: str = OrgOption, as_json: bool = JsonOption) -> None:
    """Every org that registered in the task: status, modalities, and when (which transaction) it joined."""
    with audit_view(home, task, org) as view:
        found = view.members()
    if as_json:
        print_json(found)
    else:
        console.print(members_table(found, task))


@app.command()
def summaries(home: Path = HomeOption, task: str = TaskOption, org: str = OrgOption, as_json: bool = JsonOption) -> None:
    """What each DC declared about its data, per modality: counts, fingerprints, extractor hash, versions."""
    with audit_view(home, task, org) as view:
        found = view.summaries()
    if as_json:
        print_json(found)
    else:
        console.print(summaries_table(found, f"data summaries of {task}"))


@app.command()
def agreement(home: Path = HomeOption, task: str = TaskOption, org: str = OrgOption,
              as_json: bool = JsonOption) -> None:
    """The terms every founder confirmed and that rounds follow, and every earlier version of them."""
    with audit_view(home, task, org) as view:
        found = view.agreement()
    if as_json:
        print_json(found)
    elif found.in_force is None:
        console.print(f"no terms are in force in {task}: the founders have agreed none (Agreement:Propose, then "
                      "Agreement:Confirm by every founder)", highlight=False)
    else:
        console.print(agreement_table(found.in_force, found.history))


@app.command()
def contributions(home: Path = HomeOption, task: str = TaskOption, org: str = OrgOption,
                  as_json: bool = JsonOption) -> None:
    """Each round's contribution table: every player's Shapley and leave-one-out value, the units each participant
    was credited, and each org's units in all."""
    with audit_view(home, task, org) as view:
        found = view.contributions()
    if as_json:
        print_json(found)
        return
    if not found.rounds:
        console.print(f"no round of {task} published a contribution table", highlight=False)
        return
    for audit in found.rounds:
        console.print(contribution_table(audit))
    totals = _table(f"units credited in {task}", "org", ("units", {"justify": "right"}), caption=None)
    for name, units in found.totals.items():
        totals.add_row(name, str(units))
    console.print(totals)


@app.command()
def rounds(home: Path = HomeOption, task: str = TaskOption, org: str = OrgOption, as_json: bool = JsonOption) -> None:
    """Every round: state, participants, leader, the fused model's hash and who acknowledged it."""
    with audit_view(home, task, org) as view:
        found = view.rounds()
    if as_json:
        print_json(found)
    else:
        console.print(rounds_table(found, task))


@app.command("round")
def round_command(round_id: str = typer.Argument(..., help="The round ID."), home: Path = HomeOption,
                  task: str = TaskOption, org: str = OrgOption, as_json: bool = JsonOption) -> None:
    """One round: its record, every state it went through, the alignment, exchanges and acknowledgements."""
    with audit_view(home, task, org) as view:
        found = view.round(round_id)
    if as_json:
        print_json(found)
    else:
        for renderable in round_tables(found):
            console.print(renderable)


@app.command()
def exchanges(round_id: str = typer.Argument(..., help="The round ID."), home: Path = HomeOption,
              task: str = TaskOption, org: str = OrgOption, as_json: bool = JsonOption) -> None:
    """The off-chain exchanges of one round: sender, receiver, kind, SHA-256, size and transaction."""
    with audit_view(home, task, org) as view:
        found = view.exchanges(round_id)
    if as_json:
        print_json(found)
    else:
        console.print(exchanges_table(found, f"exchanges of round {round_id}"))


@app.command("org")
def org_command(name: str = typer.Argument(..., help="The org: its name (DC1) or MSP ID (DC1MSP)."),
                home: Path = HomeOption, task: str = TaskOption, org: str = OrgOption,
                as_json: bool = JsonOption) -> None:
    """One org: its membership record, its summaries and every write transaction it made."""
    with audit_view(home, task, org) as view:
        found = view.org(name)
    if as_json:
        print_json(found)
    else:
        for renderable in org_tables(found):
            console.print(renderable)


app.command()(serve)  # the read-only web page and REST API (client/audit/serve.py)

VERIFY_ERROR = 2
"""Exit status of ``verify`` when it could not verify (no network, task or org, unreachable peer, unreadable
input); 1 means it verified and a check failed."""


@app.command()
def verify(home: Path = HomeOption,
           task: str | None = typer.Option(None, "--task", help="The task (channel) to audit; with --bundle, the "
                                           "bundle's."),
           org: str | None = typer.Option(None, "--org", help="The org whose identity reads the ledger (default the "
                                          "read-only Auditor); with --bundle, the bundle's."),
           bundle: Path | None = typer.Option(None, "--bundle", help="An org's bundle ('swarmfuse network bundle'): "
                                              "verify from it alone, on a host without the network home."),
           artefacts: Path | None = typer.Option(None, "--artefacts", help="A site folder (<home>/sites/<Org>) whose "
                                                 "files to check against the on-chain exchange and model records."),
           out: Path = typer.Option(Path("verify-report"), "--out", help="Write report.html and report.json here."),
           as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables.")) -> None:
    """Check the ledger end to end: every block from genesis (hash chain, data hash, orderer signatures, commit
    hash, config updates), every transaction (creator, endorsements, policies, validation code), the chaincode
    state against the writes, and a site folder's artefacts against their records. Writes report.html and
    report.json to --out. Exit status 0 when every check passed, 1 when a check failed, 2 when the ledger could
    not be verified (no network, unknown task or org, unreachable peer, unreadable folder, changed bundle). With
    --bundle it runs from an org's bundle (an auditor's host holds its own, no network home), its genesis block
    the one block 0 is checked against."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from swarmfuse.client.audit.report import failures_table, summary_table, write_report
    from swarmfuse.client.audit.verify import verify_bundle, verify_task
    from swarmfuse.errors import SwarmfuseError

    def fail(message: object) -> typer.Exit:
        errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        return typer.Exit(VERIFY_ERROR)

    if artefacts is not None and not artefacts.is_dir():
        raise fail(f"--artefacts {artefacts}: not a folder")
    if bundle is None and task is None:
        raise fail("give --task (or --bundle)")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=errors, transient=True) as progress:
        bar = progress.add_task(f"blocks of {task or 'the task'}", total=None)

        def advance(number: int, newest: int) -> None:
            progress.update(bar, completed=number + 1, total=newest + 1)

        try:
            if bundle is not None:
                found = verify_bundle(bundle, task=task, org=org, artefacts=artefacts, progress=advance)
            else:
                assert task is not None
                found = verify_task(home, task, org or AUDITOR, artefacts=artefacts, progress=advance)
        except (SwarmfuseError, OSError, ValueError) as exc:
            raise fail(exc) from None
    try:
        html_path, json_path = write_report(found, out)
    except OSError as exc:
        raise fail(f"cannot write the report to {out}: {exc}") from None
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
    else:
        if not found.ok:
            console.print(failures_table(found))
        console.print(summary_table(found))
        s = found.summary
        console.print(f"[bold green]verified[/]: {s.passed} checks passed, {s.skipped} skipped, {s.info} informational"
                      if found.ok else f"[bold red]{s.failed} check{'' if s.failed == 1 else 's'} failed[/] "
                      f"({s.passed} passed, {s.skipped} skipped, {s.info} informational)", highlight=False)
    errors.print(f"report: {html_path} and {json_path}", highlight=False, soft_wrap=True)
    if not found.ok:
        raise typer.Exit(1)


# --- tables -------------------------------------------------------------------------------------


def when(moment: datetime | None) -> str:
    """A ledger time as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def short(value: str | None) -> str:
    """A hash or tx ID cut to its first :data:`SHORT` hex digits."""
    return "" if not value else value if len(value) <= SHORT else value[:SHORT] + "…"


def _table(title: str, *columns: str | tuple[str, dict[str, Any]], caption: str | None = CAPTION) -> Table:
    table = Table(title=title, caption=caption)
    for column in columns:
        name, options = column if isinstance(column, tuple) else (column, {})
        table.add_column(name, **options)
    return table


def members_table(found: Sequence[MemberRecord], task: str) -> Table:
    table = _table(f"members of {task}", "org", "name", "status", "modalities", "registered (UTC)",
                   "registration tx", "TLS fingerprint")
    for m in found:
        table.add_row(m.org, m.name, m.status, ", ".join(m.modalities), when(m.registered_at), short(m.registered_tx),
                      short(m.tls_fingerprint))
    return table


def summaries_table(found: Sequence[PublishedSummary], title: str) -> Table:
    table = _table(title, "org", "modality", "version", ("entities", {"justify": "right"}),
                   ("feature dim", {"justify": "right"}), "manifest fingerprint", "extractor", "extractor SHA-256",
                   "labels", "extractor provenance", "published (UTC)", "tx")
    for s in found:
        v = s.latest
        labels, provenance = provenance_text(v)
        table.add_row(v.org, v.modality, f"{v.version} of {len(s.history)}", str(v.entity_count), str(v.feature_dim), short(v.manifest_sha256),
                      v.extractor, short(v.extractor_onnx_sha256), labels, provenance, when(v.published_at),
                      short(v.tx_id))
    return table


def provenance_text(summary: SummaryRecord) -> tuple[str, str]:
    """Whose labels shaped the summary's extractor, and the rest of its provenance, as short text."""
    p = summary.extractor_provenance
    if p is None:
        return ("" if summary.labels is not None else "unknown"), ""
    parts = [p.recipe] + [f"{name} {short(value)}" for name, value in (
        ("data", p.data_sha256), ("corpus", p.corpus_sha256), ("teacher", p.teacher_sha256),
        ("weights", p.weights_sha256), ("parent", p.parent_sha256)) if value]
    if p.split_round:
        parts.append(f"split round {p.split_round}")
    return p.labels, ", ".join(parts)


def agreement_table(found: AgreementRecord, history: Sequence[AgreementRecord]) -> Table:
    """The terms in force, in full, and the versions before them by hash."""
    table = _table(f"agreement version {found.version}", "field", ("value", HASH), caption=None)
    reward = found.reward
    rows = [("SHA-256", found.agreement_sha256), ("model spec SHA-256", found.model_spec_sha256),
            ("fusion method", found.fusion_method),
            ("extractors", "; ".join(f"{m}: {p}" for m, p in sorted(found.extractors.items()))),
            ("purpose", found.purpose), ("exchange kinds", ", ".join(found.exchange_kinds)),
            ("retention", f"{found.retention_days} days"),
            ("reward", (f"{reward.get('method')} over {reward.get('metric')} (seeds {reward.get('seeds', [0])}), "
                       f"{reward.get('units_per_round')} units a round, {reward.get('label_holder_share_percent')} % "
                       "to the label holder")),
            ("privacy", _privacy_text(found.privacy)),
            ("legal text SHA-256", found.legal_text_sha256), ("confirmed by", ", ".join(found.confirmed_by)),
            ("in force since (UTC)", when(found.activated_at)), ("tx", found.tx_id),
            ("earlier versions", ", ".join(f"{a.version}: {short(a.agreement_sha256)}" for a in history
                                           if a.version != found.version) or "none")]
    for field, value in rows:
        table.add_row(field, value)
    return table


def _privacy_text(privacy: dict[str, Any] | None) -> str:
    if not privacy:
        return "none: releases are not differentially private"
    return (f"{', '.join(privacy['kinds'])} as Gaussian DP releases: epsilon {privacy['release_epsilon']} each, at most "
            f"{privacy['budget_epsilon']} per site and data set (sigma {privacy['budget_sigma']}), delta "
            f"{privacy['delta']}, clip {privacy['clip']}, {privacy['projection_dim']} dimensions")


def contribution_table(audit: RoundAudit) -> Table:
    """One round's values per participant, from its contribution table, and the units it was credited."""
    c, r = audit.contribution, audit.record
    assert c is not None
    credited = {credit.org: credit.units for credit in audit.credits}
    how = "exact" if c.exact else "sampled"
    table = _table(f"contributions to round {r.round_id} ({r.state}): {c.metric}, seeds {c.seeds}, {how} Shapley",
                   "org", "role", ("Shapley", {"justify": "right"}), ("share", {"justify": "right"}),
                   ("leave-one-out", {"justify": "right"}), ("units due", {"justify": "right"}),
                   ("credited", {"justify": "right"}),
                   caption=f"table {short(c.table_sha256)}, {len(c.coalitions)} coalitions, tx {short(c.tx_id)}; "
                           f"units by {c.method or 'no agreement'} from a pool of {c.pool}")
    for name in r.participants:
        role = ", ".join(r.roles.get(name, [])) + (" (labels)" if name == r.label_holder else "")
        if name in c.shapley:
            values = (_decimal(c.shapley[name]), f"{c.share(name):.0%}", _decimal(c.leave_one_out[name]))
        else:
            values = ("", "", "")
        table.add_row(name, role, *values, str(c.units.get(name, "")), str(credited.get(name, "")))
    return table


def _decimal(ratio: str) -> str:
    """An exact ``p/q`` value, to four decimals, the exact text beside it when it is not one already."""
    value = Fraction(ratio)
    text = f"{float(value):+.4f}"
    return text if Fraction(text) == value else f"{text} ({ratio})"


def rounds_table(found: Sequence[RoundRecord], task: str) -> Table:
    table = _table(f"rounds of {task}", "round", "state", "participants", "leader", "opened (UTC)", "model SHA-256",
                   "acknowledged by")
    for r in found:
        table.add_row(r.round_id, r.state, ", ".join(r.participants), r.leader, when(r.opened_at),
                      short(r.model_sha256), ", ".join(sorted(r.acknowledgements)))
    return table


def exchanges_table(found: Sequence[ExchangeRecord], title: str) -> Table:
    table = _table(title, "sender", "receiver", "kind", ("bytes", {"justify": "right"}),
                   ("entities", {"justify": "right"}), "SHA-256", "extractor SHA-256", "DP release", "recorded (UTC)",
                   "tx")
    for e in found:
        dp = f"epsilon {e.privacy['epsilon']}, sigma {e.privacy['noise_multiplier']}" if e.privacy else ""
        table.add_row(e.sender, e.receiver, e.kind, str(e.bytes), str(e.entity_count), short(e.sha256),
                      short(e.extractor_onnx_sha256), dp, when(e.recorded_at), short(e.tx_id))
    return table


def round_tables(found: RoundAudit) -> list[Table]:
    """The round's record, its history timeline, its exchanges and its acknowledgements."""
    r = found.record
    record = _table(f"round {r.round_id}", "field", ("value", HASH), caption=None)
    rows = [("state", r.state), ("participants", ", ".join(r.participants)),
            ("roles", "; ".join(f"{o}: {', '.join(m)}" for o, m in sorted(r.roles.items()))),
            ("label holder", r.label_holder), ("method", r.method), ("split-learning epochs", str(r.split_epochs)),
            ("leader", r.leader),
            ("past leaders", ", ".join(r.past_leaders)), ("opened by", r.opened_by),
            ("opened (UTC)", when(r.opened_at)), ("open tx", r.open_tx), ("deadline (UTC)", when(r.deadline)),
            ("model spec SHA-256", r.model_spec_sha256), ("model SHA-256", r.model_sha256 or ""),
            ("contribution table SHA-256", r.contribution_sha256 or ""),
            ("metrics", json.dumps(r.metrics, sort_keys=True) if r.metrics else "")]
    if found.alignment is not None:
        a = found.alignment
        rows += [("aligned entities", str(a.entity_count)), ("alignment commitment", a.commitment_sha256),
                 ("alignment tx", a.tx_id)]
    if r.abort_reason:
        rows += [("abort votes", ", ".join(r.abort_votes)), ("abort reason", r.abort_reason)]
    for name, value in rows:
        record.add_row(name, value)
    history = _table(f"history of round {r.round_id}", "time (UTC)", "tx", "state", "leader", "model SHA-256")
    for h in found.history:
        value = h.value
        history.add_row(when(h.timestamp), short(h.tx_id), "deleted" if value is None else value.state,
                        "" if value is None else value.leader, "" if value is None else short(value.model_sha256))
    acks = _table(f"acknowledgements of round {r.round_id}", "org", "model SHA-256", "time (UTC)", "tx")
    for k in found.acknowledgements:
        acks.add_row(k.org, short(k.model_sha256), when(k.acknowledged_at), short(k.tx_id))
    tables = [record, history, exchanges_table(found.exchanges, f"exchanges of round {r.round_id}"), acks]
    return tables + ([contribution_table(found)] if found.contribution is not None else [])


def org_tables(found: OrgAudit) -> list[Table]:
    """The org's membership record, its summaries and its activity."""
    m = found.member
    record = _table(f"org {m.org}", "field", ("value", HASH), caption=None)
    for name, value in [("name", m.name), ("status", m.status), ("modalities", ", ".join(m.modalities)),
                        ("endpoint", m.endpoint), ("TLS fingerprint", m.tls_fingerprint),
                        ("registered (UTC)", when(m.registered_at)), ("registration tx", m.registered_tx or ""),
                        ("updated (UTC)", when(m.updated_at)), ("epoch", str(m.epoch))]:
        record.add_row(name, value)
    activity = _table(f"transactions of {m.org}", "time (UTC)", "function", "tx", "keys written")
    for a in found.activity:
        activity.add_row(when(a.timestamp), a.function, short(a.tx_id), ", ".join(a.keys))
    return [record, summaries_table(found.summaries, f"data summaries of {m.org}"), activity]
