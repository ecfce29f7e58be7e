"""A malicious leader in split learning records, for each feature site, the SHA-256 of a malformed gradient file and
sends exactly that file (its own agent's, swapped in its round folder before the agent records it: what an operator
controlling its site can do). The hash matches, so each feature site's inbox takes the file; its agent then finds it
cannot apply it — in M1 the wrong shape at DC2, values that are not finite at DC3; in M4 a pickle at DC2, float64 at
DC3 — and declines the round at once with the reason (an abort vote naming the problem), moves nothing, sends nothing
more; the two feature sites' votes are a majority of the three, so the round ends aborted long before its deadline.
Between them, M2, honest and led by a feature site, closes with that leader's own fine-tuned extractor on record.
Real agents on the network of tests/new_dc.py, both feature sites holding texts with small random text extractors
(split learning fine-tunes them as it would trained ones; training them here would take many minutes)."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ENGINES
from new_dc import TEXT_ROLES, DataCentres, exchanges, new_data_centres
from synthetic_sites import CLASSES, PER_CLASS

from swarmfuse.client.site.store import Store
from swarmfuse.client.site.wiring import open_site

pytestmark = [pytest.mark.integration, pytest.mark.slow]



def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def seed_leader(dcs: DataCentres, round_id: str, files: dict[str, bytes]) -> None:
    """DC1, the next round's leader, has "computed" its one epoch already: ``files`` are its gradients per site."""
    split = dcs.home / "sites" / "DC1" / "rounds" / round_id / "split"
    split.mkdir(parents=True)
    (split / "leader.1.pt").write_bytes(b"")  # a one-epoch round never reads the leader's state back
    for org, data in files.items():
        (split / f"gradients.1.{org}MSP.npy").write_bytes(data)


def open_split_round(dcs: DataCentres, round_id: str, leader: str) -> str:
    opened = dcs.run("round", "open", round_id, "--roles", TEXT_ROLES, "--label-holder", "DC1", "--split-epochs",
                     "1", "--org", "DC1", *dcs.site)
    assert f"leader {leader}MSP" in opened, opened  # the participant set's rotation: DC1, DC2, DC3, DC1, ...
    return opened


def declined_malformed(dcs: DataCentres, round_id: str, problems: dict[str, str],
                       installed: dict[str, dict[str, str]]) -> float:
    """The round once ended: aborted by both feature sites' declines naming ``problems``, nothing applied or sent
    after; the seconds it took."""
    start = time.monotonic()
    status = dcs.wait_until_ended(round_id)
    took = time.monotonic() - start
    assert f"round {round_id}: aborted" in status, status
    with open_site(dcs.home, "DC1", dcs.task) as parts:
        rnd = parts.ledger.round(round_id)
        recorded = {org: parts.ledger.exchange(round_id, "DC1MSP", f"{org}MSP", "gradients.1") for org in problems}
    assert sorted(rnd.abort_votes) == ["DC2MSP", "DC3MSP"], rnd  # the leader never voted: the sites ended it
    assert rnd.updated_at < rnd.deadline and took < 600, (took, rnd)  # at once, not at the deadline
    assert rnd.abort_reason is not None and "declines: the leader's gradients.1 cannot be applied" in \
        rnd.abort_reason and any(problem in rnd.abort_reason for problem in problems.values()), rnd.abort_reason
    for org, problem in problems.items():
        with Store.for_site(dcs.home, org) as store:
            declined = store.action(round_id, "decline")
            arrived = store.artefacts(round_id, kind="gradients.1")
            applied = store.action_done(round_id, "apply-gradients.1")
        assert declined is not None and declined.detail is not None, org
        assert "the leader's gradients.1 cannot be applied" in declined.detail and problem in declined.detail, \
            declined.detail
        record = recorded[org]
        assert record is not None  # the malformed file is on the record, and is what arrived (hash-consistent)
        assert [(row.status.value, row.sha256) for row in arrived] == [("verified", record.sha256)], arrived
        here = dcs.home / "sites" / org / "rounds" / round_id
        assert not applied and not (here / "split" / "top.1.pt").exists() and not (here / "extractor").exists()
        assert digests(dcs.home / "sites" / org / "extractors" / "text") == installed[org]  # unchanged
        sent = sorted(kind for sender, _, kind in exchanges(status) if sender == f"{org}MSP")
        assert sent == ["features.1"], status  # nothing after the gradients: no final features
    return took


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("engine", ENGINES)
def test_feature_sites_decline_malformed_gradients_their_leader_recorded(engine: str, tmp_path: Path) -> None:
    with new_data_centres(tmp_path, engine, "badleader", texts_only=True) as dcs:
        rows = PER_CLASS * len(CLASSES)  # every entity is at every site: all align
        extractors = {org: dcs.home / "sites" / org / "extractors" / "text" for org in ("DC2", "DC3")}
        installed = {org: digests(folder) for org, folder in extractors.items()}
        dim = json.loads((extractors["DC3"] / "bundle.json").read_text())["feature_dim"]

        # M1: the wrong shape to DC2, values that are not finite to DC3
        poisoned = np.zeros((rows, dim), dtype=np.float32)
        poisoned[0, 0], poisoned[1, 1] = np.nan, np.inf
        seed_leader(dcs, "M1", {"DC2": npy(np.zeros((rows, 3), dtype=np.float32)), "DC3": npy(poisoned)})
        open_split_round(dcs, "M1", "DC1")
        took = declined_malformed(dcs, "M1", {
            "DC2": f"gradients of shape ({rows}, 3) for features of shape ({rows}, {dim})",
            "DC3": "the gradients hold 2 values that are not finite (NaN or infinite)"}, installed)
        print(f"{engine}: M1 ended aborted {took:.0f} s after it opened")

        # M2, honest, led by DC2, a feature site: it records its own fine-tuned extractor before the model
        open_split_round(dcs, "M2", "DC2")
        status = dcs.wait_until_ended("M2")
        assert "round M2: closed" in status, status
        tuned = {org: json.loads((dcs.home / "sites" / org / "rounds" / "M2" / "extractor" / "bundle.json")
                                 .read_text())["onnx_sha256"] for org in ("DC2", "DC3")}
        with open_site(dcs.home, "DC1", dcs.task) as parts:
            own = parts.ledger.leader_extractor("M2")
            final = parts.ledger.exchange("M2", "DC3MSP", "DC2MSP", "features")
        assert own is not None and (own.org, own.extractor_onnx_sha256) == ("DC2MSP", tuned["DC2"]), own
        assert final is not None and final.extractor_onnx_sha256 == tuned["DC3"], final
        # M3 (DC3's turn) only moves the rotation on (it counts the rounds a set opened, whatever their end): DC1
        # leads again next. It runs to its end first (with these small extractors it may close within seconds).
        open_split_round(dcs, "M3", "DC3")
        assert re.search(r"round M3: (closed|aborted)", dcs.wait_until_ended("M3"))

        # M4: a pickle to DC2, float64 (the right shape, finite) to DC3
        seed_leader(dcs, "M4", {"DC2": pickle.dumps(np.zeros((rows, dim), dtype=np.float32)),
                                "DC3": npy(np.zeros((rows, dim), dtype=np.float64))})
        open_split_round(dcs, "M4", "DC1")
        took = declined_malformed(dcs, "M4", {
            "DC2": "the gradient file is not a .npy array (a pickle, an .npz or other bytes)",
            "DC3": "gradients of dtype float64, not float32"}, installed)
        print(f"{engine}: M4 ended aborted {took:.0f} s after it opened")
