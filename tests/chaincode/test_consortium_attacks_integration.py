"""Issue 11's attacks on a real network of each engine, through the Gateway client: each one refused with its
typed error, and nothing written; and N orgs acting concurrently in one round all commit VALID.

Every attacker transaction is built, signed, endorsed (and, where the attack gets that far, submitted) with
``swarmfuse.client.gateway``; where the attacker controls what the client library would choose for it (the
proposal timestamp, the nonce and so the transaction ID) the test builds the ``gateway.ProposedTransaction``
itself and loads it with ``Network.load_proposal``. A refusal is checked by the endorsers' own words: the
gRPC code and every endorser's ``chaincode response <status>, <Error>: ...`` detail. "Nothing written" is
checked by the channel's height (no block was cut: the transaction never reached the orderer) and by the
state the attack aimed at, read back.

Channels (on the session's network, so that the task channel ``task1`` keeps the consortium state other
tests expect; each is created once, by the first test that needs it):

- ``task1`` (DC1-DC3 founders, the Auditor; DC4 is not on the channel): forged timestamps, and an auditor
  certificate from DC4's CA refused by the channel's MSPs;
- ``grab`` (DC1-DC4 and the Auditor on the channel, the chaincode committed, **no** ``Task:Init`` yet): DC4
  initialises first with founders of its choosing; the honest configuration (DC1-DC3, the Auditor) is then
  confirmed by all its founders, and DC4, on the channel but outside the task, issues itself auditor
  certificates;
- ``crowd`` (DC1-DC4 founders, the Auditor): non-participant opening, nonce grinding, a proposal stamped
  past a deadline, and the concurrency test;
- ``standing`` (DC1-DC4 founders, the Auditor): votes of a suspended org, and leave-and-return.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cc_world import MODALITIES, config_sha256, profile, sha, summary
from conftest import LedgerNetwork
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from swarmfuse.chaincode.contract.identity import ATTRIBUTES_OID
from swarmfuse.chaincode.contracts.leader import leader_for, rotation_order
from swarmfuse.client.gateway import (
    ECDSASigner,
    EndorseError,
    EvaluateError,
    Gateway,
    Identity,
    Proposal,
    Status,
    Transaction,
    load_profile,
    transaction_id,
)
from swarmfuse.network import tasks
from swarmfuse.network.configtx import endorsement_policy
from swarmfuse.network.control import Network
from swarmfuse.network.protocol.identity import P256_ORDER
from swarmfuse.network.state import TaskRecord
from swarmfuse.network.tasks import TransactionFailed
from swarmfuse.network.topology import parse_org_list

pytestmark = pytest.mark.integration

CHAINCODE = "swarmfuse"
SKEW = timedelta(seconds=300)  # the chaincode servers' default CHAINCODE_MAX_CLOCK_SKEW_S
PEER_WINDOW = timedelta(minutes=15)  # Fabric's peer.authentication.timewindow (core.yaml default)
GRAB, CROWD, STANDING = "grab", "crowd", "standing"
DCS = ("DC1", "DC2", "DC3", "DC4")
MODEL = sha("attacks/fused-model")
# What Fabric's gateway answers when no endorser would take a proposal (internal/pkg/gateway/api.go).
ENDORSE_FAILED = "failed to endorse transaction, see attached details for more info"
COLLECT_FAILED = "failed to collect enough transaction endorsements, see attached details for more info"
EVALUATE_FAILED = "failed to evaluate transaction, see attached details for more info"
REMOTE_ERROR = "rpc error: code = Unknown desc = "  # a remote peer's gRPC error, as the gateway reports it


# --- building and checking transactions through the Gateway client ---------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def crafted(gateway: Gateway, channel: str, function: str, *args: str, at: datetime | None = None,
            nonce: bytes | None = None, endorsers: Sequence[str] = ()) -> Proposal:
    """A proposal whose header the attacker wrote: its own timestamp and nonce (hence transaction ID)."""
    creator = gateway.identity.serialize()
    nonce = os.urandom(24) if nonce is None else nonce
    tx_id = transaction_id(nonce, creator)
    stamp = Timestamp()
    stamp.FromDatetime((at or now()).astimezone(UTC).replace(tzinfo=None))
    chaincode_id = chaincode_pb2.ChaincodeID(name=CHAINCODE)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel, tx_id=tx_id, timestamp=stamp,
        extension=proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id).SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec(chaincode_spec=chaincode_pb2.ChaincodeSpec(
        chaincode_id=chaincode_id, input=chaincode_pb2.ChaincodeInput(args=[a.encode() for a in (function, *args)])))
    payload = proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString())
    signed = proposal_pb2.SignedProposal(proposal_bytes=proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()).SerializeToString())
    proposed = gw.ProposedTransaction(transaction_id=tx_id, proposal=signed, endorsing_organizations=list(endorsers))
    return gateway.network(channel).load_proposal(proposed.SerializeToString())


def refused_endorsement(proposal: Proposal, status: int, error: str, fragment: str = "") -> EndorseError:
    """``proposal.endorse()`` must fail: ABORTED, and every endorser that answered refused it with
    ``chaincode response <status>, <error>: ...`` (containing ``fragment``)."""
    with pytest.raises(EndorseError) as info:
        proposal.endorse()
    failure = info.value
    assert failure.code == grpc.StatusCode.ABORTED, failure
    assert failure.details, failure
    for detail in failure.details:
        assert f"chaincode response {status}, {error}: " in detail.message, failure
        assert fragment in detail.message, failure
    return failure


def refused_evaluation(proposal: Proposal, status: int, error: str, fragment: str = "") -> EvaluateError:
    with pytest.raises(EvaluateError) as info:
        proposal.evaluate()
    failure = info.value
    assert f"chaincode response {status}, {error}: " in failure.message, failure
    assert fragment in failure.message, failure
    return failure


def committed(transaction: Transaction) -> Status:
    """Submit an endorsed transaction and wait for its commit status (whatever the code)."""
    return transaction.submit().status()


def submit_ok(gateway: Gateway, channel: str, function: str, *args: str) -> Any:
    """Endorse, submit, and require VALID; the chaincode's JSON result."""
    transaction = gateway.network(channel).contract(CHAINCODE).new_proposal(function, *args).endorse()
    status = committed(transaction)
    assert status.code_name == "VALID", (function, status)
    return json.loads(transaction.result) if transaction.result else None


