"""Data centres with data the project never saw go from their manifests to a closed round with the README's
commands only: each feature site trains its own extractor from its own rows and public data (no label), adds its
data, serves; the label holder adds its labels; a round opens and closes, and every site holds the model the
ledger names; a second round fine-tunes each feature site's extractor by split learning (features and gradients
per epoch, on the record) before the fusion, each site's final features naming its fine-tuned extractor on-chain
(the installed one in the first round; a leader that is a feature site records its own), and a gradient file
other than the recorded one is refused; in a third, a feature site killed mid-epoch and restarted resumes without
sending anything twice. The data set is synthetic (tests/synthetic_sites.py): three classes, each with its own words and
its own colour."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest
from conftest import ENGINES
from new_dc import ORGS, exchanges, new_data_centres, swarmfuse

from swarmfuse.client.site.link import Peer, PeerError
from swarmfuse.client.site.store import Store
from swarmfuse.client.site.wiring import open_site

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("engine", ENGINES)
def test_new_data_centres_go_from_their_manifests_to_a_closed_round(engine: str, tmp_path: Path) -> None:
    task = "newtask"
    with new_data_centres(tmp_path, engine, task) as dcs:
        home, site, agents = dcs.home, dcs.site, dcs.agents
        swarmfuse("round", "open", "R1", "--roles", "DC1=label,DC2=text,DC3=image", "--label-holder", "DC1",
                  "--org", "DC1", *site, home=home)
        status = dcs.wait_until_ended("R1")
        assert "round R1: closed" in status, status
        model = re.search(r"model ([0-9a-f]{64})", status)
        assert model is not None
        for org in ORGS:  # every site keeps the model the ledger names
            held = home / "sites" / org / "rounds" / "R1" / "model.npz"
            assert hashlib.sha256(held.read_bytes()).hexdigest() == model.group(1)
        assert {("DC2MSP", "DC1MSP", "features"), ("DC3MSP", "DC1MSP", "features")} <= exchanges(status), status
        trained = swarmfuse("site", "status", "--org", "DC2", *site, home=home)
        assert "72" in trained  # the site's own 72 texts, summarised with its own extractor

        # the same sites, a round with two epochs of split learning of their extractors first
        swarmfuse("round", "open", "R2", "--roles", "DC1=label,DC2=text,DC3=image", "--label-holder", "DC1",
                  "--split-epochs", "2", "--org", "DC1", *site, home=home)
        status = dcs.wait_until_ended("R2")
        assert "round R2: closed" in status, status
        leader = re.search(r"leader (DC\d)MSP", status).group(1)  # type: ignore[union-attr]
        sent = exchanges(status)
        for org in ("DC2", "DC3"):
            if org == leader:
                continue
            for epoch in (1, 2):
                assert (f"{org}MSP", f"{leader}MSP", f"features.{epoch}") in sent, status
                assert (f"{leader}MSP", f"{org}MSP", f"gradients.{epoch}") in sent, status
            assert (f"{org}MSP", f"{leader}MSP", "features") in sent, status
        for org, modality in (("DC2", "text"), ("DC3", "image")):  # each feature site fine-tuned its own extractor
            tuned = json.loads((home / "sites" / org / "rounds" / "R2" / "extractor" / "bundle.json").read_text())
            base = json.loads((home / "sites" / org / "extractors" / modality / "bundle.json").read_text())
            assert tuned["onnx_sha256"] != base["onnx_sha256"] and "split learning in round R2" in tuned["source"]
            with open_site(home, "DC1", task) as parts:  # features name the extractor that made them, on-chain
                plain = parts.ledger.exchange("R1", f"{org}MSP", "DC1MSP", "features")
                final = parts.ledger.exchange("R2", f"{org}MSP", f"{leader}MSP", "features")
                own = parts.ledger.leader_extractor("R2")
            assert plain is not None and plain.extractor_onnx_sha256 == base["onnx_sha256"]
            if org != leader:
                assert final is not None and final.extractor_onnx_sha256 == tuned["onnx_sha256"]
            else:  # the leader's own features are never sent: it records its extractor itself
                assert final is None and own is not None and own.extractor_onnx_sha256 == tuned["onnx_sha256"]

        target = next(org for org in ("DC2", "DC3") if org != leader)  # a gradient file that is not the recorded one
        [genuine] = (home / "sites" / target / "rounds" / "R2" / "in").glob(f"{leader}MSP-gradients.1-*")
        tampered = bytearray(genuine.read_bytes())
        tampered[-1] ^= 1
        (tmp_path / "gradients.1.npy").write_bytes(bytes(tampered))
        with open_site(home, leader, task) as parts:
            member = parts.ledger.member(f"{target}MSP")
            assert member is not None
            peer = Peer(f"{target}MSP", f"https://{member.endpoint}", member.tls_fingerprint)
            with pytest.raises(PeerError, match=r"refused \(422\).*the ledger records"):
                parts.link.upload(peer, "R2", "gradients.1", tmp_path / "gradients.1.npy")
        with Store.for_site(home, target) as store:
            kept = store.artefacts("R2", kind="gradients.1")
        assert sorted(row.status.value for row in kept) == ["rejected", "verified"]

        # a split round whose feature site is killed (SIGKILL) once it sent its first epoch's features, then restarted
        swarmfuse("round", "open", "R3", "--roles", "DC1=label,DC2=text,DC3=image", "--label-holder", "DC1",
                  "--split-epochs", "2", "--org", "DC1", *site, home=home)
        leader = re.search(r"leader (DC\d)MSP", swarmfuse("round", "status", "R3", "--org", "DC1", *site,
                                                           home=home)).group(1)  # type: ignore[union-attr]
        victim = next(org for org in ("DC2", "DC3") if org != leader)
        deadline = time.monotonic() + 300
        with open_site(home, "DC1", task) as parts:  # watched through the ledger: faster than the CLI
            while parts.ledger.exchange("R3", f"{victim}MSP", f"{leader}MSP", "features.1") is None:
                assert time.monotonic() < deadline, f"{victim} never sent features.1"
                time.sleep(0.1)
        index = ORGS.index(victim)
        os.killpg(agents[index].pid, 9)
        agents[index].wait(timeout=30)
        dcs.serve(victim)
        status = dcs.wait_until_ended("R3")
        assert "round R3: closed" in status, status
        kinds = [kind for sender, _, kind in exchanges(status) if sender == f"{victim}MSP"]
        assert sorted(kinds) == ["features", "features.1", "features.2"], status  # nothing sent twice
