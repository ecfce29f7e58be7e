"""Every key that records one org's own act carries that org's key-level endorsement policy; shared state
carries none (the chaincode's majority guards it). Checked on the state a whole consortium flow leaves."""

from __future__ import annotations

import json

from cc_world import consortium, sha, summary

from swarmfuse.chaincode.contract.endorsement import owner_and_majority
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.stub import split_composite_key

MODEL = sha("model")


def test_own_acts_carry_their_orgs_policy_and_shared_state_none() -> None:
    world = consortium(4)  # DC4 admitted by the votes of DC1 and DC2 (vote keys)
    world.ok("DC1", "Summaries:Publish", summary("DC1", "text"))
    world.ok("DC1", "Rounds:Open", "p1", world.round_spec())
    rnd = world.join_all("p1")
    sender = next(p for p in rnd["participants"] if p != rnd["leader"])
    shard = json.dumps({"receiver": rnd["leader"], "kind": "features", "sha256": MODEL, "bytes": 1, "entity_count": 1})
    world.ok(sender.removesuffix("MSP"), "Rounds:RecordExchange", "p1", shard)
    world.ok(rnd["leader"].removesuffix("MSP"), "Rounds:MarkFused", "p1", MODEL, "4096", "{}", world.deadline(), "null")
    for org in rnd["participants"]:
        world.ok(org.removesuffix("MSP"), "Rounds:Acknowledge", "p1", MODEL, "")
    world.ok("DC1", "Rounds:Open", "p2", world.round_spec())
    world.ok("DC1", "Rounds:Abort", "p2", "changed our minds")

    orgs = ["DC1MSP", "DC2MSP", "DC3MSP", "DC4MSP"]
    own = {key: owner for key in world.ledger.state if (owner := keys.owner_of(key)) is not None
           and split_composite_key(key)[0] != keys.ACTIVITY}
    seen_types = {split_composite_key(key)[0] for key in own}
    assert seen_types == {keys.CONFIRMATION, keys.MEMBER, keys.VOTE, keys.SUMMARY, keys.JOIN, keys.EXCHANGE, keys.ACK, keys.ABORT_VOTE}
    for key, owner in own.items():
        # The founding, the founders' registrations and the votes admitting DC4 came before DC4 was admitted.
        object_type = split_composite_key(key)[0]
        before_dc4 = object_type in (keys.CONFIRMATION, keys.VOTE) or (object_type == keys.MEMBER and owner != "DC4MSP")
        expected_orgs = orgs[:3] if before_dc4 else orgs
        assert world.ledger.policies.get(key) == owner_and_majority(owner, expected_orgs), key
    shared = [key for key in world.ledger.state if keys.owner_of(key) is None]
    assert {split_composite_key(key)[0] for key in shared} >= {keys.TASK, keys.STANDING, keys.ROSTER, keys.ROUND}
    assert not [key for key in shared if key in world.ledger.policies]