def evaluate(gateway: Gateway, channel: str, function: str, *args: str) -> Any:
    return json.loads(gateway.network(channel).contract(CHAINCODE).evaluate_transaction(function, *args))


def height(net: LedgerNetwork) -> int:
    """The channel's height (newest block + 1) through DC1's Deliver service: unchanged when nothing was ordered."""
    return net.height("DC1")


def in_parallel(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def round_spec(participants: Sequence[str], deadline: datetime) -> str:
    mspids = sorted(f"{org}MSP" for org in participants)
    return json.dumps({
        "participants": mspids,
        "roles": {f"{org}MSP": MODALITIES[org][:1] for org in participants},
        "label_holder": mspids[-1],
        "method": "intermediate",
        "model_spec_sha256": sha("attacks/head"),
        "deadline": deadline.isoformat(),
    })


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- the channels ----------------------------------------------------------------------------------


def channel_without_task(network: Network, name: str, org_list: str) -> None:
    """Create channel ``name`` with the chaincode committed on it, as ``tasks.create`` does, but stop before
    ``Task:Init``: whoever calls first may propose the task."""
    with network.locked():
        current = network.require_state()
        orgs = parse_org_list(org_list, current.topology())
        policy = endorsement_policy(orgs)
        if current.engine == "fabric":
            tasks._create_on_fabric(network, name, orgs, policy)
        else:
            tasks._create_on_engine(network, name, orgs, policy)
        tasks._wait_until_endorsable(network, name, orgs)  # Task:Get answers "not initialised": reachable
        current.tasks[name] = TaskRecord(name=name, orgs=[o.name for o in orgs], policy=policy,
                                         created=dt.datetime.now(dt.UTC).isoformat())
        network.save(current)


def registered(net: LedgerNetwork, orgs: Sequence[str]) -> None:
    """Register each of ``orgs`` unless it has registered already."""
    for org in orgs:
        try:
            net.query(org, "Membership:Get", f"{org}MSP")
        except TransactionFailed as exc:
            if "NotFound" not in str(exc):
                raise
            net.submit(org, "Membership:Register", profile(org))


@pytest.fixture(scope="module")
def grab(ledger_network: LedgerNetwork) -> LedgerNetwork:
    if GRAB not in ledger_network.network.require_state().tasks:
        channel_without_task(ledger_network.network, GRAB, "DC1,DC2,DC3,DC4,Auditor")
    return LedgerNetwork(ledger_network.network, GRAB)


HONEST = {"task": GRAB, "founders": ["DC1MSP", "DC2MSP", "DC3MSP"], "auditors": ["AuditorMSP"]}


@pytest.fixture(scope="module")
def grab_task(grab: LedgerNetwork) -> LedgerNetwork:
    """``grab`` with the honest task active (whatever the first-caller test did first); DC1-DC3 registered."""
    digest = config_sha256(json.dumps(HONEST))
    try:
        grab.query("DC1", "Task:Get")
    except TransactionFailed as exc:
        assert "not initialised" in str(exc), exc
        try:
            awaiting = json.loads(grab.query("DC1", "Task:Proposal", digest))["awaiting"]
        except TransactionFailed as missing:
            assert "NotFound" in str(missing), missing
            awaiting = json.loads(grab.invoke("DC1", "Task:Init", json.dumps(HONEST)))["awaiting"]
        for mspid in awaiting:
            grab.submit(mspid.removesuffix("MSP"), "Task:Confirm", digest)
    registered(grab, ["DC1", "DC2", "DC3"])
    return grab


def founded_channel(ledger_network: LedgerNetwork, name: str) -> LedgerNetwork:
    if name not in ledger_network.network.require_state().tasks:
        tasks.create(ledger_network.network, name, "DC1,DC2,DC3,DC4,Auditor")
    net = LedgerNetwork(ledger_network.network, name)
    registered(net, DCS)
    return net


@pytest.fixture(scope="module")
def crowd(ledger_network: LedgerNetwork) -> LedgerNetwork:
    return founded_channel(ledger_network, CROWD)


@pytest.fixture(scope="module")
def standing(ledger_network: LedgerNetwork) -> LedgerNetwork:
    return founded_channel(ledger_network, STANDING)


@pytest.fixture
def gateways(ledger_network: LedgerNetwork) -> Iterator[dict[str, Gateway]]:
    """One Gateway connection per org (its ``user`` identity)."""
    with ExitStack() as stack:
        yield {org: stack.enter_context(ledger_network.gateway(org)) for org in (*DCS, "Auditor")}


# --- 1. time chosen by the client ------------------------------------------------------------------


@pytest.mark.parametrize("offset", [SKEW + timedelta(seconds=30), -SKEW - timedelta(seconds=30),
                                    PEER_WINDOW - timedelta(minutes=1)],
                         ids=["ahead-330s", "behind-330s", "ahead-14min"])
def test_a_timestamp_beyond_the_skew_is_refused_by_every_endorser_with_clock_skew(
        ledger_network: LedgerNetwork, gateways: dict[str, Gateway], offset: timedelta) -> None:
    """A proposal stamped outside the chaincode's allowed skew (300 s) but inside the peer's own time window:
    every endorser asked answers 400 ClockSkew, for writes and for queries; the same query stamped now is
    answered; nothing reaches the ledger."""
    net = ledger_network
    direction = "ahead of" if offset > timedelta(0) else "behind"
    endorsers = ["DC1MSP", "DC2MSP", "DC3MSP"]
    before_height = height(net)
    before_activity = evaluate(gateways["Auditor"], net.task, "Audit:Activity", "DC1MSP", "100", "")

    forged = crafted(gateways["DC1"], net.task, "Membership:Register", profile("DC1"), at=now() + offset,
                     endorsers=endorsers)
    failure = refused_endorsement(forged, 400, "ClockSkew", f"s {direction} this endorser's clock")
    assert sorted(d.msp_id for d in failure.details) == endorsers, failure  # each endorser refused on its own
    assert all("at most 300 s is accepted" in d.message for d in failure.details), failure
    # Without naming endorsers, the gateway's own peer refuses first.
    forged = crafted(gateways["DC2"], net.task, "Membership:Register", profile("DC2"), at=now() + offset)
    refused_endorsement(forged, 400, "ClockSkew", f"s {direction} this endorser's clock")

    refused_evaluation(crafted(gateways["Auditor"], net.task, "Audit:Members", "10", "", at=now() + offset),
                       400, "ClockSkew", direction)
    # The crafting itself is not what is refused: the same query stamped now is answered.
    members = json.loads(crafted(gateways["Auditor"], net.task, "Audit:Members", "10", "").evaluate())
    assert "items" in members

    assert height(net) == before_height
    assert evaluate(gateways["Auditor"], net.task, "Audit:Activity", "DC1MSP", "100", "") == before_activity


@pytest.mark.parametrize("offset", [timedelta(days=1), -timedelta(days=1), PEER_WINDOW + timedelta(minutes=1)],
                         ids=["ahead-1-day", "behind-1-day", "ahead-16min"])
def test_a_timestamp_beyond_the_peers_time_window_is_refused_before_the_chaincode(
        ledger_network: LedgerNetwork, gateways: dict[str, Gateway], offset: timedelta) -> None:
    """Further than ``peer.authentication.timewindow`` (15 min) from the peer's clock, Fabric's peers refuse the
    proposal themselves (their TimeWindowCheck filter) before the chaincode runs; the embedded engine does the
    same. Nothing reaches the ledger."""
    net = ledger_network
    endorsers = ["DC1MSP", "DC2MSP", "DC3MSP"]
    before_height = height(net)
    stamp = now() + offset
    refusal = f"request unauthorized due to incorrect timestamp {stamp.strftime('%Y-%m-%dT%H:%M:%SZ')}, peer time "
    window = ", peer.authentication.timewindow 15m0s"

    def refused_by_peers(failure: EndorseError | EvaluateError, code: grpc.StatusCode, message: str,
                         local: str) -> set[str]:
        """Every peer asked refused it with the time-window message (a remote peer's as its gRPC error reads)."""
        assert (failure.code, failure.message) == (code, message), failure
        assert failure.details, failure
        for d in failure.details:
            bare = d.message.removeprefix(REMOTE_ERROR)
            assert bare.startswith(refusal) and bare.endswith(window), failure
            assert (d.message == bare) == (d.msp_id == local), failure
        return {d.msp_id for d in failure.details}

    with pytest.raises(EndorseError) as named:
        crafted(gateways["DC1"], net.task, "Membership:Register", profile("DC1"), at=stamp,
                endorsers=endorsers).endorse()
    asked = refused_by_peers(named.value, grpc.StatusCode.ABORTED, COLLECT_FAILED, "DC1MSP")
    assert asked == set(endorsers)
    with pytest.raises(EndorseError) as chosen:
        crafted(gateways["DC2"], net.task, "Membership:Register", profile("DC2"), at=stamp).endorse()
    assert refused_by_peers(chosen.value, grpc.StatusCode.ABORTED, ENDORSE_FAILED, "DC2MSP") == {"DC2MSP"}
    # An evaluation: the gateway takes the refusal for an unavailable peer and tries the others too.
    with pytest.raises(EvaluateError) as evaluated:
        crafted(gateways["Auditor"], net.task, "Audit:Members", "10", "", at=stamp).evaluate()
    asked = refused_by_peers(evaluated.value, grpc.StatusCode.UNAVAILABLE, EVALUATE_FAILED, "AuditorMSP")
    assert "AuditorMSP" in asked and asked <= {"DC1MSP", "DC2MSP", "DC3MSP", "AuditorMSP"}
    assert height(net) == before_height


def test_a_proposal_stamped_ahead_or_behind_cannot_bend_a_deadline(
        crowd: LedgerNetwork, gateways: dict[str, Gateway]) -> None:
    """Issue 20's leader steering: DC2 stamps its proposal 4.5 minutes back (within the skew) and sets a
    deadline 4 minutes back, or 5 minutes ahead: either would have passed, for every endorser, long before
    anyone could act, and the participants could then elect leaders one block after another. Every deadline
    must leave the task's window (10 minutes) after the endorser's own clock: BadRequest, nothing ordered.
    Stamped past an honest deadline, the proposal is beyond the skew (ClockSkew); stamped as far ahead as the
    skew allows, it is still before the deadline (no new leader: Conflict); and DC3, outside the round, never
    acts on it (Forbidden)."""
    round_id = fresh("early")
    before_height = height(crowd)
    for deadline in (now() - timedelta(minutes=4), now() + timedelta(minutes=5)):
        backdated = crafted(gateways["DC2"], CROWD, "Rounds:Open", round_id, round_spec(("DC1", "DC2"), deadline),
                            at=now() - timedelta(minutes=4, seconds=30))
        refused_endorsement(backdated, 400, "BadRequest", "the task's deadline window (600 s)")
    assert height(crowd) == before_height

    deadline = now() + timedelta(minutes=11)
    opened = submit_ok(gateways["DC1"], CROWD, "Rounds:Open", round_id, round_spec(("DC1", "DC2"), deadline))
    before_height = height(crowd)
    far = crafted(gateways["DC2"], CROWD, "Rounds:ElectLeader", round_id,
                  json.dumps((deadline + timedelta(hours=1)).isoformat()),
                  at=datetime.fromisoformat(opened["deadline"]) + timedelta(seconds=30))  # ~11 min ahead
    refused_endorsement(far, 400, "ClockSkew", "ahead of this endorser's clock")
    near = crafted(gateways["DC2"], CROWD, "Rounds:ElectLeader", round_id,
                   json.dumps((deadline + timedelta(hours=1)).isoformat()), at=now() + timedelta(minutes=4))
    refused_endorsement(near, 409, "Conflict", f"leader {opened['leader']} has until")
    outsider = crafted(gateways["DC3"], CROWD, "Rounds:Abort", round_id, "deadline passed",
                       at=now() + timedelta(minutes=4))
    refused_endorsement(outsider, 403, "Forbidden", f"DC3MSP is not a participant of round {round_id}")

    assert height(crowd) == before_height
    current = evaluate(gateways["DC1"], CROWD, "Rounds:Get", round_id)
    assert (current["state"], current["leader"], current["abort_votes"]) == ("open", opened["leader"], [])


# --- 2. the leader chosen by the opener ------------------------------------------------------------


def test_a_non_participant_cannot_open_a_round(crowd: LedgerNetwork, gateways: dict[str, Gateway]) -> None:
    round_id = fresh("steal")
    before_height = height(crowd)
    spec = round_spec(("DC1", "DC2"), now() + timedelta(hours=1))
    proposal = gateways["DC4"].network(CROWD).contract(CHAINCODE).new_proposal("Rounds:Open", round_id, spec)
    refused_endorsement(proposal, 403, "Forbidden", "DC4MSP is not a participant of the round it opens")
    assert height(crowd) == before_height
    refused_evaluation(gateways["DC1"].network(CROWD).contract(CHAINCODE).new_proposal("Rounds:Get", round_id),
                       404, "NotFound", round_id)


def test_nonce_grinding_always_yields_the_rotation_leader(crowd: LedgerNetwork, gateways: dict[str, Gateway]) -> None:
    """DC1 endorses (without submitting) Rounds:Open of one participant set many times, each with a nonce
    (so a transaction ID), a round ID and a timestamp (within the skew) of its choosing: every endorsement
    names the same leader, the one the rotation counter gives, and nothing is written. The round submitted
    is led by that org; the set's next round by the next org in rotation order, whoever opens it."""
    participants = ("DC1", "DC3", "DC4")
    mspids = sorted(f"{org}MSP" for org in participants)
    spec = round_spec(participants, now() + timedelta(hours=1))
    before_height = height(crowd)
    endorsed: list[tuple[Transaction, dict[str, Any]]] = []
    for attempt in range(8):
        proposal = crafted(gateways["DC1"], CROWD, "Rounds:Open", fresh(f"grind{attempt}"), spec,
                           at=now() + timedelta(seconds=(attempt - 4) * 50), nonce=f"grind {attempt}".encode() * 3)
        transaction = proposal.endorse()
        endorsed.append((transaction, json.loads(transaction.result)))
    assert len({tx.transaction_id for tx, _ in endorsed}) == 8
    turns = {(rnd["turn"], rnd["leader"]) for _, rnd in endorsed}
    assert len(turns) == 1, f"the opener could choose among leaders {turns}"
    [(turn, leader)] = turns
    assert leader == leader_for(mspids, turn)
    assert height(crowd) == before_height

    chosen, chosen_round = endorsed[5]
    assert committed(chosen).code_name == "VALID"
    assert evaluate(gateways["DC4"], CROWD, "Rounds:Get", chosen_round["round_id"])["leader"] == leader
    following = submit_ok(gateways["DC4"], CROWD, "Rounds:Open", fresh("next"), spec)
    order = rotation_order(mspids)
    assert following["turn"] == turn + 1
    assert following["leader"] == order[(order.index(leader) + 1) % len(order)] != leader
    # The seven endorsements left unsubmitted are stale now (the rotation moved): submitting one fails.
    stale, _ = endorsed[0]
    assert committed(stale).code_name == "MVCC_READ_CONFLICT"


# --- 4. the first caller owns the task -------------------------------------------------------------


def test_the_first_caller_cannot_define_the_task(grab: LedgerNetwork, gateways: dict[str, Gateway]) -> None:
    """On a fresh channel, DC4 calls Task:Init first, naming itself and DC1 as founders and no auditor. That
    only proposes: nothing runs, DC4 cannot complete it alone nor get others to, and the configuration
    every founder of the honest proposal confirms becomes the task (not before the last confirmation)."""
    try:
        grab.query("DC1", "Task:Get")
        pytest.fail("the grab channel was initialised before this test")
    except TransactionFailed as exc:
        assert "Conflict: the task is not initialised" in str(exc)
    contract = {org: gateways[org].network(GRAB).contract(CHAINCODE) for org in (*DCS, "Auditor")}
    mine = {"task": GRAB, "founders": ["DC4MSP", "DC1MSP"], "auditors": []}
    mine_sha = config_sha256(json.dumps(mine))

    proposed = submit_ok(gateways["DC4"], GRAB, "Task:Init", json.dumps(mine))
    assert (proposed["status"], proposed["awaiting"], proposed["config_sha256"]) == ("pending", ["DC1MSP"], mine_sha)
    before_height = height(grab)
    refusals = [
        ("DC4", "Task:Confirm", (mine_sha,), 409, "Conflict", "DC4MSP has already confirmed"),
        ("DC2", "Task:Confirm", (mine_sha,), 403, "Forbidden", "DC2MSP is not among the founders"),
        ("DC4", "Task:Init", (json.dumps({"task": GRAB, "founders": ["DC4MSP"]}),), 400, "BadRequest", "founders"),
        ("DC4", "Task:Init", (json.dumps({"task": GRAB, "founders": ["DC1MSP", "DC2MSP"]}),), 403, "Forbidden",
         "DC4MSP is not among the founders"),
        ("DC4", "Task:Init", (json.dumps(mine),), 409, "Conflict", "is proposed already"),
        ("DC4", "Membership:Register", (profile("DC4"),), 409, "Conflict", "the task is not initialised"),
        ("DC4", "Rounds:Open", (fresh("r"), round_spec(("DC4", "DC1"), now() + timedelta(hours=1))), 409,
         "Conflict", "the task is not initialised"),
    ]
    for org, function, args, status, error, fragment in refusals:
        refused_endorsement(contract[org].new_proposal(function, *args), status, error, fragment)
    for org, function, args in (("DC4", "Task:Get", ()), ("DC4", "Audit:Members", ("10", "")),
                                ("Auditor", "Membership:Get", ("DC1MSP",))):
        refused_evaluation(contract[org].new_proposal(function, *args), 409, "Conflict", "the task is not initialised")
    assert height(grab) == before_height
    assert json.loads(contract["DC2"].evaluate_transaction("Task:Proposal", mine_sha))["status"] == "pending"

    honest_sha = config_sha256(json.dumps(HONEST))
    assert submit_ok(gateways["DC1"], GRAB, "Task:Init", json.dumps(HONEST))["awaiting"] == ["DC2MSP", "DC3MSP"]
    assert submit_ok(gateways["DC2"], GRAB, "Task:Confirm", honest_sha)["status"] == "pending"
    refused_evaluation(contract["DC1"].new_proposal("Task:Get"), 409, "Conflict", "the task is not initialised")
    assert submit_ok(gateways["DC3"], GRAB, "Task:Confirm", honest_sha)["status"] == "active"

    task = json.loads(contract["DC1"].evaluate_transaction("Task:Get"))
    assert (task["founders"], task["auditors"], task["config_sha256"]) == (HONEST["founders"], ["AuditorMSP"],
                                                                           honest_sha)
    assert task["confirmed_by"] == ["DC1MSP", "DC2MSP", "DC3MSP"]
    before_height = height(grab)
    refused_endorsement(contract["DC1"].new_proposal("Task:Confirm", mine_sha), 409, "Conflict",
                        f"task {GRAB} is already initialised")
    assert height(grab) == before_height
    assert json.loads(contract["DC1"].evaluate_transaction("Task:Proposal", mine_sha))["status"] == "superseded"


# --- 5. a certificate that makes itself an auditor -------------------------------------------------


def _low_s(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """Sign until the ECDSA signature has a low S (Fabric's MSP would rewrite a high-S one)."""
    while True:
        cert = builder.sign(key, hashes.SHA256())
        if decode_dss_signature(cert.signature)[1] <= P256_ORDER // 2:
            return cert


def self_issued_auditor(home: Path, *, ou: bool, attribute: bool) -> tuple[Identity, ECDSASigner]:
    """A DC4 client certificate that DC4 issues itself from its own CA, claiming the auditor role by OU
    ``auditor`` and/or the Fabric-CA attribute ``auditor=true``; otherwise shaped as cryptogen's signing
    certificates are (no extended key usage: Fabric's MSP checks the chain for server authentication)."""
    ca_dir = home / "crypto" / "peerOrganizations" / "dc4.swarmfuse.local" / "ca"
    ca_key = serialization.load_pem_private_key((ca_dir / "priv_sk").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(next(ca_dir.glob("*-cert.pem")).read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client")]
    if ou:
        names.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "auditor"))
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, "Auditor@dc4.swarmfuse.local"))
    # Fabric verifies the chain at the certificate's own start (not now): it must not predate its CA's.
    start = ca_cert.not_valid_before_utc + timedelta(seconds=1)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name(names)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(now() + timedelta(days=1))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    if attribute:
        attrs = json.dumps({"attrs": {"auditor": "true", "hf.EnrollmentID": "auditor"}}).encode()
        builder = builder.add_extension(x509.UnrecognizedExtension(ATTRIBUTES_OID, attrs), critical=False)
    cert = _low_s(builder, ca_key)  # type: ignore[arg-type]
    return Identity("DC4MSP", cert.public_bytes(serialization.Encoding.PEM)), ECDSASigner(key)


