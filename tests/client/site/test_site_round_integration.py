"""The main job on a real network of each engine (the session's ``job`` fixture, tests/round_job.py): three
site agents as separate processes run a fusion round to ``closed``; the ledger's history matches what the
agents did; faults (an agent killed and restarted mid-round, a tampered file, an outsider, a bad manifest)
leave ledger and stores in step."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography import x509
from round_job import kill_agent

from swarmfuse.chaincode.contracts.records import Round
from swarmfuse.client.audit.report import Status
from swarmfuse.client.audit.verify import verify_task
from swarmfuse.client.demo import job as demo
from swarmfuse.client.demo.job import JobConfig
from swarmfuse.client.ledger import LedgerRefused
from swarmfuse.client.site.link import PeerError
from swarmfuse.client.site.manifest import ManifestError
from swarmfuse.client.site.site import Site
from swarmfuse.client.site.tls import site_tls
from swarmfuse.client.site.wiring import add_data, make_agent, open_site
from swarmfuse.extractors.data.cache import sha256_file

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

TASK = "emoji"
# The fused round over the better single modality, on the round's aligned test entities (206 of 1 407; the baselines
# trained on its 988 aligned training rows), in the job's honest regime: each feature site's own label-free extractor
# after 8 epochs of split learning. Three cold trainings of the whole pipeline on this 2-core machine (scripts/demo.sh
# --seed S: the sites' extractors and the head), fused / text-only / image-only: seed 0 (this test's; identical warm
# and cold) 0.704 / 0.607 / 0.602 (+9.7 points); seed 1 0.718 / 0.651 / 0.573 (+6.8); seed 2 0.680 / 0.665 / 0.417
# (+1.5: its label-free image extractor scores 0.393 before split learning, against 0.573 for seeds 0 and 1). The
# bound sits below the worst of the three.
FUSED_MARGIN = 0.01


def test_round_closes_with_every_site_holding_the_acknowledged_model(job) -> None:  # type: ignore[no-untyped-def]
    config, report = job
    rnd = report.round
    assert rnd["state"] == "closed"
    assert set(rnd["acknowledgements"]) == set(rnd["participants"]) == {"DC1MSP", "DC2MSP", "DC3MSP"}
    assert set(rnd["acknowledgements"].values()) == {rnd["model_sha256"]}
    for org in demo.ORGS:
        model = config.home / "sites" / org / "rounds" / config.round_id / "model.npz"
        assert sha256_file(model) == rnd["model_sha256"], f"{org}'s model file differs from the ledger"
    # The ledger's history of the round is what the agents did, in order.
    assert next(h["value"]["state"] for h in report.history if h.get("value")) == "open"
    assert report.history[-1]["value"]["state"] == "closed"
    # Each feature site sends its features per split-learning epoch and at the end; the leader sends each its gradients.
    kinds = sorted((e["sender"], e["receiver"], e["kind"]) for e in report.exchanges)
    leader, epochs = rnd["leader"], range(1, config.split_epochs + 1)
    feature_sites = [p for p in ("DC2MSP", "DC3MSP") if p != leader]
    expected = sorted([(p, leader, "features") for p in feature_sites]
                      + [(p, leader, f"features.{e}") for p in feature_sites for e in epochs]
                      + [(leader, p, f"gradients.{e}") for p in feature_sites for e in epochs]
                      + ([("DC1MSP", leader, "labels")] if leader != "DC1MSP" else []))
    assert rnd["split_epochs"] == config.split_epochs > 0 and kinds == expected
    # Each site's store agrees with the ledger.
    for org in demo.ORGS:
        with open_site(config.home, org, TASK) as parts:
            stored = parts.store.get_round(config.round_id)
            assert stored is not None and stored.aligned_count == parts.ledger.alignment(config.round_id).entity_count
            sent = {a.action for a in parts.store.actions(config.round_id) if a.done}
            assert {"alignment", "acknowledge"} <= sent


def test_fused_model_beats_each_single_modality(job) -> None:  # type: ignore[no-untyped-def]
    _, report = job
    metrics = report.round["metrics"]
    # The baselines are measured on the entities the round's model was: its aligned training and test rows.
    assert report.baseline_entities["test"] == metrics["n_test"] > 0
    assert report.baseline_entities["train"] == metrics["n_train"]
    fused = metrics["test_accuracy"]
    # The round's model is the central intermediate head on the same rows: the exchange changed no feature.
    assert abs(fused - report.baselines["intermediate"]["accuracy"]) <= 1 / metrics["n_test"] + 1e-9
    single = max(report.baselines["text_only"]["accuracy"], report.baselines["image_only"]["accuracy"])
    assert fused >= single + FUSED_MARGIN, (fused, report.baselines)
    # The report scores the sites' own extractors before and after the round's split learning; the reference trained
    # with DC1's labels only when asked for. Split learning made each block more predictive.
    assert report.round_regime == "b" and set(report.regimes) == {"a", "b"}
    before = report.regimes["a"].methods
    for method in ("text_only", "image_only", "intermediate"):
        assert report.baselines[method]["accuracy"] > before[method]["accuracy"], (method, report.regimes)
    assert report.on_chain["bytes"] < report.off_chain_bytes


def test_contributions_follow_the_single_modalities_and_credits_share_the_pool(job) -> None:  # type: ignore[no-untyped-def]
    _, report = job
    rnd, table = report.round, report.contribution
    assert rnd["agreement_sha256"] and rnd["contribution_sha256"] == table["table_sha256"]
    assert (table["metric"], table["seeds"], table["players"]) == ("test_accuracy", [0], ["DC2MSP", "DC3MSP"])
    alone = {tuple(c["members"]): Fraction(c["scores"][0]) for c in table["coalitions"]}
    assert alone[("DC2MSP", "DC3MSP")] == Fraction(repr(rnd["metrics"]["test_accuracy"]))
    # each block alone is the central single-modality head on the same rows (one entity of slack, as above)
    slack = 1 / rnd["metrics"]["n_test"] + 1e-9
    assert abs(float(alone[("DC2MSP",)]) - report.baselines["text_only"]["accuracy"]) <= slack
    assert abs(float(alone[("DC3MSP",)]) - report.baselines["image_only"]["accuracy"]) <= slack
    shapley = {org: Fraction(value) for org, value in table["shapley"].items()}
    if alone[("DC2MSP",)] > alone[("DC3MSP",)]:  # texts beat images alone: the text block is worth more
        assert shapley["DC2MSP"] > shapley["DC3MSP"]
    assert sum(shapley.values()) == alone[("DC2MSP", "DC3MSP")] - alone[()]
    assert sum(report.credits.values()) == 100 and report.credits == table["units"]
    assert report.credits["DC1MSP"] == 20  # the label holder's share: it sends no feature block


def test_a_sites_round_files_are_readable_by_itself_alone(job) -> None:  # type: ignore[no-untyped-def]
    """Aligned IDs, PSI sessions, features, labels, received files and the model: private from their first byte."""
    config, _ = job
    files = [path for org in demo.ORGS
             for path in (config.home / "sites" / org / "rounds").rglob("*") if path.is_file()]
    assert {"aligned.json", "model.npz", "features.npy"} <= {path.name for path in files}
    assert not [(str(path), oct(path.stat().st_mode & 0o777)) for path in files if path.stat().st_mode & 0o077]


def test_a_sites_certificate_names_its_site_and_the_address_it_serves_on_only(job) -> None:  # type: ignore[no-untyped-def]
    """No ``localhost``: a site's server certificate names the site and the address its agent serves on."""
    config, _ = job
    for org in demo.ORGS:
        site = Site(config.home, org, TASK)
        cert = x509.load_pem_x509_certificate(site_tls(site.folder).server_cert.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(n.value) for n in names] == [f"site.{site.org.domain}", site.host], org


