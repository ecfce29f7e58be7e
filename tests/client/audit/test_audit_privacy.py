"""``audit verify``'s privacy check: the agreed budget, every release's ε and every budget's spending, recomputed
with the accountant from what the ledger records; a figure that does not follow is named."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "chaincode"))  # the in-memory world's helpers
from cc_world import consortium, sha, summary
from test_consortium_agreement import agreed, terms
from test_consortium_privacy import PRIVACY, exchange, release, round_led_by_another

from swarmfuse.chaincode.contracts import keys
from swarmfuse.client.audit.privacy import privacy_checks
from swarmfuse.client.audit.report import Status
from swarmfuse.client.privacy.accountant import epsilon_of, noise_multiplier


def test_epsilons_and_spending_are_recomputed_from_the_records() -> None:
    world = consortium(3)
    world.ok("DC2", "Summaries:Publish", summary("DC2", "image"))
    sigma = noise_multiplier(4.0, 1e-5)
    privacy = PRIVACY | {"budget_epsilon": "8", "budget_sigma": noise_multiplier(8.0, 1e-5)}
    digest = agreed(world, terms(privacy=privacy))["agreement_sha256"]
    rid, leader = round_led_by_another(world, digest, "DC2")
    made = release("DC2MSP", noise_multiplier=sigma, epsilon=f"{epsilon_of(float(sigma), 1e-5):.9f}")
    world.ok("DC2", "Rounds:RecordExchange", rid, exchange(leader, sha("release"), made))
    found = {c.subject: c for c in privacy_checks(world.ledger.state)}
    assert {c.status for c in found.values()} == {Status.PASS} and len(found) == 3
    budget = found[f"budget DC2MSP {sha('DC2/image/manifest/100')[:16]}"]
    assert budget.detail.startswith("1 release(s) spend epsilon 4.0")

    key = keys.budget_key("DC2MSP", sha("DC2/image/manifest/100"))
    record = json.loads(world.ledger.state[key])
    world.ledger.state[key] = json.dumps(record | {"mu_squared": "0"}).encode()  # a majority forgave the spending
    bent = next(c for c in privacy_checks(world.ledger.state) if c.subject.startswith("budget"))
    assert bent.status is Status.FAIL and "its recorded releases give" in bent.detail

    exchange_key = keys.exchange_key(rid, "DC2MSP", leader, "features")
    recorded = json.loads(world.ledger.state[exchange_key])
    recorded["privacy"]["epsilon"] = "1.000000000"  # a release claiming more privacy than its noise gives
    world.ledger.state[exchange_key] = json.dumps(recorded).encode()
    claim = next(c for c in privacy_checks(world.ledger.state) if c.subject.startswith("release"))
    assert claim.status is Status.FAIL and "the accountant gives 4.0000" in claim.detail


def test_a_budget_sigma_that_is_not_the_budget_epsilon_fails() -> None:
    world = consortium(3)
    digest = agreed(world, terms(privacy=PRIVACY))["agreement_sha256"]  # budget_sigma 0.80 for epsilon 6: wrong
    check = next(c for c in privacy_checks(world.ledger.state) if c.subject == f"agreement {digest[:16]}")
    assert check.status is Status.FAIL and "is not the noise multiplier of epsilon 6" in check.detail