def connect_as(net: LedgerNetwork, org: str, identity: Identity, signer: ECDSASigner, tls_org: str = "DC4") -> Gateway:
    """``org``'s gateway peer, reached as ``identity`` over a TLS client pair of ``tls_org`` (mutual TLS)."""
    peer = load_profile(net.profile_path(org)).peer
    return Gateway.connect(peer.endpoint, peer.tls_root_cert, identity, signer, host_override=peer.host_override,
                           tls_client=load_profile(net.profile_path(tls_org)).tls_client)


@pytest.mark.parametrize(("ou", "attribute"), [(True, False), (False, True), (True, True)],
                         ids=["ou", "attribute", "both"])
def test_a_self_issued_auditor_certificate_reads_nothing(grab_task: LedgerNetwork, ledger_network: LedgerNetwork,
                                                         ou: bool, attribute: bool) -> None:
    """DC4 is on the ``grab`` channel but outside its task. Its own CA issues it a client certificate
    claiming the auditor role: the channel accepts the identity (it is a valid DC4 client), and the chaincode
    grants it nothing, since the task names AuditorMSP as its only auditor org. On ``task1``, where DC4 is
    not on the channel at all, the same certificate does not get past the channel's MSPs."""
    identity, signer = self_issued_auditor(ledger_network.home, ou=ou, attribute=attribute)
    reads = [("Membership:Get", ("DC1MSP",)), ("Audit:Members", ("10", "")), ("Task:Get", ()),
             ("Audit:Activity", ("DC1MSP", "10", "")), ("Summaries:Get", ("DC1MSP", "text"))]
    with connect_as(grab_task, "DC4", identity, signer) as gateway:
        contract = gateway.network(GRAB).contract(CHAINCODE)
        for function, args in reads:
            refused_evaluation(contract.new_proposal(function, *args), 403, "Forbidden", "DC4MSP holds none")
        # Nor may it act as a member: writes are refused at endorsement, nothing ordered.
        before_height = height(grab_task)
        refused_endorsement(contract.new_proposal("Membership:Approve", "DC1MSP"), 403, "Forbidden",
                            "DC4MSP holds none")
        assert height(grab_task) == before_height
    with connect_as(ledger_network, "DC1", identity, signer) as gateway:
        with pytest.raises(EvaluateError) as info:
            gateway.network(ledger_network.task).contract(CHAINCODE).evaluate_transaction("Audit:Members", "10", "")
        assert "creator org unknown" in str(info.value), info.value
    # The named auditor org still reads (its certificates carry no auditor OU or attribute at all).
    members = json.loads(grab_task.query("Auditor", "Audit:Members", "10", ""))
    assert {m["org"] for m in members["items"]} >= {"DC1MSP", "DC2MSP", "DC3MSP"}
    assert "DC4MSP" not in {m["org"] for m in members["items"]}


