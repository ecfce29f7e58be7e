"""The verification report of ``swarmfuse audit verify``: every check and its result, as pydantic models, and
their renderings (``report.json``; ``report.html``, one self-contained page, failures first; rich tables)."""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, computed_field
from rich.table import Table


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    INFO = "info"


class Category(StrEnum):
    BLOCKS = "blocks"
    TRANSACTIONS = "transactions"
    STATE = "state"
    ARTEFACTS = "artefacts"


class Check(BaseModel):
    """One check: what was checked (``name``) of what (``subject``), its result and why.

    ``block``, ``tx_id`` and ``record`` locate the subject when it has them (the block and transaction of a
    transaction check, of the last write of a state key, or the on-chain record an artefact is checked
    against, e.g. ``exchange round-1 DC2MSP->DC1MSP features``)."""

    model_config = ConfigDict(frozen=True)

    category: Category
    name: str
    subject: str
    status: Status
    detail: str = ""
    block: int | None = None
    tx_id: str | None = None
    record: str | None = None


class Summary(BaseModel):
    model_config = ConfigDict(frozen=True)

    passed: int
    failed: int
    skipped: int
    info: int


class VerificationReport(BaseModel):
    """The result of verifying one channel: where and when, and every check (``ok`` when none failed)."""

    channel: str
    chaincode: str
    engine: str | None = None
    identity: str
    newest_block: int
    artefacts: str | None = None
    started_at: datetime
    seconds: float
    checks: list[Check]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return all(check.status != Status.FAIL for check in self.checks)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> Summary:
        counts = Counter(check.status for check in self.checks)
        return Summary(passed=counts[Status.PASS], failed=counts[Status.FAIL], skipped=counts[Status.SKIP],
                       info=counts[Status.INFO])

    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.status == Status.FAIL]

    def counts(self) -> dict[tuple[Category, str], Counter[Status]]:
        """Per (category, check name), how many checks had each status; by category, then in the order the
        checks ran."""
        table: dict[tuple[Category, str], Counter[Status]] = {}
        for check in sorted(self.checks, key=lambda c: list(Category).index(c.category)):
            table.setdefault((check.category, check.name), Counter())[check.status] += 1
        return table


