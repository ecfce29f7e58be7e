"""Property test: random, malformed, out-of-order and wrongly authorised calls against the contracts.

Every refused call must be a typed error (never a 500) and leave the ledger byte-for-byte unchanged;
after every accepted call the round invariants must hold.
"""

from __future__ import annotations

import json
from datetime import timedelta

from cc_world import World, founded, profile, sha
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmfuse.chaincode.contract.canonical import canonical_json
from swarmfuse.chaincode.contracts.keys import ABORT_VOTE, ACK, EXCHANGE, JOIN, ROUND
from swarmfuse.chaincode.contracts.records import DEFAULT_DEADLINE_WINDOW_S, AbortVote, Acknowledgement, Exchange, Round

ORGS = ["DC1", "DC2", "DC3", "DC4", "Auditor"]
MSPS = ["DC1MSP", "DC2MSP", "DC3MSP", "DC4MSP", "DC9MSP"]
ROUND_IDS = ["r1", "r2", "bad id", ""]
MODEL = sha("model")
HASHES = [MODEL, sha("other"), "xyz", MODEL.upper()]
TRANSITIONS = {
    ("open", "open"),
    ("open", "fused"),
    ("open", "aborted"),
    ("fused", "closed"),
    ("fused", "aborted"),
}

participants = st.lists(st.sampled_from(["DC1", "DC2", "DC3", "DC4"]), min_size=1, max_size=4, unique=True)


@st.composite
def round_spec(draw: st.DrawFn, world: World) -> str:
    orgs = draw(participants)
    modality = {"DC1": "text", "DC2": "image", "DC3": "image", "DC4": "text"}
    spec = {
        "participants": [f"{o}MSP" for o in orgs],
        "roles": {f"{o}MSP": [draw(st.sampled_from([modality[o], "audio"]))] for o in orgs},
        "label_holder": draw(st.sampled_from(MSPS)),
        "method": draw(st.sampled_from(["intermediate", "late", "magic"])),
        "model_spec_sha256": draw(st.sampled_from(HASHES)),
        "deadline": (world.now + timedelta(hours=draw(st.sampled_from([-1, 1, 3])))).isoformat(),
    }
    if draw(st.booleans()):
        spec.pop(draw(st.sampled_from(sorted(spec))))
    return json.dumps(spec)


def exchange() -> st.SearchStrategy[str]:
    return st.builds(
        lambda receiver, kind, digest, size: json.dumps(
            {"receiver": receiver, "kind": kind, "sha256": digest, "bytes": size, "entity_count": 10}
        ),
        st.sampled_from(MSPS),
        st.sampled_from(["features", "model", "bad kind"]),
        st.sampled_from(HASHES),
        st.sampled_from([1, 0, 4096]),
    )


def call(world: World) -> st.SearchStrategy[tuple[str, str, tuple[str, ...]]]:
    rid = st.sampled_from(ROUND_IDS)
    digest = st.sampled_from(HASHES)
    deadline = st.sampled_from([-1, 2]).map(lambda h: json.dumps((world.now + timedelta(hours=h)).isoformat()))
    metrics = st.sampled_from(['{"acc": 0.9}', "{}", '{"acc": [1]}', "nope"])
    per_function = {
        "Rounds:Open": st.tuples(rid, round_spec(world)),
        "Rounds:RecordExchange": st.tuples(rid, exchange()),
        "Rounds:MarkFused": st.tuples(rid, digest, st.sampled_from(["4096", "0", "x"]), metrics, deadline, st.just("null")),
        "Rounds:Acknowledge": st.tuples(rid, digest, st.just("")),
        "Rounds:Join": st.tuples(rid),
        "Rounds:Close": st.tuples(rid),
        "Rounds:Abort": st.tuples(rid, st.sampled_from(["why", "x" * 600])),
        "Rounds:ElectLeader": st.tuples(rid, deadline),
        "Membership:Approve": st.tuples(st.sampled_from(MSPS)),
        "Membership:Suspend": st.tuples(st.sampled_from(MSPS)),
        "Membership:Register": st.tuples(st.sampled_from([profile("DC4"), "{}"])),
        "Task:Init": st.tuples(st.just('{"task":"task1","founders":["DC1MSP"]}')),
        "Rounds:Nope": st.tuples(rid),
    }
    return st.sampled_from(sorted(per_function)).flatmap(
        lambda fn: st.tuples(st.sampled_from(ORGS), st.just(fn), per_function[fn] | st.tuples(rid))
    )