# --- 3 and 7. suspension: votes of suspended orgs, leave and return --------------------------------


def test_votes_of_a_suspended_org_do_not_count_and_leaving_does_not_undo_its_suspension(
        standing: LedgerNetwork, gateways: dict[str, Gateway]) -> None:
    """Four active founders. DC4 votes to suspend DC1; DC2 and DC3 suspend DC4. DC4's vote no longer counts:
    DC2's vote alone does not suspend DC1 although two votes of the (now three) others would. Suspended, DC4
    cannot vote; it leaves and registers again and is back suspended, still without a vote. Reinstated by a
    majority, its vote from before the suspension still does not count."""
    view = lambda org: evaluate(gateways["DC2"], STANDING, "Membership:Get", f"{org}MSP")
    contract = gateways["DC4"].network(STANDING).contract(CHAINCODE)
    assert {view(org)["status"] for org in DCS} == {"active"}, "the standing channel's members changed"

    cast = submit_ok(gateways["DC4"], STANDING, "Membership:Suspend", "DC1MSP")
    assert (cast["status"], cast["suspend_votes"], cast["electorate"]) == ("active", ["DC4MSP"], 3)
    submit_ok(gateways["DC2"], STANDING, "Membership:Suspend", "DC4MSP")
    assert submit_ok(gateways["DC3"], STANDING, "Membership:Suspend", "DC4MSP")["status"] == "suspended"
    assert (view("DC1")["suspend_votes"], view("DC1")["electorate"]) == ([], 2)

    before_height = height(standing)
    for function, args in (("Membership:Suspend", ("DC1MSP",)), ("Membership:Approve", ("DC4MSP",)),
                           ("Rounds:Open", (fresh("r"), round_spec(("DC4", "DC1"), now() + timedelta(hours=1))))):
        refused_endorsement(contract.new_proposal(function, *args), 403, "Forbidden",
                            "DC4MSP holds founder, registered")
    assert height(standing) == before_height

    after = submit_ok(gateways["DC2"], STANDING, "Membership:Suspend", "DC1MSP")
    assert (after["status"], after["suspend_votes"], after["electorate"]) == ("active", ["DC2MSP"], 2)

    # Leave and return: the suspension stays, and with it the lack of a vote.
    assert submit_ok(gateways["DC4"], STANDING, "Membership:Leave")["status"] == "left"
    assert submit_ok(gateways["DC4"], STANDING, "Membership:Register", profile("DC4"))["status"] == "suspended"
    before_height = height(standing)
    refused_endorsement(contract.new_proposal("Membership:Register", profile("DC4")), 409, "Conflict",
                        "DC4MSP is already registered (suspended)")
    for function, args in (("Membership:Suspend", ("DC1MSP",)), ("Summaries:Publish", (summary("DC4", "text"),))):
        refused_endorsement(contract.new_proposal(function, *args), 403, "Forbidden", "holds founder, registered")
    assert height(standing) == before_height
    assert (view("DC4")["status"], view("DC1")["status"]) == ("suspended", "active")

    # Reinstatement takes a majority of the electorate (DC1-DC3: two), and voids nothing in DC4's favour.
    assert submit_ok(gateways["DC1"], STANDING, "Membership:Approve", "DC4MSP")["status"] == "suspended"
    assert submit_ok(gateways["DC3"], STANDING, "Membership:Approve", "DC4MSP")["status"] == "active"
    assert (view("DC1")["status"], view("DC1")["suspend_votes"], view("DC1")["electorate"]) == (
        "active", ["DC2MSP"], 3)


