"""A malicious leader in split learning records, for each feature site, the SHA-256 of a malformed gradient file and
sends exactly that file (its own agent's, swapped in its round folder before the agent records it: what an operator
controlling its site can do). The hash matches, so each feature site's inbox takes the file; its agent then finds it
cannot apply it — the wrong shape at DC2, values that are not finite at DC3 — and declines the
round at once with the reason (an abort vote naming the problem), moves nothing, sends nothing more; the two feature
sites' votes are a majority of the three, so the round ends aborted long before its deadline. Real agents on the
network of tests/new_dc.py, both feature sites holding texts with small random text extractors (split learning
fine-tunes them as it would trained ones; training them here would take many minutes)."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ENGINES
from new_dc import CLASSES, PER_CLASS, TEXT_ROLES, exchanges, new_data_centres

from swarmfuse.client.site.store import Store
from swarmfuse.client.site.wiring import open_site

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUND = "M1"


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("engine", ENGINES)
def test_feature_sites_decline_malformed_gradients_their_leader_recorded(engine: str, tmp_path: Path) -> None:
    task = "badleader"
    with new_data_centres(tmp_path, engine, task, texts_only=True) as dcs:
        rows = PER_CLASS * len(CLASSES)  # every entity is at every site: all align
        extractors = {org: dcs.home / "sites" / org / "extractors" / "text" for org in ("DC2", "DC3")}
        installed = {org: digests(folder) for org, folder in extractors.items()}
        dim = json.loads((extractors["DC3"] / "bundle.json").read_text())["feature_dim"]
        # DC1 leads (the first turn of this participant set's rotation) and has "computed" its one epoch already
        split = dcs.home / "sites" / "DC1" / "rounds" / ROUND / "split"
        split.mkdir(parents=True)
        (split / "leader.1.pt").write_bytes(b"")  # a one-epoch round never reads the leader's state back
        (split / "gradients.1.DC2MSP.npy").write_bytes(npy(np.zeros((rows, 3), dtype=np.float32)))
        poisoned = np.zeros((rows, dim), dtype=np.float32)
        poisoned[0, 0], poisoned[1, 1] = np.nan, np.inf
        (split / "gradients.1.DC3MSP.npy").write_bytes(npy(poisoned))
        problems = {"DC2": f"gradients of shape ({rows}, 3) for features of shape ({rows}, ",
                    "DC3": "the gradients hold 2 values that are not finite (NaN or infinite)"}

        opened = dcs.run("round", "open", ROUND, "--roles", TEXT_ROLES, "--label-holder", "DC1", "--split-epochs", "1",
                         "--org", "DC1", *dcs.site)
        assert "leader DC1MSP" in opened, opened
        start = time.monotonic()
        status = dcs.wait_until_ended(ROUND)
        took = time.monotonic() - start
        assert f"round {ROUND}: aborted" in status, status

        with open_site(dcs.home, "DC1", task) as parts:
            rnd = parts.ledger.round(ROUND)
            recorded = {org: parts.ledger.exchange(ROUND, "DC1MSP", f"{org}MSP", "gradients.1") for org in extractors}
        assert sorted(rnd.abort_votes) == ["DC2MSP", "DC3MSP"], rnd  # the leader never voted: the sites ended it
        assert rnd.updated_at < rnd.deadline and took < 600, (took, rnd)  # at once, not at the deadline
        assert rnd.abort_reason is not None and "declines: the leader's gradients.1 cannot be applied" in \
            rnd.abort_reason and any(problem in rnd.abort_reason for problem in problems.values()), rnd.abort_reason
        for org, problem in problems.items():
            with Store.for_site(dcs.home, org) as store:
                declined = store.action(ROUND, "decline")
                arrived = store.artefacts(ROUND, kind="gradients.1")
                applied = store.action_done(ROUND, "apply-gradients.1")
            assert declined is not None and declined.detail is not None, org
            assert "the leader's gradients.1 cannot be applied" in declined.detail and problem in declined.detail, \
                declined.detail
            record = recorded[org]
            assert record is not None  # the malformed file is on the record, and is what arrived (hash-consistent)
            assert [(row.status.value, row.sha256) for row in arrived] == [("verified", record.sha256)], arrived
            here = dcs.home / "sites" / org / "rounds" / ROUND
            assert not applied and not (here / "split" / "top.1.pt").exists() and not (here / "extractor").exists()
            assert digests(extractors[org]) == installed[org]  # its extractor is the installed one, unchanged
            sent = sorted(kind for sender, _, kind in exchanges(status) if sender == f"{org}MSP")
            assert sent == ["features.1"], status  # nothing after the gradients: no final features
        print(f"{engine}: the round ended aborted {took:.0f} s after it opened")
