"""The auditor sees whose labels shaped each summary's extractor (the real chaincode run in memory): the summaries
table shows the provenance, and ``audit verify``'s provenance check passes a site-trained extractor (labels none) or
a split-fine-tuned one, reports a reference trained with the label holder's labels (foreign) and an extractor that
declares no provenance, and skips the label holder's summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "chaincode"))  # the in-memory world's helpers
from cc_world import World, consortium, provenance, sha, summary  # noqa: E402

from swarmfuse.client.audit import cli  # noqa: E402
from swarmfuse.client.audit.provenance import provenance_checks  # noqa: E402
from swarmfuse.client.audit.queries import PublishedSummary, SummaryRecord  # noqa: E402
from swarmfuse.client.audit.report import Status  # noqa: E402


def published() -> World:
    """DC1 text trained at the site (none), DC2 image the reference (foreign), DC3 labels and an image extractor
    split learning fine-tuned; DC4 text with no provenance (an older bundle)."""
    world = consortium(4)
    world.ok("DC1", "Summaries:Publish", summary("DC1", "text", labels="none"))
    world.ok("DC2", "Summaries:Publish", summary("DC2", "image", labels="foreign"))
    tuned = {**provenance("DC3", "image"), "labels": "split-gradients", "split_round": "r1", "parent_sha256": sha("p")}
    world.ok("DC3", "Summaries:Publish", json.dumps({**json.loads(summary("DC3", "image")), "labels": None,
                                                     "extractor_provenance": tuned}))
    world.ok("DC3", "Summaries:Publish", summary("DC3", "text"))  # DC3's labels stand for the extractor: no check
    world.ok("DC4", "Summaries:Publish", summary("DC4", "text"))
    return world


def test_verify_passes_label_free_and_split_extractors_fails_foreign_labels_and_reports_unknown() -> None:
    checks = {c.subject: c for c in provenance_checks(published().ledger.state)}
    assert set(checks) == {"summary DC1MSP text", "summary DC2MSP image", "summary DC3MSP image",
                           "summary DC4MSP text"}
    site, reference, tuned, unknown = (checks[s] for s in ("summary DC1MSP text", "summary DC2MSP image",
                                                          "summary DC3MSP image", "summary DC4MSP text"))
    assert site.status == Status.PASS and "no foreign labels (labels none)" in site.detail
    assert sha("DC1/text/manifest/100")[:16] in site.detail and site.tx_id
    assert reference.status == Status.FAIL and "another party's labels (foreign)" in reference.detail
    assert sha("efficientnet-lite0")[:16] in reference.detail
    assert tuned.status == Status.PASS and "split-learning gradients of round r1" in tuned.detail
    assert unknown.status == Status.INFO and "declares no provenance" in unknown.detail


def test_an_unreadable_summary_fails_the_check() -> None:
    state = published().ledger.state
    key = next(k for k in state if "DC1MSP" in k and "text" in k and k.startswith("\x00summary"))
    state[key] = json.dumps(json.loads(state[key]) | {"extractor_provenance": {"labels": "borrowed"}}).encode()
    bad = next(c for c in provenance_checks(state) if c.subject == "summary DC1MSP text")
    assert bad.status == Status.FAIL and "cannot be read" in bad.detail


def test_the_summaries_table_shows_the_provenance() -> None:
    world = published()
    records = [SummaryRecord.model_validate(world.read("Auditor", "Summaries:Get", org, modality))
               for org, modality in (("DC1MSP", "text"), ("DC2MSP", "image"), ("DC3MSP", "text"), ("DC4MSP", "text"))]
    table = cli.summaries_table([PublishedSummary(latest=r, history=[]) for r in records], "summaries")
    console = Console(width=400, record=True)
    console.print(table)
    lines = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if "MSP" in line}
    assert "none" in lines["DC1MSP"] and "site-text-0123456789abcdef" in lines["DC1MSP"]
    assert "foreign" in lines["DC2MSP"] and f"teacher {sha('efficientnet-lite0')[:10]}" in lines["DC2MSP"]
    assert "unknown" in lines["DC4MSP"] and "unknown" not in lines["DC3MSP"]  # DC3's labels: no extractor
