"""Ledger conformance on every engine (the session's ``ledger_network``): bad input is refused the way a
Fabric v3.1.5 network refuses it — the gRPC error where Fabric refuses before ordering, otherwise the
transaction validation code in the block's TRANSACTIONS_FILTER and in CommitStatus — and nothing of it
is written: the state read back is unchanged and the block holds the invalid transaction only as such.

Plain key/value cases use the ``Sample`` contract on the task channel. The read-modify-write and the
range-scan cases need consortium transactions, which change membership state; they run on a channel
of their own (``conform``) so the task channel's consortium state stays as other tests expect it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from conftest import LedgerNetwork
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2
from fabric_protos.peer.transaction_pb2 import TxValidationCode
from tls_pki import seek_request

from swarmfuse.client.gateway import (
    DeliverError,
    ECDSASigner,
    EndorseError,
    Gateway,
    Identity,
    Network,
    SubmitError,
    load_profile,
)
from swarmfuse.client.gateway.transaction import Transaction
from swarmfuse.network import tasks
from swarmfuse.network.blocks import transactions
from swarmfuse.network.tasks import TransactionFailed

pytestmark = pytest.mark.integration

CHAINCODE = "swarmfuse"
CONSORTIUM_TASK = "conform"
WRITERS_REFUSAL = ("received unsuccessful response from orderer: status=FORBIDDEN, info=implicit policy evaluation "
                   "failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies "
                   "to be satisfied: permission denied")


# --- helpers ---------------------------------------------------------------------------------------

def _key() -> str:
    return f"conf-{uuid.uuid4().hex[:10]}"


def _prepared(transaction: Transaction) -> gw.PreparedTransaction:
    return gw.PreparedTransaction.FromString(transaction.to_bytes())


def _action_payload(envelope: common_pb2.Envelope) -> tuple[common_pb2.Payload, transaction_pb2.Transaction,
                                                            transaction_pb2.ChaincodeActionPayload]:
    payload = common_pb2.Payload.FromString(envelope.payload)
    transaction = transaction_pb2.Transaction.FromString(payload.data)
    return payload, transaction, transaction_pb2.ChaincodeActionPayload.FromString(transaction.actions[0].payload)


def _rwsets(transaction: Transaction) -> dict[str, kv_rwset_pb2.KVRWSet]:
    """The endorsed read-write set of ``transaction`` by namespace (Fabric adds a ``_lifecycle`` read of the
    chaincode definition's sequence; the embedded engine records the chaincode's namespace only)."""
    _, _, action_payload = _action_payload(_prepared(transaction).envelope)
    response = proposal_response_pb2.ProposalResponsePayload.FromString(action_payload.action.proposal_response_payload)
    results = proposal_pb2.ChaincodeAction.FromString(response.extension).results
    return {ns.namespace: kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
            for ns in rwset_pb2.TxReadWriteSet.FromString(results).ns_rwset}


def _value(net: LedgerNetwork, key: str) -> str | None:
    """``Sample:Get`` on DC2's peer (not the submitter's); ``None`` when nothing is stored under ``key``."""
    try:
        return net.query("DC2", "Sample:Get", key)
    except TransactionFailed as exc:
        assert "NotFound" in str(exc), exc
        return None


def _codes(block: common_pb2.Block) -> dict[str, list[int]]:
    """Every tx ID of ``block`` with its TRANSACTIONS_FILTER code(s), as the committing peer recorded them."""
    flags = block.metadata.metadata[common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER]
    assert len(flags) == len(block.data.data), "the peer set one validation flag per transaction"
    found: dict[str, list[int]] = {}
    for index, raw in enumerate(block.data.data):
        payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(raw).payload)
        tx_id = common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id
        found.setdefault(tx_id, []).append(flags[index])
    return found


def _code_in_block(net: LedgerNetwork, number: int, tx_id: str) -> int:
    [block] = net.blocks("DC3", number, number)
    [code] = _codes(block)[tx_id]
    return code


@pytest.fixture
def dc1(ledger_network: LedgerNetwork) -> Iterator[Network]:
    with ledger_network.gateway("DC1") as gateway:
        yield gateway.network(ledger_network.task)


# --- 1. tampered envelope --------------------------------------------------------------------------

def test_envelope_changed_after_signing_is_refused_at_submit(ledger_network: LedgerNetwork, dc1: Network) -> None:
    """One byte of the signed payload changed: the creator's signature no longer verifies, and Fabric's
    orderer refuses the Broadcast (/Channel/Writers, FORBIDDEN) so the gateway answers ABORTED."""
    key, before = _key(), ledger_network.height("DC1")
    signer = load_profile(ledger_network.profile_path("DC1")).signer
    transaction = dc1.contract(CHAINCODE, "Sample").new_proposal("Put", key, "value-AAAA").endorse()
    transaction.set_signature(signer.sign(transaction.digest()))
    prepared = _prepared(transaction)
    payload = bytearray(prepared.envelope.payload)
    at = payload.index(b"value-AAAA") + len("value-")
    payload[at] = ord("B")  # same length: the payload still parses, only the signature fails
    prepared.envelope.payload = bytes(payload)
    tampered = dc1.load_transaction(prepared.SerializeToString())

    with pytest.raises(SubmitError) as refused:
        tampered.submit()
    assert refused.value.code == grpc.StatusCode.ABORTED
    assert refused.value.message == WRITERS_REFUSAL
    assert ledger_network.height("DC1") == before, "a refused Broadcast is never ordered"
    assert _value(ledger_network, key) is None
    # The tx ID was not used up: the untampered envelope commits, with the value actually signed.
    status = transaction.submit().status()
    assert status.successful and status.transaction_id == tampered.transaction_id
    assert _value(ledger_network, key) == "value-AAAA"


# --- 2. forged endorsement -------------------------------------------------------------------------

def test_forged_endorsement_fails_the_endorsement_policy(ledger_network: LedgerNetwork, dc1: Network) -> None:
    """Two endorsements (DC1, DC2) of which DC2's signature bytes are altered, the envelope correctly
    re-signed by the client: one valid endorsement does not meet OutOf(2, DC1..DC3 peers)."""
    key = _key()
    contract = dc1.contract(CHAINCODE, "Sample")
    contract.submit_transaction("Put", key, "old")
    prepared = _prepared(contract.new_proposal("Put", key, "forged", endorsing_orgs=["DC1MSP", "DC2MSP"]).endorse())
    payload, transaction, action_payload = _action_payload(prepared.envelope)
    endorsements = action_payload.action.endorsements
    assert len(endorsements) == 2
    signature = bytearray(endorsements[1].signature)
    signature[-1] ^= 0x01
    endorsements[1].signature = bytes(signature)
    transaction.actions[0].payload = action_payload.SerializeToString()
    payload.data = transaction.SerializeToString()
    prepared.envelope.payload = payload.SerializeToString()
    prepared.envelope.signature = b""  # submit() signs the changed payload as the creator
    forged = dc1.load_transaction(prepared.SerializeToString())

    status = forged.submit().status()
    assert status.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert _code_in_block(ledger_network, status.block_number, forged.transaction_id) == \
        TxValidationCode.ENDORSEMENT_POLICY_FAILURE
    assert _value(ledger_network, key) == "old"


# --- 3. endorser outside the policy ----------------------------------------------------------------

def test_endorsement_by_an_org_outside_the_policy_does_not_count(ledger_network: LedgerNetwork, dc1: Network) -> None:
    """Endorsed by DC1 and the Auditor: the Auditor's peer is on the channel and endorses, but it is no
    principal of OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer')."""
    key = _key()
    contract = dc1.contract(CHAINCODE, "Sample")
    contract.submit_transaction("Put", key, "old")
    deadline = time.monotonic() + 60
    while True:
        try:
            transaction = contract.new_proposal("Put", key, "auditor-endorsed",
                                                endorsing_orgs=["DC1MSP", "AuditorMSP"]).endorse()
            break
        except EndorseError as exc:  # Fabric: until gossip tells DC1's gateway about the Auditor's peer
            if exc.code != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    _, _, action_payload = _action_payload(_prepared(transaction).envelope)
    assert len(action_payload.action.endorsements) == 2, "both orgs endorsed"

    status = transaction.submit().status()
    assert status.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert _code_in_block(ledger_network, status.block_number, transaction.transaction_id) == \
        TxValidationCode.ENDORSEMENT_POLICY_FAILURE
    assert _value(ledger_network, key) == "old"