# --- concurrency -----------------------------------------------------------------------------------


def rwset(transaction: Transaction) -> kv_rwset_pb2.KVRWSet:
    """The chaincode namespace's endorsed read-write set."""
    envelope = gw.PreparedTransaction.FromString(transaction.to_bytes()).envelope
    payload = common_pb2.Payload.FromString(envelope.payload)
    action = transaction_pb2.ChaincodeActionPayload.FromString(transaction_pb2.Transaction.FromString(payload.data)
                                                               .actions[0].payload)
    response = proposal_response_pb2.ProposalResponsePayload.FromString(action.action.proposal_response_payload)
    results = proposal_pb2.ChaincodeAction.FromString(response.extension).results
    [found] = [kv_rwset_pb2.KVRWSet.FromString(ns.rwset) for ns in rwset_pb2.TxReadWriteSet.FromString(results).ns_rwset
               if ns.namespace == CHAINCODE]
    return found


def concurrently(calls: Sequence[tuple[Gateway, str, tuple[str, ...]]]) -> tuple[list[Transaction], list[Status]]:
    """Endorse every call (in parallel) before submitting any, then submit them all at once and wait for
    every commit status: each transaction was simulated against the same committed state."""
    endorsed = in_parallel([
        lambda g=g, f=f, a=a: g.network(CROWD).contract(CHAINCODE).new_proposal(f, *a).endorse()
        for g, f, a in calls
    ])  # fmt: skip
    commits = in_parallel([lambda t=t: t.submit() for t in endorsed])
    return endorsed, in_parallel([lambda c=c: c.status() for c in commits])


