"""The auditor sees whose labels shaped each summary's extractor (the real chaincode run in memory): the summaries
table shows the provenance, and ``audit verify``'s provenance check passes a site-trained extractor (labels none) or
a split-fine-tuned one, reports a reference trained with the label holder's labels (foreign) and an extractor that
declares no provenance, and skips the label holder's summary. After split learning, its split-extractor check passes
a feature site whose final features name their extractor, fails one whose record names none (naming the exchange),
and checks the leader's own fine-tuned extractor on the leader's own record of it (required before the model);
the exchanges table shows the extractor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "chaincode"))  # the in-memory world's helpers
from cc_world import World, consortium, founded, provenance, sha, summary

from swarmfuse.client.audit import cli
from swarmfuse.client.audit.provenance import provenance_checks, split_extractor_checks
from swarmfuse.client.audit.queries import ExchangeRecord, PublishedSummary, SummaryRecord
from swarmfuse.client.audit.report import Status


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


def split_round(world: World, epochs: int = 1) -> tuple[str, list[str]]:
    """Round s1 with ``epochs`` split-learning epochs among DC1-DC3 (all feature sites), each non-leader site's epochs
    recorded; its leader's and the other sites' MSP IDs."""
    world.ok("DC1", "Rounds:Open", "s1", world.round_spec(split_epochs=epochs))
    rnd = world.join_all("s1")
    leader = rnd["leader"]
    sites = [p for p in rnd["participants"] if p != leader]

    def exchange(receiver: str, kind: str) -> str:
        return json.dumps({"receiver": receiver, "kind": kind, "sha256": sha(receiver + kind), "bytes": 64,
                           "entity_count": 8})

    for epoch in range(1, epochs + 1):
        for site in sites:
            world.ok(site.removesuffix("MSP"), "Rounds:RecordExchange", "s1", exchange(leader, f"features.{epoch}"))
            world.ok(leader.removesuffix("MSP"), "Rounds:RecordExchange", "s1", exchange(site, f"gradients.{epoch}"))
    return leader, sites


def final_features(world: World, site: str, leader: str, extractor: str) -> dict:
    return world.ok(site.removesuffix("MSP"), "Rounds:RecordExchange", "s1", json.dumps(
        {"receiver": leader, "kind": "features", "sha256": sha(site + "final"), "bytes": 64, "entity_count": 8,
         "extractor_onnx_sha256": extractor}))


def test_verify_checks_each_feature_sites_final_features_name_their_fine_tuned_extractor() -> None:
    world = founded()
    leader, (first, second) = split_round(world)
    final_features(world, first, leader, sha(f"{first} tuned"))
    checks = {c.subject: c for c in split_extractor_checks(world.ledger.state)}
    assert set(checks) == {f"round s1 {org} final features" for org in (leader, first, second)}
    named, pending, lead = (checks[f"round s1 {org} final features"] for org in (first, second, leader))
    assert named.status == Status.PASS and sha(f"{first} tuned") in named.detail and named.tx_id
    assert named.record == f"exchange s1 {first}->{leader} features"
    assert pending.status == Status.INFO and "has sent no final features" in pending.detail
    assert lead.status == Status.INFO and "has not recorded its fine-tuned extractor" in lead.detail
    world.ok(leader.removesuffix("MSP"), "Rounds:RecordLeaderExtractor", "s1", sha(f"{leader} tuned"))
    lead = next(c for c in split_extractor_checks(world.ledger.state) if c.subject == f"round s1 {leader} final features")
    assert lead.status == Status.PASS and sha(f"{leader} tuned") in lead.detail and lead.tx_id
    assert lead.record == f"leader extractor s1 {leader}"
    final_features(world, second, leader, sha(f"{second} tuned"))
    state = world.ledger.state  # a record the honest chaincode would refuse: final features naming no extractor
    key = next(k for k in state if k.startswith("\x00exchange") and second in k and k.endswith("\x00features\x00"))
    state[key] = json.dumps({k: v for k, v in json.loads(state[key]).items() if k != "extractor_onnx_sha256"}).encode()
    bad = next(c for c in split_extractor_checks(state) if c.subject == f"round s1 {second} final features")
    assert bad.status == Status.FAIL and bad.record == f"exchange s1 {second}->{leader} features"
    assert f"exchange s1 {second}->{leader} features" in bad.detail and "names no extractor" in bad.detail
    world.ok("DC1", "Rounds:Open", "plain", world.round_spec())  # no split epochs: nothing to check
    assert not [c for c in split_extractor_checks(world.ledger.state) if "plain" in c.subject]


def test_the_exchanges_table_shows_the_extractor_of_features() -> None:
    world = founded()
    leader, (first, _) = split_round(world)
    final_features(world, first, leader, sha("tuned"))
    found = [ExchangeRecord.model_validate(e) for e in world.read("Auditor", "Audit:Exchanges", "s1", "100", "")["items"]]
    console = Console(width=400, record=True)
    console.print(cli.exchanges_table(found, "exchanges"))
    rows = {tuple(cell.strip() for cell in line.split("│")[1:4]): line for line in console.export_text().splitlines()
            if line.startswith("│")}
    assert sha("tuned")[:cli.SHORT] in rows[(first, leader, "features")]
    assert sha("tuned")[:cli.SHORT] not in rows[(first, leader, "features.1")]