def _tampered(original: Path, name: str, position: int) -> Path:
    """A copy of ``original`` with the byte at ``position`` flipped."""
    data = bytearray(original.read_bytes())
    data[position] ^= 0xFF
    tampered = original.with_name(name)
    tampered.write_bytes(bytes(data))
    return tampered


def test_a_tampered_file_is_refused_and_recorded(job) -> None:  # type: ignore[no-untyped-def]
    config, report = job
    leader = report.round["leader"].removesuffix("MSP")
    sender = next(org for org in ("DC2", "DC3") if org != leader)
    with open_site(config.home, sender, TASK) as parts:
        tampered = _tampered(parts.site.round_dir(config.round_id) / "features.npy", "tampered.npy", -1)
        with pytest.raises(PeerError, match="rejected: got .* the ledger records"):
            parts.link.upload(make_agent(parts).peer(f"{leader}MSP"), config.round_id, "features", tampered)
    with open_site(config.home, leader, TASK) as parts:
        rejected = [a for a in parts.store.artefacts(config.round_id, kind="features") if a.status.value == "rejected"]
        assert rejected and "the ledger records" in (rejected[-1].reason or "")


def test_a_tampered_upload_beside_the_genuine_one_never_mixes_with_it(job) -> None:  # type: ignore[no-untyped-def]
    """Two uploads of one artefact at once, one of them tampered: each streams into a temp file of its own, one
    at a time, so the genuine one is kept whole and the tampered one refused (they once shared one .part file,
    and a mixed file could be stored as verified)."""
    config, report = job
    leader = report.round["leader"].removesuffix("MSP")
    sender = next(org for org in ("DC2", "DC3") if org != leader)
    with open_site(config.home, sender, TASK) as parts:
        original = parts.site.round_dir(config.round_id) / "features.npy"
        tampered = _tampered(original, "tampered-concurrent.npy", original.stat().st_size // 2)
        to_leader = make_agent(parts).peer(f"{leader}MSP")
        with ThreadPoolExecutor(max_workers=2) as pool:
            genuine = pool.submit(parts.link.upload, to_leader, config.round_id, "features", original)
            forged = pool.submit(parts.link.upload, to_leader, config.round_id, "features", tampered)
            genuine.result()
            with pytest.raises(PeerError, match="rejected"):
                forged.result()
        recorded = parts.ledger.exchange(config.round_id, f"{sender}MSP", f"{leader}MSP", "features")
    with open_site(config.home, leader, TASK) as parts:
        kept = parts.store.verified_artefact(config.round_id, kind="features", direction="in",
                                             peer_org=f"{sender}MSP")
        assert kept is not None and sha256_file(Path(kept.path)) == recorded.sha256
        assert not list(Path(kept.path).parent.glob("*.part"))


def test_an_oversized_request_body_is_refused_before_it_is_read(job) -> None:  # type: ignore[no-untyped-def]
    """A participant announces a PSI body over the limit: the leader's agent answers 413 on the headers alone,
    without waiting for (or reading) a byte of it."""
    import socket
    import ssl

    from swarmfuse.client.site.api import MAX_BODY_BYTES

    config, report = job
    leader = report.round["leader"].removesuffix("MSP")
    sender = next(org for org in ("DC2", "DC3") if org != leader)
    with open_site(config.home, sender, TASK) as parts:
        context = ssl.create_default_context(cafile=str(parts.tls.trust))
        context.load_cert_chain(str(parts.tls.client_cert), str(parts.tls.client_key))
    port = Site(config.home, leader, TASK).port
    request = (f"POST /rounds/{config.round_id}/psi HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = tls.recv(4096)
            assert chunk, f"the agent closed the connection without an answer: {reply!r}"
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_an_outsider_is_refused_by_the_sites(job, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    config, report = job
    leader = report.round["leader"].removesuffix("MSP")
    port = Site(config.home, leader, TASK).port
    with pytest.raises(httpx.HTTPError):  # no client certificate from a task org's TLS CA: refused at TLS
        httpx.get(f"https://127.0.0.1:{port}/status", verify=False, timeout=10)


def test_a_manifest_with_bad_rows_is_refused_and_nothing_published(job, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, _ = job
    bad = tmp_path / "texts.csv"
    bad.write_text("entity_id,text\ne1,hello\ne1,again\ne2,\n")
    with open_site(config.home, "DC2", TASK) as parts:
        before = parts.ledger.evaluate("Summaries:Get", "DC2MSP", "text")
        with pytest.raises(ManifestError, match=r"row 2.*entity_id.*duplicate|duplicate.*row 2"):
            add_data(parts, bad, "text")
        assert parts.ledger.evaluate("Summaries:Get", "DC2MSP", "text") == before


def test_an_agent_killed_mid_round_resumes_and_the_round_closes(job) -> None:  # type: ignore[no-untyped-def]
    """A second round: a non-leader site is killed once its file is sent, before the model arrives."""
    config, _report = job
    round_id = "round-2"
    with open_site(config.home, "DC1", TASK) as parts:
        demo.open_round(parts.ledger, round_id)
        leader = parts.ledger.round(round_id).leader.removesuffix("MSP")
    victim = next(org for org in demo.ORGS if org != leader)
    victim_store = config.home / "sites" / victim / "site.sqlite"
    kind = "labels" if victim == "DC1" else "features"
    deadline = time.monotonic() + 600
    while not _action_done(config, victim, round_id, f"send-{kind}"):
        assert time.monotonic() < deadline, f"{victim} never sent its {kind}"
        time.sleep(0.5)
    kill_agent(config.home, victim, signal.SIGKILL)
    time.sleep(3.0)  # the round goes on without it: the leader fuses and waits for the acknowledgement
    restarted = demo.start_agent(config.home, victim, TASK)  # it keeps serving for the tests after this one
    with open_site(config.home, "DC1", TASK) as parts:
        while parts.ledger.round(round_id).state != "closed":
            assert restarted.poll() is None, f"the restarted {victim} agent exited"
            assert time.monotonic() < deadline, "the round did not close after the restart"
            time.sleep(1.0)
        rnd = parts.ledger.round(round_id)
    with open_site(config.home, victim, TASK) as parts:
        done = [a.action for a in parts.store.actions(round_id) if a.done]
        assert sorted(done) == sorted({"join", "alignment", f"send-{kind}", "acknowledge"})
        exchanges = [e for e in parts.ledger.exchanges(round_id) if e.sender == f"{victim}MSP"]
        assert [e.kind for e in exchanges] == [kind], "the restarted agent recorded its file twice"
    assert rnd.acknowledgements[f"{victim}MSP"] == rnd.model_sha256
    assert victim_store.exists()


def _action_done(config: JobConfig, org: str, round_id: str, action: str) -> bool:
    with open_site(config.home, org, TASK) as parts:
        return parts.store.action_done(round_id, action)


def voted_to_abort(ledger: Any, round_id: str, org: str) -> Round:
    """The round once ``org`` voted to abort it (within five minutes)."""
    deadline = time.monotonic() + 300
    while org not in (rnd := ledger.round(round_id)).abort_votes and rnd.state != "aborted":
        assert time.monotonic() < deadline, f"{org} did not vote to abort round {round_id}"
        time.sleep(0.5)
    return rnd


def declined_by(ledger: Any, round_id: str, org: str) -> Round:
    """The round once ``org`` voted to abort it, which it never joined."""
    rnd = voted_to_abort(ledger, round_id, org)
    assert org not in rnd.joined
    return rnd


def test_a_site_whose_policy_refuses_the_round_never_joins_and_the_round_cannot_align(job) -> None:  # type: ignore[no-untyped-def]
    """Consent: DC2 (texts) offers only labels now; named in a round that asks it for text, its agent does not
    join, votes to abort saying why, and sends nothing; the leader can record no alignment without DC2's join.
    The others' abort votes then end the round."""
    config, _ = job
    round_id = "consent"

    def site_policy(*options: str) -> None:
        done = subprocess.run([sys.executable, "-m", "swarmfuse", "site", "policy", "--org", "DC2", "--task", TASK,
                               "--home", str(config.home), *options], capture_output=True, text=True, timeout=120,
                               check=False)
        assert done.returncode == 0, done.stderr

    site_policy("--offer", "label")
    try:
        with open_site(config.home, "DC1", TASK) as parts:
            demo.open_round(parts.ledger, round_id)
            rnd = declined_by(parts.ledger, round_id, "DC2MSP")
            assert parts.ledger.alignment(round_id) is None
            leader = rnd.leader
        with open_site(config.home, "DC2", TASK) as parts:
            declined = parts.store.action(round_id, "decline")
            assert declined is not None and "this site offers label" in (declined.detail or "")
            assert not parts.store.action_done(round_id, "join")
            assert not [e for e in parts.ledger.exchanges(round_id) if e.sender == "DC2MSP"]
        # what the leader would be told
        with open_site(config.home, leader.removesuffix("MSP"), TASK) as parts, \
                pytest.raises(LedgerRefused, match="DC2MSP has not joined"):
            parts.ledger.evaluate("Rounds:RecordAlignment", round_id,
                                  json.dumps({"entity_count": 1, "commitment_sha256": "0" * 64}))
    finally:
        site_policy("--any-modality")
    with open_site(config.home, "DC3", TASK) as parts:  # DC2's vote and DC3's: a majority of the three
        assert parts.ledger.abort(round_id, "DC2 declined").state == "aborted"


def test_a_site_declines_a_round_whose_terms_forbid_what_it_would_send(job) -> None:  # type: ignore[no-untyped-def]
    """The founders amend the terms to allow feature exchanges only; in a round opened under them, DC1 (the label
    holder) does not join and votes to abort, saying which kind the terms forbid; then terms allowing both again."""
    config, _ = job
    round_id = "terms-check"
    demo.agree_terms(config.home, TASK, {**demo.TERMS, "exchange_kinds": ["features"]})
    try:
        with open_site(config.home, "DC2", TASK) as parts:
            demo.open_round(parts.ledger, round_id)
            declined_by(parts.ledger, round_id, "DC1MSP")
        with open_site(config.home, "DC1", TASK) as parts:
            declined = parts.store.action(round_id, "decline")
            assert declined is not None and "does not allow sending labels" in (declined.detail or "")
            assert not [e for e in parts.ledger.exchanges(round_id) if e.sender == "DC1MSP"]
    finally:
        demo.agree_terms(config.home, TASK, {**demo.TERMS, "retention_days": 31})
    with open_site(config.home, "DC3", TASK) as parts:
        assert parts.ledger.abort(round_id, "DC1 declined").state == "aborted"


def closed_or_aborted(ledger: Any, round_id: str, timeout: float = 600) -> Round:
    deadline = time.monotonic() + timeout
    while (rnd := ledger.round(round_id)).state not in ("closed", "aborted"):
        assert time.monotonic() < deadline, f"round {round_id} is still {rnd.state}"
        time.sleep(1.0)
    return rnd


def test_dp_releases_are_budgeted_and_a_release_past_the_budget_is_never_sent(job) -> None:  # type: ignore[no-untyped-def]
    """Terms with DP on features (release epsilon 4 = the whole budget): a round closes with the feature senders'
    releases recorded (projected, noised, charged); under amended terms at epsilon 2, a fresh release would pass
    the budget: refused on-chain, the site declines, nothing of it reaches the leader."""
    from swarmfuse.client.privacy.accountant import noise_multiplier

    config, _ = job

    def dp_terms(epsilon: float, retention: int) -> dict[str, Any]:
        sigma = noise_multiplier(epsilon, 1e-5)
        return {**demo.TERMS, "retention_days": retention, "privacy": {
            "mechanism": "gaussian", "kinds": ["features"], "delta": "0.00001", "release_epsilon": repr(epsilon),
            "budget_epsilon": repr(epsilon), "budget_sigma": sigma, "clip": "1", "projection_dim": 32}}

    demo.agree_terms(config.home, TASK, dp_terms(4.0, 40))
    try:
        with open_site(config.home, "DC1", TASK) as parts:
            demo.open_round(parts.ledger, "dp-1")
            rnd = closed_or_aborted(parts.ledger, "dp-1")
            assert rnd.state == "closed", rnd
            sent = [e for e in parts.ledger.exchanges("dp-1") if e.kind == "features"]
            releases = parts.ledger.pages("Audit:Exchanges", "dp-1")
        senders = {e.sender for e in sent}
        assert senders == {"DC2MSP", "DC3MSP"} - {rnd.leader} and senders
        for record in (r for r in releases if r["kind"] == "features"):
            made = record["privacy"]
            assert (made["noise_multiplier"], made["projection_dim"]) == (noise_multiplier(4.0, 1e-5), 32)
            assert float(made["epsilon"]) <= 4.0
            shard = Site(config.home, record["sender"].removesuffix("MSP"), TASK).round_dir("dp-1") / "features.npy"
            assert np.load(shard).shape == (record["entity_count"], 32)
        demo.agree_terms(config.home, TASK, dp_terms(2.0, 41))
        # a site that released at epsilon 4 spent more than the new budget: any fresh release now passes it (a
        # site that releases under these terms first spends exactly the budget, then sends that release again
        # from its cache, for nothing)
        for attempt in range(2, 5):
            round_id = f"dp-{attempt}"
            with open_site(config.home, "DC1", TASK) as parts:
                demo.open_round(parts.ledger, round_id)
                asked = {"DC2MSP", "DC3MSP"} - {parts.ledger.round(round_id).leader}
                if asked & senders:
                    break
                assert closed_or_aborted(parts.ledger, round_id).state == "closed"  # a fresh budget: allowed
        else:
            raise AssertionError("no round asked a site that released at epsilon 4 for features")
        sender = min(asked & senders)
        with open_site(config.home, "DC1", TASK) as parts:
            voted_to_abort(parts.ledger, round_id, sender)
            assert not [e for e in parts.ledger.exchanges(round_id) if e.sender == sender and e.kind == "features"]
        with open_site(config.home, sender.removesuffix("MSP"), TASK) as parts:
            declined = parts.store.action(round_id, "decline")
            assert declined is not None and "would exceed the privacy budget" in (declined.detail or "")
            assert not parts.store.action_done(round_id, "send-features")
        for org in ("DC1", "DC2", "DC3"):  # the others end the round
            with open_site(config.home, org, TASK) as parts:
                if parts.ledger.round(round_id).state != "aborted" and f"{org}MSP" != sender:
                    parts.ledger.abort(round_id, "a release would exceed the privacy budget")
        # the auditor recomputes every release's epsilon and every budget's spending from the ledger
        report = verify_task(config.home, TASK)
        privacy = [c for c in report.checks if c.name == "privacy"]
        assert report.ok and privacy and {c.status for c in privacy} == {Status.PASS}, privacy
        assert any(c.subject.startswith("budget ") and "spend epsilon 4.0" in c.detail for c in privacy), privacy
    finally:
        demo.agree_terms(config.home, TASK, {**demo.TERMS, "retention_days": 42})


def test_report_files(job) -> None:  # type: ignore[no-untyped-def]
    config, report = job
    document = json.loads((config.out / "report.json").read_text())
    assert document["round"]["state"] == "closed" and document["engine"] == report.engine
    assert (config.out / "methods.png").stat().st_size > 5000
    page = (config.out / "report.html").read_text()
    assert "fused round" in page and report.round["model_sha256"] in page


def test_predict_scores_entities_with_features_from_every_site(job, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from swarmfuse.client.site.manifest import load_manifest
    from swarmfuse.client.site.predict import predict

    config, report = job
    views = config.out / "views"
    labels = {row.entity_id: row for row in load_manifest(views / "dc1/labels.jsonl", "label").rows}
    held = set(load_manifest(views / "dc2/texts.jsonl", "text").ids) & set(
        load_manifest(views / "dc3/images.jsonl", "image", verify_images=False).ids)
    test_ids = sorted(i for i, row in labels.items() if row.extra.get("split") == "test" and i in held)[:120]
    with open_site(config.home, "DC1", TASK) as parts:  # DC1 holds labels only: both feature blocks come from peers
        rows = predict(make_agent(parts), config.round_id, test_ids)
    assert [r["entity_id"] for r in rows] == test_ids
    accuracy = sum(r["class"] == labels[r["entity_id"]].value for r in rows) / len(rows)
    assert accuracy >= report.round["metrics"]["test_accuracy"] - 0.1, accuracy
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(test_ids[:5]) + "\n")
    done = subprocess.run([sys.executable, "-m", "swarmfuse", "predict", config.round_id, str(ids_file), "--org",
                           "DC2", "--task", TASK, "--home", str(config.home), "--out", str(tmp_path / "p.csv")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p.csv").read_text().count("\n") == 6


def test_features_leave_a_site_only_for_a_recorded_scoring_request(job) -> None:  # type: ignore[no-untyped-def]
    """DC1 asks DC2 for features: refused without a request on the ledger, refused for other IDs than the
    request committed to, served (and the reply recorded) for exactly them; DC3 cannot use DC1's request."""
    from swarmfuse.client.site.manifest import load_manifest
    from swarmfuse.client.site.predict import reply_sha256, scoring_commitment

    config, _ = job
    ids = list(load_manifest(config.out / "views" / "dc2" / "texts.jsonl", "text").ids[:3])
    salt = b"\x07" * 32
    with open_site(config.home, "DC1", TASK) as parts:
        dc2 = make_agent(parts).peer("DC2MSP")
        with pytest.raises(PeerError, match="\\(409\\).*no scoring request 'unrecorded'"):
            parts.link.features(dc2, config.round_id, "unrecorded", salt, ids)
        parts.ledger.request_scoring(config.round_id, "scoring-test", scoring_commitment(salt, ids), 3, ["DC2MSP"])
        with pytest.raises(PeerError, match="\\(422\\).*not the 3 the request committed to"):
            parts.link.features(dc2, config.round_id, "scoring-test", salt, [*ids[:2], "someone-else"])
        features = parts.link.features(dc2, config.round_id, "scoring-test", salt, ids)
        replies = parts.ledger.scoring(config.round_id, "scoring-test").replies
        assert [(r.sender, r.sha256) for r in replies] == [("DC2MSP", reply_sha256(features))]
    with open_site(config.home, "DC3", TASK) as parts, pytest.raises(PeerError, match="\\(403\\).*not DC3MSP's"):
        parts.link.features(make_agent(parts).peer("DC2MSP"), config.round_id, "scoring-test", salt, ids)
