"""``audit verify``'s founders' confirmations: the task and every agreement stand on each founder's own key; a
shared record a colluding majority wrote without them (terms put in force that a founder never confirmed, a
founder's confirmation gone) fails, naming the founder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "chaincode"))  # the in-memory world's helpers
from cc_world import consortium
from test_consortium_agreement import agreed, terms

from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.records import Agreement
from swarmfuse.client.audit.report import Status
from swarmfuse.client.audit.signatures import confirmation_checks


def test_terms_in_force_need_every_founders_own_confirmation() -> None:
    world = consortium(3)
    first = agreed(world, terms())
    pending = world.ok("DC1", "Agreement:Propose", terms(retention_days=1))  # DC1's alone so far
    found = {c.subject: c for c in confirmation_checks(world.ledger.state)}
    assert {s: c.status for s, c in found.items()} == {
        "task task1": Status.PASS, f"agreement proposal {first['agreement_sha256'][:16]}": Status.PASS,
        f"agreement proposal {pending['agreement_sha256'][:16]}": Status.PASS,
        "agreement in force (version 1)": Status.PASS}

    # a majority puts DC1's pending proposal in force, as if DC2 and DC3 had confirmed it
    forged = Agreement.model_validate_json(world.ledger.state[keys.agreement_key()]).model_copy(
        update={"agreement_sha256": pending["agreement_sha256"], "version": 2})
    world.ledger.state[keys.agreement_key()] = forged.model_dump_json().encode()
    check = next(c for c in confirmation_checks(world.ledger.state) if c.subject.startswith("agreement in force"))
    assert check.status is Status.FAIL and check.detail.startswith("DC2MSP, DC3MSP never confirmed agreement")

    # and a founder's confirmation of the task, gone
    task = json.loads(world.ledger.state[keys.task_key()])
    del world.ledger.state[keys.confirmation_key(task["config_sha256"], "DC2MSP")]
    check = next(c for c in confirmation_checks(world.ledger.state) if c.subject == "task task1")
    assert check.status is Status.FAIL and "DC2MSP never confirmed configuration" in check.detail