def write_report(report: VerificationReport, folder: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``folder`` (created if needed); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "report.json", folder / "report.html"
    json_path.write_text(report.model_dump_json(indent=2) + "\n")
    html_path.write_text(render_html(report))
    return html_path, json_path


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:76rem;padding:0 1rem;
color:#1d2329;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem}
.verdict{display:inline-block;padding:.25rem .8rem;border-radius:.4rem;font-weight:700;color:#fff}
.ok{background:#1f7a3d}.bad{background:#b42318}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.5rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#f4f6f8}.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,monospace;font-size:.82rem;word-break:break-word}
td.mono span{white-space:nowrap}
.status{font-weight:700;text-transform:uppercase;font-size:.75rem;white-space:nowrap}
.pass{color:#1f7a3d}.fail{color:#b42318}.skip{color:#8a5a00}.info{color:#3d5a80}
tr.fail td{background:#fdecea}
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{color:#5b6670}dd{margin:0}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _rows(checks: list[Check]) -> str:
    rows = []
    for c in checks:
        block = "" if c.block is None else str(c.block)
        tx = f'<span title="{_e(c.tx_id)}">{_e(c.tx_id[:16])}…</span>' if c.tx_id else ""
        rows.append(f'<tr class="{c.status.value}"><td class="status {c.status.value}">{c.status.value}</td>'
                    f"<td>{_e(c.name)}</td><td class=mono>{_e(c.subject)}</td><td>{_e(c.detail)}</td>"
                    f'<td class=mono>{_e(c.record or "")}</td><td class=num>{block}</td><td class=mono>{tx}</td></tr>')
    return ("<table><tr><th>result</th><th>check</th><th>subject</th><th>detail</th><th>on-chain record</th>"
            "<th class=num>block</th><th>tx</th></tr>" + "".join(rows) + "</table>")


def render_html(report: VerificationReport) -> str:
    """One self-contained page (inline CSS, no scripts or external assets): verdict, failures first, a
    summary per check, then every check by category (collapsed unless it holds a failure)."""
    s = report.summary
    verdict = ('<span class="verdict ok">VERIFIED</span>' if report.ok
               else f'<span class="verdict bad">{s.failed} CHECK{"S" if s.failed != 1 else ""} FAILED</span>')
    meta = [("channel", report.channel), ("chaincode", report.chaincode), ("engine", report.engine or "unknown"),
            ("read as", report.identity), ("blocks", f"0 .. {report.newest_block}"),
            ("artefacts", report.artefacts or "not checked"),
            ("verified at", report.started_at.isoformat(timespec="seconds")), ("took", f"{report.seconds:.2f} s"),
            ("checks", f"{s.passed} passed, {s.failed} failed, {s.skipped} skipped, {s.info} informational")]
    parts = [(f"<!doctype html><html lang=en><head><meta charset=utf-8><title>verify {_e(report.channel)}</title>"
             f"<style>{_CSS}</style></head><body>"),
             f"<h1>Ledger verification of channel <code>{_e(report.channel)}</code></h1><p>{verdict}</p>",
             "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta) + "</dl>"]
    failures = report.failures()
    if failures:
        parts.append(f"<h2>Failures ({len(failures)})</h2>{_rows(failures)}")
    summary_rows = "".join(
        f"<tr><td>{_e(category.value)}</td><td>{_e(name)}</td>"
        + "".join(f'<td class="num {status.value}">{counter[status] or ""}</td>' for status in Status)
        + "</tr>"
        for (category, name), counter in sorted(report.counts().items(), key=lambda row: not row[1][Status.FAIL]))
    parts.append("<h2>Summary</h2><table><tr><th>category</th><th>check</th>"
                 + "".join(f"<th class=num>{status.value}</th>" for status in Status) + f"</tr>{summary_rows}</table>")
    parts.append("<h2>Every check</h2>")
    for category in Category:
        checks = [c for c in report.checks if c.category == category]
        if not checks:
            continue
        failed = sum(c.status == Status.FAIL for c in checks)
        ordered = sorted(checks, key=lambda c: c.status != Status.FAIL)
        label = f"{category.value}: {len(checks)} checks" + (f", {failed} failed" if failed else "")
        parts.append(f"<details{' open' if failed else ''}><summary>{_e(label)}</summary>{_rows(ordered)}</details>")
    parts.append("</body></html>\n")
    return "".join(parts)


_STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.SKIP: "yellow", Status.INFO: "cyan"}


def summary_table(report: VerificationReport) -> Table:
    """Per check, how many passed, failed, were skipped or informational; checks with failures first."""
    s = report.summary
    table = Table(title=f"verification of {report.channel}: blocks 0..{report.newest_block}, {len(report.checks)} "
                        f"checks in {report.seconds:.1f} s",
                  caption=f"{s.passed} passed, {s.failed} failed, {s.skipped} skipped, {s.info} informational")
    for column in ("category", "check", *(status.value for status in Status)):
        table.add_column(column, justify="left" if column in ("category", "check") else "right")
    rows = sorted(report.counts().items(), key=lambda row: not row[1][Status.FAIL])  # stable: else as they ran
    for (category, name), counter in rows:
        table.add_row(category.value, name, *(f"[{_STYLE[status]}]{counter[status]}[/]" if counter[status] else ""
                                              for status in Status))
    return table


def failures_table(report: VerificationReport) -> Table:
    """Every failed check: what, of what, where and why."""
    failed = report.summary.failed
    table = Table(title=f"{failed} failed check{'' if failed == 1 else 's'}", title_style="bold red",
                  caption="tx IDs: first 16 hex digits (report.json has them in full)")
    for column in ("check", "subject", "block", "tx", "on-chain record", "detail"):
        table.add_column(column, overflow="fold")
    for c in report.failures():
        tx = "" if not c.tx_id else c.tx_id if len(c.tx_id) <= 16 else c.tx_id[:16] + "…"
        table.add_row(c.name, c.subject, "" if c.block is None else str(c.block), tx, c.record or "", c.detail)
    return table
