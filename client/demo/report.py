"""The main job's report: the fused model against the single-modality and other fusion baselines in each extractor
regime (:mod:`swarmfuse.client.demo.regimes`), each participant's contribution and credit, the time of every stage,
what went on-chain against what went off-chain, and the round's ledger history.
Written as ``report.json``, ``report.html`` (self-contained, no network access) and ``methods.png``."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from swarmfuse.client.demo.job import JobReport

BASELINES = ("text_only", "image_only", "early", "late", "intermediate")
LABELS = {"early": "early (every site's raw inputs in one place: a reference)"}


def fused_scores(report: JobReport) -> dict[str, float]:
    metrics = report.round.get("metrics") or {}
    return {"accuracy": float(metrics.get("test_accuracy", 0.0)), "macro_f1": float(metrics.get("test_macro_f1", 0.0))}


def scored_on(report: JobReport) -> str:
    """Which entities every row of the report is measured on."""
    n = report.baseline_entities
    return (f"every method is scored on the round's {n.get('test', 0)} aligned test entities; the baselines are "
            f"trained centrally on its {n.get('train', 0)} aligned training and {n.get('val', 0)} validation entities, "
            f"as the round's model is")


LABELLED_EXTRACTORS = ("the extractors were trained centrally with the label holder's labels before the round: a "
                       "reference the vertical setting forbids (the sites holding texts and images hold no labels)")


def regimes_note(report: JobReport) -> str:
    """What the round's extractors were, and how the forbidden reference regime (c) enters the report."""
    from swarmfuse.client.demo.regimes import REGIMES

    if report.round_regime == "c":
        return f"caution: {LABELLED_EXTRACTORS}"
    note = f"the round's model is regime ({report.round_regime}), {REGIMES[report.round_regime]}; no label left DC1"
    if "b" in report.regimes:
        note += " except through the split-learning gradients DC1 sent back (they carry label information)"
    if "c" in report.regimes:
        return note + "; regime (c) is a yardstick the vertical setting forbids, never the product's result"
    return note + "; regime (c), the reference trained with DC1's labels, was not computed (--reference adds it)"


def regime_rows(report: JobReport) -> list[tuple[str, list[str]]]:
    """Per method, its accuracy / macro-F1 in each regime of the report (in regime order)."""
    order = sorted(report.regimes)
    rows = []
    for method in BASELINES:
        cells = []
        for regime in order:
            found = report.regimes[regime].methods.get(method)
            cells.append(f"{found['accuracy']:.3f} / {found['macro_f1']:.3f}" if found else "")
        rows.append((LABELS.get(method, method.replace("_", " ")), cells))
    return rows


def contribution_rows(report: JobReport) -> list[tuple[str, str, str, str, str, str]]:
    """Per participant: its role, the feature block's score alone, Shapley and leave-one-out values (4 decimals),
    and the units it was credited."""
    from fractions import Fraction

    c = report.contribution
    if not c:
        return []
    alone = {tuple(k["members"]): k["scores"][0] for k in c["coalitions"]}
    rows = []
    for org in report.round.get("participants", []):
        role = ", ".join(report.round.get("roles", {}).get(org, []))
        if org in c["shapley"]:
            values = (alone.get((org,), ""), f"{float(Fraction(c['shapley'][org])):+.4f}",
                      f"{float(Fraction(c['leave_one_out'][org])):+.4f}")
        else:
            values = ("", "", "")
        rows.append((org, role, *values, str(report.credits.get(org, ""))))
    return rows


def _chart(report: JobReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(report.regimes)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / max(len(order), 1)
    for k, regime in enumerate(order):
        methods = report.regimes[regime].methods
        xs = [i + k * width for i, m in enumerate(BASELINES) if m in methods]
        bars = ax.bar(xs, [methods[m]["accuracy"] for m in BASELINES if m in methods], width,
                      label=f"({regime})", color=["#a0aec0", "#2b6cb0", "#c05621"][k % 3])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(fused_scores(report)["accuracy"], color="#2f855a", linestyle="--", label="fused round (ledger)")
    ax.set_xticks([i + width * (len(order) - 1) / 2 for i in range(len(BASELINES))],
                  [m.replace("_", " ") for m in BASELINES])
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("emoji groups, the round's aligned test entities, by extractor regime")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: JobReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({**asdict(report), "ledger_share": report.ledger_share}, indent=1,
                                                default=str) + "\n")
    _chart(report, out / "methods.png")
    from swarmfuse.client.demo.regimes import REGIMES

    fused = fused_scores(report)
    e = html.escape
    order = sorted(report.regimes)
    heads = "".join(f"<th>({r}) {e(REGIMES[r])}</th>" for r in order)
    methods = f"<tr><th>method</th>{heads}</tr>" + "".join(
        f"<tr><td>{e(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        for name, cells in regime_rows(report))
    stages = "".join(f"<tr><td>{e(n)}</td><td>{s:.1f} s</td></tr>" for n, s in report.stages.items())
    exchanges = "".join(
        f"<tr><td>{e(x['sender'])}</td><td>{e(x['receiver'])}</td><td>{e(x['kind'])}</td><td>{x['bytes']}</td>"
        f"<td>{x['entity_count']}</td><td><code>{e(x['sha256'])}</code></td></tr>" for x in report.exchanges)
    history = "".join(
        f"<tr><td>{e(str(h.get('timestamp', '')))}</td><td><code>{e(str(h.get('tx_id', ''))[:16])}</code></td>"
        f"<td>{e(str((h.get('value') or {}).get('state', 'deleted')))}</td></tr>" for h in report.history)
    contributions = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>"
                            for row in contribution_rows(report))
    c = report.contribution
    contribution_note = (f"{e(c['metric'])} with seeds {e(str(c['seeds']))}; units by {e(str(c['method']))} from a pool "
                         f"of {c['pool']}; table SHA-256 <code>{e(c['table_sha256'])}</code>, accepted by every "
                         f"acknowledgement" if c else "the round published no contribution table")
    ledger_sites = ", ".join(f"{org}: {t['ledger_s']:.2f} s of {t['busy_s']:.2f} s busy"
                             for org, t in sorted(report.ledger_time.items()))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>swarmfuse round report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#1a202c}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #cbd5e0;padding:.3em .6em;text-align:left}}