# --- 4. creator from an unknown CA -----------------------------------------------------------------

def _rogue_identity() -> tuple[Identity, ECDSASigner]:
    """A client certificate claiming DC1MSP, issued by a CA the channel does not know."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "User1@dc1.swarmfuse.local")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca.dc1.swarmfuse.local")]))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    return Identity("DC1MSP", cert.public_bytes(Encoding.PEM)), ECDSASigner(key)


def test_creator_from_an_unknown_ca_is_refused_at_endorsement(ledger_network: LedgerNetwork) -> None:
    key, before = _key(), ledger_network.height("DC1")
    dc1 = load_profile(ledger_network.profile_path("DC1"))
    identity, signer = _rogue_identity()
    with Gateway.connect(dc1.peer.endpoint, dc1.peer.tls_root_cert, identity, signer,
                         host_override=dc1.peer.host_override, tls_client=dc1.tls_client) as gateway:
        contract = gateway.network(ledger_network.task).contract(CHAINCODE, "Sample")
        with pytest.raises(EndorseError) as refused:
            contract.new_proposal("Put", key, "rogue").endorse()
    assert refused.value.code == grpc.StatusCode.ABORTED
    assert refused.value.message == "failed to endorse transaction, see attached details for more info"
    # Fabric's MSP builds the certificate's chain while deserializing it: an unknown CA is a deserialization
    # failure, so the peer names no org (as for an MSP outside the channel).
    assert [(d.msp_id, d.message) for d in refused.value.details] == [
        ("DC1MSP", (f"error validating proposal: access denied: channel [{ledger_network.task}] creator org unknown, "
                   "creator is malformed"))]
    assert ledger_network.height("DC1") == before
    assert _value(ledger_network, key) is None


# --- 5. replayed transaction ID --------------------------------------------------------------------

def _blocks_holding(net: LedgerNetwork, network: Network, tx_id: str, after: int) -> dict[int, list[int]]:
    """Blocks after ``after`` that hold ``tx_id``, with its codes; marker transactions are submitted until
    one of them is committed after the transaction was (ordering is FIFO per orderer, not overall)."""
    contract = network.contract(CHAINCODE, "Sample")
    deadline = time.monotonic() + 60
    start = after + 1
    while True:
        marker = contract.new_proposal("Put", _key(), "marker").endorse()
        stop = marker.submit().status().block_number
        found = {block.header.number: _codes(block)[tx_id] for block in net.blocks("DC3", start, stop)
                 if tx_id in _codes(block)}
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


def test_replayed_envelope_keeps_the_first_commit(ledger_network: LedgerNetwork, dc1: Network) -> None:
    """The exact signed envelope of a committed transaction, submitted again: the orderer accepts it,
    the peers mark the copy DUPLICATE_TXID, CommitStatus keeps the first (VALID) commit and the copy
    writes nothing (the key keeps the value a later transaction gave it)."""
    key = _key()
    contract = dc1.contract(CHAINCODE, "Sample")
    transaction = contract.new_proposal("Put", key, "first").endorse()
    first = transaction.submit().status()
    assert first.successful
    kept = transaction.to_bytes()  # signed by now
    contract.submit_transaction("Put", key, "second")

    replay = dc1.load_transaction(kept)
    assert replay.submit().status() == first
    copies = _blocks_holding(ledger_network, dc1, first.transaction_id, after=first.block_number)
    assert list(copies.values()) == [[TxValidationCode.DUPLICATE_TXID]], copies
    assert _value(ledger_network, key) == "second"
    assert dc1.commit(first.transaction_id).status() == first


def test_new_proposal_reusing_nonce_and_creator_is_a_duplicate(ledger_network: LedgerNetwork, dc1: Network) -> None:
    """A new proposal (other arguments, new timestamp) with the nonce and creator of a committed one has
    the same tx ID: the endorser refuses it as a duplicate before running the chaincode."""
    key = _key()
    contract = dc1.contract(CHAINCODE, "Sample")
    original = contract.new_proposal("Put", key, "first")
    assert original.endorse().submit().status().successful
    signed = gw.ProposedTransaction.FromString(original.to_bytes()).proposal
    signature_header = common_pb2.Header.FromString(proposal_pb2.Proposal.FromString(signed.proposal_bytes).header
                                                    ).signature_header

    fresh = gw.ProposedTransaction.FromString(contract.new_proposal("Put", key, "replayed nonce").to_bytes())
    proposal = proposal_pb2.Proposal.FromString(fresh.proposal.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    channel_header.tx_id = original.transaction_id
    header.channel_header, header.signature_header = channel_header.SerializeToString(), signature_header
    proposal.header = header.SerializeToString()
    fresh.transaction_id = original.transaction_id
    fresh.proposal.proposal_bytes = proposal.SerializeToString()
    fresh.proposal.signature = b""  # endorse() signs it as the (same) creator
    reused = dc1.load_proposal(fresh.SerializeToString())

    with pytest.raises(EndorseError) as refused:
        reused.endorse()
    creator = common_pb2.SignatureHeader.FromString(signature_header).creator
    assert refused.value.code == grpc.StatusCode.ABORTED
    assert refused.value.message == "failed to endorse transaction, see attached details for more info"
    assert [(d.msp_id, d.message) for d in refused.value.details] == [
        ("DC1MSP", f"duplicate transaction found [{original.transaction_id}]. Creator [{creator.hex()}]")]
    assert _value(ledger_network, key) == "first"


# --- 5b. configuration through Submit --------------------------------------------------------------

def test_a_config_update_that_nobody_authorised_is_refused_at_submit(ledger_network: LedgerNetwork,
                                                                     dc1: Network) -> None:
    """A member wraps a channel configuration update (here one with nothing in it and no admin's signature) in an
    envelope it signs and sends it through the Gateway's Submit: Fabric's orderer applies only an update the
    config's policies authorise and answers BAD_REQUEST; the embedded engine applies none. Nothing is ordered."""
    credentials = load_profile(ledger_network.profile_path("DC1"))
    creator, nonce = credentials.identity.serialize(), uuid.uuid4().bytes + uuid.uuid4().bytes[:8]
    tx_id = hashlib.sha256(nonce + creator).hexdigest()
    update = configtx_pb2.ConfigUpdate(channel_id=ledger_network.task).SerializeToString()
    header = common_pb2.ChannelHeader(type=common_pb2.CONFIG_UPDATE, channel_id=ledger_network.task, tx_id=tx_id)
    header.timestamp.GetCurrentTime()
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=header.SerializeToString(),
                                 signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce)
                                 .SerializeToString()),
        data=configtx_pb2.ConfigUpdateEnvelope(config_update=update).SerializeToString()).SerializeToString()
    envelope = common_pb2.Envelope(payload=payload,
                                   signature=credentials.signer.sign(hashlib.sha256(payload).digest()))
    before = ledger_network.height("DC1")
    prepared = gw.PreparedTransaction(transaction_id=tx_id, envelope=envelope)
    with pytest.raises(SubmitError) as refused:
        dc1.load_transaction(prepared.SerializeToString()).submit()
    assert refused.value.code == grpc.StatusCode.ABORTED
    assert "status=BAD_REQUEST" in refused.value.message and "config update" in refused.value.message
    assert ledger_network.height("DC1") == before, "a refused Broadcast is never ordered"