def next_step(world: World) -> st.SearchStrategy[tuple[str, str, tuple[str, ...]]]:
    """A call that moves round r1 (or r2) on: right function, mostly the right org."""
    rnd = rounds(world).get("r1")
    if rnd is None or rnd.state.value in ("closed", "aborted"):
        rid = "r2" if rnd is not None else "r1"
        spec = world.round_spec()
        return st.tuples(st.sampled_from(["DC1", "DC2", "DC3", "DC4"]), st.just("Rounds:Open"), st.just((rid, spec)))
    orgs = [p.removesuffix("MSP") for p in rnd.participants]
    leader = rnd.leader.removesuffix("MSP")
    unjoined = [p.removesuffix("MSP") for p in rnd.participants
                if f"\x00{JOIN}\x00{rnd.round_id}\x00{p}\x00" not in world.ledger.state]
    if rnd.state.value == "open" and unjoined:
        return st.tuples(st.sampled_from([*unjoined, "DC4"]), st.just("Rounds:Join"), st.just((rnd.round_id,)))
    if rnd.state.value == "open":
        exchange_call = st.tuples(
            st.sampled_from(orgs),
            st.just("Rounds:RecordExchange"),
            st.sampled_from(rnd.participants).map(
                lambda r: (
                    "r1",
                    json.dumps({"receiver": r, "kind": "features", "sha256": MODEL, "bytes": 10, "entity_count": 1}),
                )
            ),
        )
        fuse_call = st.tuples(
            st.sampled_from([leader, leader, *ORGS]),
            st.just("Rounds:MarkFused"),
            st.just(("r1", MODEL, "4096", '{"acc": 0.9}', world.deadline(2), "null")),
        )
        abort_call = st.tuples(st.sampled_from(orgs), st.just("Rounds:Abort"), st.just(("r1", "stop")))
        return exchange_call | fuse_call | fuse_call | abort_call
    acknowledged = {a.org for a in acks(world) if a.round_id == "r1"}
    if acknowledged == set(rnd.participants):
        return st.tuples(st.sampled_from([*orgs, "DC4"]), st.just("Rounds:Close"), st.just(("r1",)))
    return st.tuples(
        st.sampled_from([*orgs, *orgs, "DC4"]),
        st.just("Rounds:Acknowledge"),
        st.sampled_from([("r1", MODEL, ""), ("r1", MODEL, ""), ("r1", HASHES[1], "")]),
    )


def acks(world: World) -> list[Acknowledgement]:
    prefix = f"\x00{ACK}\x00"
    return [Acknowledgement.model_validate_json(v) for k, v in world.ledger.state.items() if k.startswith(prefix)]


def rounds(world: World) -> dict[str, Round]:
    return {
        r.round_id: r
        for r in (
            Round.model_validate_json(v) for k, v in world.ledger.state.items() if k.startswith(f"\x00{ROUND}\x00")
        )
    }


def check_invariants(world: World, before: dict[str, Round]) -> None:
    after = rounds(world)
    recorded: dict[str, dict[str, str]] = {}
    for ack in acks(world):
        recorded.setdefault(ack.round_id, {})[ack.org] = ack.model_sha256
    for rid, rnd in after.items():
        assert rnd.leader in rnd.participants and rnd.leader not in rnd.past_leaders
        assert set(recorded.get(rid, {})) <= set(rnd.participants)
        assert all(sha == rnd.model_sha256 for sha in recorded.get(rid, {}).values())
        if rnd.state.value == "closed":
            assert rnd.acknowledgements == recorded[rid] and set(rnd.acknowledgements) == set(rnd.participants)
        else:
            assert rnd.acknowledgements == {}
        if rnd.state.value == "open":
            assert rid not in recorded
        else:  # fused, closed, or aborted after fusing: nobody was taken along without its own join
            assert rnd.state.value == "aborted" or all(
                f"\x00{JOIN}\x00{rid}\x00{p}\x00" in world.ledger.state for p in rnd.participants)
        if rid in before:
            assert (before[rid].state.value, rnd.state.value) in TRANSITIONS or before[rid] == rnd
        if rid not in before or before[rid].deadline != rnd.deadline:  # set now: the window after the clock
            assert rnd.deadline >= world.now + timedelta(seconds=DEFAULT_DEADLINE_WINDOW_S)
    for key, value in world.ledger.state.items():
        assert value == canonical_json(json.loads(value)), f"{key!r} is not stored as canonical JSON"
        if key.startswith(f"\x00{EXCHANGE}\x00"):
            ex = Exchange.model_validate_json(value)
            assert {ex.sender, ex.receiver} <= set(after[ex.round_id].participants) and ex.sender != ex.receiver
        if key.startswith(f"\x00{ABORT_VOTE}\x00"):
            vote = AbortVote.model_validate_json(value)
            assert vote.org in after[vote.round_id].participants


def test_random_calls_are_refused_cleanly_or_keep_the_invariants() -> None:
    tally = {"refused": 0, "accepted": 0, "closed": 0}

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def run(data: st.DataObject) -> None:
        world = founded()
        world.ok("DC4", "Membership:Register", profile("DC4"))
        world.ok("DC1", "Rounds:Open", "r1", world.round_spec())
        if data.draw(st.booleans()):  # else the random steps join it (or fail to fuse it before they do)
            world.join_all("r1")
        for _ in range(data.draw(st.integers(8, 25))):
            if data.draw(st.integers(0, 9)) == 0:
                world.ledger.clock += timedelta(hours=2)
            org, function, args = data.draw(next_step(world) if data.draw(st.booleans()) else call(world))
            before_state, before_rounds = world.ledger.snapshot(), rounds(world)
            response = world.submit(org, function, *args)
            if response.ok:
                tally["accepted"] += 1
                check_invariants(world, before_rounds)
                tally["closed"] += json.loads(response.payload or b"{}").get("state") == "closed"
            else:
                tally["refused"] += 1
                assert response.status in (400, 403, 404, 409), response.message
                assert response.message.split(":")[0] in {"BadRequest", "Forbidden", "NotFound", "Conflict"}
                assert world.ledger.snapshot() == before_state

    run()
    assert tally["refused"] >= 200, tally
    assert tally["accepted"] >= 100, tally
    assert tally["closed"] > 0, tally