th{{background:#edf2f7}}code{{font-size:.85em}}</style></head><body>
<h1>Round {e(report.round.get('round_id', ''))}: {e(report.round.get('state', ''))}</h1>
<p>Engine: {e(report.engine)}. Leader: {e(report.round.get('leader', ''))}. Participants:
{e(', '.join(report.round.get('participants', [])))}. Image backbone: {e(report.backbone)}.
Model SHA-256: <code>{e(str(report.round.get('model_sha256')))}</code>, acknowledged by
{e(', '.join(sorted(report.round.get('acknowledgements', {}))))}.</p>
<h2>Accuracy on the test split</h2>
<p>The fused round's model (on the ledger): accuracy {fused['accuracy']:.3f}, macro-F1 {fused['macro_f1']:.3f}.</p>
<img src="methods.png" alt="accuracy by method and extractor regime">
<table>{methods}</table>
<p>Accuracy / macro-F1. Baselines are computed centrally for reference: {e(scored_on(report))}. The fused round's
model was trained by the leader on features the other sites sent, never on their raw data; {e(regimes_note(report))}.
</p>
<h2>Contributions</h2><p>Each feature block's value to the fused model on the round's test rows, computed by the
chaincode from the leader's contribution table: {contribution_note}.</p>
<table><tr><th>participant</th><th>role</th><th>block alone</th><th>Shapley</th><th>leave-one-out</th>
<th>units credited</th></tr>{contributions}</table>
<h2>On-chain and off-chain</h2><table><tr><th></th><th>on-chain</th><th>off-chain</th></tr>
<tr><td>bytes</td><td>{report.on_chain.get('bytes', 0)}</td><td>{report.off_chain_bytes}</td></tr>
<tr><td>blocks / transactions</td><td>{report.on_chain.get('blocks', 0)} / {report.on_chain.get('transactions', 0)}</td>
<td>{len(report.exchanges)} exchanges + model downloads</td></tr></table>
<h2>Exchanges</h2><table><tr><th>sender</th><th>receiver</th><th>kind</th><th>bytes</th><th>entities</th>
<th>SHA-256</th></tr>{exchanges}</table>
<h2>Stages</h2><table>{stages}</table>
<p>Ledger operations took at most {report.ledger_share:.1%} of the round's wall time at any site
({e(ledger_sites)}).</p>
<h2>Ledger history of the round</h2><table><tr><th>time</th><th>transaction</th><th>state</th></tr>{history}</table>
</body></html>"""
    (out / "report.html").write_text(page)


def print_summary(report: JobReport, console: Console) -> None:
    fused = fused_scores(report)
    table = Table(title=f"round {report.round.get('round_id')} ({report.round.get('state')}, engine {report.engine}): "
                        f"fused model {fused['accuracy']:.3f} accuracy, {fused['macro_f1']:.3f} macro-F1")
    table.add_column("method (accuracy / macro-F1)")
    for regime in sorted(report.regimes):
        table.add_column(f"({regime})" + (" the round's" if regime == report.round_regime else ""))
    for name, cells in regime_rows(report):
        table.add_row(name, *cells)
    console.print(table)
    from swarmfuse.client.demo.regimes import REGIMES

    for regime in sorted(report.regimes):
        console.print(f"({regime}) {REGIMES[regime]}", highlight=False)
    console.print(f"{scored_on(report)}.\n[yellow]note:[/yellow] {regimes_note(report)}.", highlight=False)
    stages = Table(title="stages")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    for name, seconds in report.stages.items():
        stages.add_row(name, f"{seconds:.1f}")
    console.print(stages)
    if report.contribution:
        values = Table(title=f"contributions ({report.contribution['metric']}, "
                               f"{'exact' if report.contribution['exact'] else 'sampled'} Shapley)")
        for column in ("participant", "role", "block alone", "Shapley", "leave-one-out", "units credited"):
            values.add_column(column)
        for row in contribution_rows(report):
            values.add_row(*row)
        console.print(values)
    console.print(f"on-chain: {report.on_chain.get('bytes', 0)} bytes in {report.on_chain.get('blocks', 0)} blocks; "
                  f"off-chain: {report.off_chain_bytes} bytes", highlight=False)
    per_site = ", ".join(f"{org} {t['ledger_s']:.2f} s" for org, t in sorted(report.ledger_time.items()))
    console.print(f"ledger operations: at most {report.ledger_share:.1%} of the round's wall time at any site "
                  f"({per_site})", highlight=False)