# --- 5c. Deliver's time window ---------------------------------------------------------------------

def test_a_deliver_request_stamped_outside_fifteen_minutes_is_a_bad_request(ledger_network: LedgerNetwork) -> None:
    """A signed Deliver request recorded earlier (or stamped ahead) cannot be replayed: every engine's peer
    answers BAD_REQUEST outside its 15-minute window, and serves the same request stamped now."""
    credentials = load_profile(ledger_network.profile_path("DC1"))
    now = dt.datetime.now(dt.UTC)
    with ledger_network.gateway("DC1") as gateway:
        network = gateway.network(ledger_network.task)
        for stamped, outcome in ((now - dt.timedelta(minutes=20), "BAD_REQUEST"),
                                 (now + dt.timedelta(minutes=20), "BAD_REQUEST"), (now, "block 0")):
            claimed = credentials.tls_client.cert_hash if credentials.tls_client else b""  # the TLS binding, if on
            request = seek_request(credentials.identity, credentials.signer, ledger_network.task, claimed,
                                   stamped=stamped)
            with network.load_block_events_request(request).events() as blocks:
                try:
                    got = f"block {next(iter(blocks)).header.number}"
                except DeliverError as ended:
                    got = str(ended).rsplit(": ", 1)[1]
            assert got == outcome, stamped


