"""A refusal of the task's chaincode arrives as the exception of its status: what every endorsing peer reported
as ``chaincode response <status>``; peers that disagree, or no status at all, leave the base class."""

from __future__ import annotations

import grpc
import pytest

from swarmfuse.client.gateway import EndorseError, EvaluateError, PeerDetail
from swarmfuse.client.ledger import LedgerBadRequest, LedgerConflict, LedgerForbidden, LedgerNotFound, LedgerRefused
from swarmfuse.client.ledger.refusals import refusal


def error(kind: type, *messages: str) -> EndorseError:
    details = [PeerDetail(f"127.0.0.1:70{i}1", f"DC{i}MSP", m) for i, m in enumerate(messages, start=1)]
    return kind("tx", grpc.StatusCode.ABORTED, "failed to endorse transaction", details)


@pytest.mark.parametrize(("status", "expected"), [(400, LedgerBadRequest), (403, LedgerForbidden),
                                                  (404, LedgerNotFound), (409, LedgerConflict)])
def test_the_chaincodes_status_picks_the_class(status: int, expected: type[LedgerRefused]) -> None:
    message = f"chaincode response {status}, Something: the reason"
    found = refusal("Rounds:Join", error(EndorseError, message, message))
    assert type(found) is expected and found.status == status
    assert (found.function, found.message) == ("Rounds:Join", f"{message}; {message}")
    assert str(found) == f"Rounds:Join: {message}; {message}"
    assert type(refusal("Rounds:Get", error(EvaluateError, message))) is expected


def test_disagreeing_peers_or_no_status_leave_the_base_class() -> None:
    split = refusal("Rounds:Join", error(EndorseError, "chaincode response 409, Conflict: joined",
                                         "chaincode response 403, Forbidden: not a participant"))
    assert type(split) is LedgerRefused and split.status is None
    unreachable = refusal("Rounds:Join", error(EndorseError, "connection refused"))
    assert type(unreachable) is LedgerRefused and "connection refused" in unreachable.message
    bare = refusal("Rounds:Join", EndorseError("tx", grpc.StatusCode.UNAVAILABLE, "no peer", []))
    assert type(bare) is LedgerRefused and "no peer" in bare.message