def independent(endorsed: Sequence[Transaction]) -> None:
    """No transaction writes a key another one reads or writes."""
    sets = [rwset(t) for t in endorsed]
    for i, mine in enumerate(sets):
        written = {w.key for w in mine.writes}
        assert written, "every transaction writes"
        for j, other in enumerate(sets):
            if i != j:
                touched = {r.key for r in other.reads} | {w.key for w in other.writes}
                assert not written & touched, (i, j, written & touched)
        assert not mine.range_queries_info, "no range scan in a hot write path"


def test_concurrent_exchanges_and_acknowledgements_of_every_participant_all_commit_valid(
        crowd: LedgerNetwork, gateways: dict[str, Gateway]) -> None:
    """A round of DC1-DC4. The three participants other than the opener join at once; the three non-leaders
    record their exchange to the leader at once; then every
    participant acknowledges the model while the leader records the model's transfer to each of the three,
    seven transactions at once. Every transaction of a batch was endorsed before any of them was submitted,
    so any key one writes and another reads would fail MVCC validation: all commit VALID (each CommitStatus
    checked). A logical conflict still conflicts: two opens of one participant set (they advance the same
    rotation counter) endorsed together, one VALID and one MVCC_READ_CONFLICT."""
    round_id = fresh("conc")
    opened = submit_ok(gateways["DC1"], CROWD, "Rounds:Open", round_id, round_spec(DCS, now() + timedelta(hours=1)))
    leader = opened["leader"].removesuffix("MSP")
    others = [org for org in DCS if org != leader]
    endorsed, statuses = concurrently([(gateways[org], "Rounds:Join", (round_id,)) for org in DCS if org != "DC1"])
    assert [s.code_name for s in statuses] == ["VALID"] * 3, statuses
    independent(endorsed)

    def shard(receiver: str, kind: str, digest: str) -> str:
        return json.dumps({"receiver": f"{receiver}MSP", "kind": kind, "sha256": digest, "bytes": 4096,
                           "entity_count": 64})

    features = [(gateways[org], "Rounds:RecordExchange", (round_id, shard(leader, "features", sha(org))))
                for org in others]
    endorsed, statuses = concurrently(features)
    assert [s.code_name for s in statuses] == ["VALID"] * 3, statuses
    independent(endorsed)

    submit_ok(gateways[leader], CROWD, "Rounds:MarkFused", round_id, MODEL, "4096", json.dumps({"accuracy": 0.9}),
              json.dumps((now() + timedelta(hours=1)).isoformat()), "null")
    batch = [(gateways[org], "Rounds:Acknowledge", (round_id, MODEL, "")) for org in DCS]
    batch += [(gateways[leader], "Rounds:RecordExchange", (round_id, shard(org, "model", MODEL))) for org in others]
    endorsed, statuses = concurrently(batch)
    assert [s.code_name for s in statuses] == ["VALID"] * 7, statuses
    independent(endorsed)
    blocks = sorted({s.block_number for s in statuses})
    print(f"\n7 concurrent transactions committed VALID in block(s) {blocks}; keys read per transaction: "
          f"{[len(rwset(t).reads) for t in endorsed]}")

    fused = evaluate(gateways["Auditor"], CROWD, "Rounds:Get", round_id)
    assert sorted(fused["acknowledgements"]) == [f"{org}MSP" for org in DCS]
    assert submit_ok(gateways[others[0]], CROWD, "Rounds:Close", round_id)["state"] == "closed"
    exchanges = json.loads(crowd.query("Auditor", "Audit:Exchanges", round_id, "100", ""))
    assert len(exchanges["items"]) == 6

    spec = round_spec(("DC2", "DC3"), now() + timedelta(hours=1))
    opens = [(gateways[org], "Rounds:Open", (fresh("twin"), spec)) for org in ("DC2", "DC3")]
    _, statuses = concurrently(opens)
    assert sorted(s.code_name for s in statuses) == ["MVCC_READ_CONFLICT", "VALID"], statuses