# --- 6, 7: consortium transactions on a channel of their own ---------------------------------------

@pytest.fixture(scope="module")
def conform(ledger_network: LedgerNetwork) -> LedgerNetwork:
    """Channel ``conform`` (DC1..DC3 founders, the Auditor) on the session's network."""
    if CONSORTIUM_TASK not in ledger_network.network.require_state().tasks:
        tasks.create(ledger_network.network, CONSORTIUM_TASK, "DC1,DC2,DC3,Auditor")
    net = LedgerNetwork(ledger_network.network, CONSORTIUM_TASK)
    _confirm_task(net)
    return net


def _confirm_task(net: LedgerNetwork) -> None:
    """Have every founder still awaited confirm the proposed configuration (``Task:Init`` only proposes it),
    unless the task is active already."""
    try:
        net.query("DC1", "Task:Get")
        return
    except TransactionFailed as exc:
        if "not initialised" not in str(exc):
            raise
    proposed = [json.loads(tx.event_payload or b"{}") for block in net.blocks("DC1", 0, net.height("DC1") - 1)
                for tx in transactions(block) if tx.event_name == "TaskProposed"]
    assert len(proposed) == 1, proposed
    for mspid in proposed[0]["awaiting"]:
        net.submit(mspid.removesuffix("MSP"), "Task:Confirm", proposed[0]["config_sha256"])
    net.query("DC1", "Task:Get")


