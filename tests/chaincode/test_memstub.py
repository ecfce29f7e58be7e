"""The in-memory ledger models the peer: committed reads, pagination, history, discarded failures."""

from __future__ import annotations

import pytest
from cc_identities import DC1

from swarmfuse.chaincode.memstub import MemoryLedger
from swarmfuse.chaincode.stub import Invocation, Response, create_composite_key


class Writer:
    """A raw chaincode: writes each (key, value) argument pair; fails when told to."""

    def invoke(self, stub) -> Response:  # type: ignore[no-untyped-def]
        args = [a.decode() for a in stub.invocation.args]
        seen = stub.get_state(args[0]) if args else None
        for key, value in zip(args[::2], args[1::2], strict=False):
            if value == "-":
                stub.del_state(key)
            else:
                stub.put_state(key, value.encode())
        stub.set_event("Wrote", b"")
        status = 500 if stub.invocation.function == "fail" else 200
        return Response(status, payload=seen or b"")


def test_reads_see_committed_state_only_and_failures_are_discarded() -> None:
    ledger, cc = MemoryLedger(), Writer()
    assert ledger.submit(cc, DC1, "ok", "a", "1").payload == b""
    assert ledger.submit(cc, DC1, "ok", "a", "2").payload == b"1"
    before = ledger.snapshot()
    assert ledger.submit(cc, DC1, "fail", "a", "3", "b", "4").status == 500
    assert ledger.snapshot() == before
    assert ledger.evaluate(cc, DC1, "ok", "a", "9").payload == b"2"
    assert ledger.state["a"] == b"2" and len(ledger.events) == 2


def test_history_records_tx_ids_timestamps_and_deletes() -> None:
    ledger, cc = MemoryLedger(), Writer()
    ledger.submit(cc, DC1, "ok", "a", "1")
    ledger.submit(cc, DC1, "ok", "a", "-")
    history = ledger.history["a"]
    assert [(h.value, h.is_delete) for h in history] == [(b"1", False), (b"", True)]
    assert history[0].tx_id != history[1].tx_id and history[0].timestamp < history[1].timestamp
    assert "a" not in ledger.state


def test_composite_and_range_pagination() -> None:
    ledger, cc = MemoryLedger(), Writer()
    keys = [create_composite_key("t", [str(i)]) for i in range(5)]
    ledger.submit(cc, DC1, "ok", *[x for k in keys for x in (k, "v")], "plain1", "p", "plain2", "q")
    stub = ledger.stub(DC1, "q")
    seen, bookmark = [], ""
    while True:
        page = stub.get_state_by_partial_composite_key_with_pagination("t", [], 2, bookmark)
        seen += [kv.key for kv in page.items]
        bookmark = page.bookmark
        if not bookmark:
            break
    assert seen == keys
    assert [kv.key for kv in stub.get_state_by_range("", "")] == ["plain1", "plain2"]
    page = stub.get_state_by_range_with_pagination("", "", 1)
    assert [kv.key for kv in page.items] == ["plain1"] and page.bookmark == "plain2"
    assert stub.invocation == Invocation("q", ())



def test_empty_value_is_refused_like_on_a_peer() -> None:
    ledger = MemoryLedger()
    with pytest.raises(ValueError, match="empty; use del_state"):
        ledger.submit(Writer(), DC1, "ok", "a", "")
    assert ledger.evaluate(Writer(), DC1, "ok", "a").payload == b""


class Clocks:
    """A raw chaincode reporting the proposal time and the endorser's clock it runs under."""

    def invoke(self, stub) -> Response:  # type: ignore[no-untyped-def]
        from swarmfuse.chaincode.contract.clock import endorser_now

        return Response(200, payload=f"{stub.timestamp.isoformat()}|{endorser_now().isoformat()}|{stub.tx_id}".encode())


def test_the_endorser_clock_is_distinct_from_a_forged_proposal_timestamp() -> None:
    from datetime import timedelta

    from swarmfuse.chaincode.memstub import DEFAULT_START

    ledger = MemoryLedger()
    honest = ledger.evaluate(Clocks(), DC1, "t").payload.decode().split("|")
    assert honest[0] == honest[1] == (DEFAULT_START + ledger.tick).isoformat()
    forged = DEFAULT_START + timedelta(days=1)
    response = ledger.evaluate(Clocks(), DC1, "t", at=forged, tx_id="ab" * 32)
    stamped, endorser, tx_id = response.payload.decode().split("|")
    assert stamped == forged.isoformat() and endorser == (DEFAULT_START + 2 * ledger.tick).isoformat()
    assert tx_id == "ab" * 32
    ledger.endorser_drift = timedelta(minutes=-7)
    _, endorser, _ = ledger.evaluate(Clocks(), DC1, "t").payload.decode().split("|")
    assert endorser == (DEFAULT_START + 3 * ledger.tick - timedelta(minutes=7)).isoformat()


def test_round_trips_are_counted_per_transaction() -> None:
    ledger, cc = MemoryLedger(), Writer()
    ledger.submit(cc, DC1, "ok", "a", "1", "b", "2")
    assert dict(ledger.last.calls) == {"GET_STATE": 1} and ledger.last.round_trips == 1
    stub = ledger.stub(DC1, "q")
    stub.get_state("a")
    stub.get_multiple_states(["a", "b", "c"])
    list(stub.get_state_by_range("", ""))
    list(stub.get_history_for_key("a"))
    expected = {"GET_STATE": 1, "GET_STATE_MULTIPLE": 1, "GET_STATE_BY_RANGE": 1, "GET_HISTORY_FOR_KEY": 1}
    assert dict(stub.calls) == expected
    assert stub.multiple_states is False
    ledger.multiple_states = True
    assert ledger.stub(DC1, "q").multiple_states is True


def test_a_block_is_validated_as_a_peer_validates_it() -> None:
    from swarmfuse.chaincode.memstub import Validation

    ledger, cc = MemoryLedger(), Writer()
    ledger.submit(cc, DC1, "ok", "a", "1")
    # Both read "a" (the Writer reads its first key) and write it: the second is an MVCC conflict.
    first = ledger.endorse(cc, DC1, "ok", "a", "2")
    second = ledger.endorse(cc, DC1, "ok", "a", "3")
    # Disjoint keys never conflict; a failed endorsement is never committed.
    third = ledger.endorse(cc, DC1, "ok", "z", "9")
    failed = ledger.endorse(cc, DC1, "fail", "y", "1")
    codes = ledger.commit_block([first, second, third, failed])
    assert codes == [Validation.VALID, Validation.MVCC_READ_CONFLICT, Validation.VALID, Validation.ENDORSEMENT_FAILED]
    assert ledger.state == {"a": b"2", "z": b"9"}