def _profile(org: str, name: str) -> str:
    return json.dumps({"name": name, "endpoint": f"{org.lower()}.example:7443",
                       "tls_fingerprint": hashlib.sha256(name.encode()).hexdigest(), "modalities": ["text"]})


def _activity_tx_ids(net: LedgerNetwork, mspid: str) -> set[str]:
    page = json.loads(net.query("DC1", "Audit:Activity", mspid, "100", ""))
    return {item["tx_id"] for item in page["items"]}


def test_concurrent_read_modify_writes_of_one_key_commit_once(conform: LedgerNetwork) -> None:
    """Two ``Membership:Register`` of DC3, both simulated before either commits: each reads DC3's member
    key (absent) and writes it with DC3's key-level policy. The first ordered is VALID; the other is
    ENDORSEMENT_POLICY_FAILURE when it is in the same block (Fabric's validator: the key's policy was set by
    an earlier valid transaction of the block) or MVCC_READ_CONFLICT in a later one; only the first one's
    record and activity entry are in the state."""
    with conform.gateway("DC3", user="admin") as gateway:
        network = gateway.network(conform.task)
        contract = network.contract(CHAINCODE)
        prepared = {name: contract.new_proposal("Membership:Register", _profile("DC3", name)).endorse()
                    for name in ("DC3 first", "DC3 second")}
        for transaction in prepared.values():
            rwset = _rwsets(transaction)[CHAINCODE]
            assert {r.key for r in rwset.reads} & {w.key for w in rwset.writes}, "reads and writes one key"
        commits = {name: transaction.submit() for name, transaction in prepared.items()}
        statuses = {name: commit.status() for name, commit in commits.items()}
    [winner] = [name for name, s in statuses.items() if s.successful]
    [loser] = [name for name, s in statuses.items() if not s.successful]
    won, lost = statuses[winner], statuses[loser]
    expected = "ENDORSEMENT_POLICY_FAILURE" if lost.block_number == won.block_number else "MVCC_READ_CONFLICT"
    assert lost.code_name == expected, statuses
    assert _code_in_block(conform, lost.block_number, lost.transaction_id) == TxValidationCode.Value(expected)
    record = json.loads(conform.query("DC1", "Membership:Get", "DC3MSP"))
    assert (record["name"], record["status"]) == (winner, "active")
    activity = _activity_tx_ids(conform, "DC3MSP")
    assert statuses[winner].transaction_id in activity and lost.transaction_id not in activity


def test_key_inserted_into_a_scanned_range_is_a_phantom_read(conform: LedgerNetwork) -> None:
    """No production write transaction scans a range (chaincode/README.md: "no write transaction scans a
    range"), so the range reader is ``Audit:Members``, an evaluate-only query that scans the ``member``
    range, endorsed and submitted like any transaction. DC2 registers (a key inserted into that range)
    before it is submitted: PHANTOM_READ_CONFLICT; its point reads (task, DC1's member key) are unchanged."""
    with conform.gateway("DC1", user="admin") as gateway:
        contract = gateway.network(conform.task).contract(CHAINCODE)
        scan = contract.new_proposal("Audit:Members", "100", "").endorse()
        rwsets = _rwsets(scan)
        assert len(rwsets[CHAINCODE].range_queries_info) == 1 and not any(r.writes for r in rwsets.values())
        scanned = [item["org"] for item in json.loads(scan.result)["items"]]
        assert "DC2MSP" not in scanned
        inserted = conform.submit("DC2", "Membership:Register", _profile("DC2", "DC2 data centre"))
        status = scan.submit().status()
        rescan = contract.new_proposal("Audit:Members", "100", "").endorse()  # the same scan, simulated now
        assert rescan.submit().status().successful
    assert status.code_name == "PHANTOM_READ_CONFLICT"
    assert status.block_number > inserted.block_number
    assert _code_in_block(conform, status.block_number, scan.transaction_id) == TxValidationCode.PHANTOM_READ_CONFLICT
    now = [item["org"] for item in json.loads(conform.query("DC1", "Audit:Members", "100", ""))["items"]]
    assert now == sorted([*scanned, "DC2MSP"])
