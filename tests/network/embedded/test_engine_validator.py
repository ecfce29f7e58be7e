"""Block validation with Fabric's codes, the endorser's proposal checks, and transaction assembly.

Transactions are built as our client and Fabric's gateway build them: ``ProposalBuilder`` proposals,
endorsements from ``endorse_response``, the payload from ``assemble_transaction``, signed by the creator.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest
from engine_pki import CHAINCODE, CHANNEL, Member, MemoryLedger, clock, member, pki
from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.protobuf.timestamp_pb2 import Timestamp

from swarmfuse.chaincode.contract.endorsement import owner_and_majority
from swarmfuse.client.gateway.proposal import ProposalBuilder
from swarmfuse.network.protocol.identity import transaction_id
from swarmfuse.network.protocol.model import Version
from swarmfuse.network.protocol.msp import ChannelMSPs
from swarmfuse.network.protocol.proposals import ProposalRejected, check_proposal, proposal_hash, time_window_violation
from swarmfuse.network.protocol.txassembly import AssemblyError, assemble_transaction, endorse_response
from swarmfuse.network.protocol.txops import VALIDATION_PARAMETER, encode_metadata
from swarmfuse.network.protocol.validator import BlockValidator

C = transaction_pb2
CLIENT = "dc1", "client"


def who(org_role: tuple[str, str]) -> Member:
    return member(*org_role)


def peers(*orgs: str) -> list[Member]:
    return [member(org, "peer") for org in orgs]


# --- building transactions -----------------------------------------------------------------------

def proposal(creator: Member, args: Sequence[str] = ("k", "v"), transient: dict[str, bytes] | None = None,
             channel: str = CHANNEL, chaincode: str = CHAINCODE) -> proposal_pb2.Proposal:
    """A proposal as our client builds it."""
    proposed = ProposalBuilder(channel, chaincode, "put", args, transient or {}).build(creator.serialized)
    return proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes)


def custom_proposal(creator: Member, *, tx_id: str | None = None, nonce: bytes = b"n" * 24,
                    header_type: int = common_pb2.ENDORSER_TRANSACTION, channel: str = CHANNEL,
                    chaincode: str = CHAINCODE) -> proposal_pb2.Proposal:
    """A proposal with chosen header fields."""
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode)
    timestamp = Timestamp(seconds=1_780_000_000, nanos=5)
    channel_header = common_pb2.ChannelHeader(
        type=header_type, channel_id=channel, tx_id=tx_id if tx_id is not None else transaction_id(nonce, creator.serialized),
        timestamp=timestamp,
        extension=proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id).SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator.serialized, nonce=nonce).SerializeToString(),
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec(chaincode_spec=chaincode_pb2.ChaincodeSpec(
        chaincode_id=chaincode_id, input=chaincode_pb2.ChaincodeInput(args=[b"put", b"k", b"v"])))
    payload = proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString())
    return proposal_pb2.Proposal(header=header.SerializeToString(), payload=payload.SerializeToString())


def kv(reads: Sequence[tuple[str, Version | None]] = (), writes: Sequence[tuple[str, bytes | None]] = (),
       ranges: Sequence[kv_rwset_pb2.RangeQueryInfo] = ()) -> kv_rwset_pb2.KVRWSet:
    return kv_rwset_pb2.KVRWSet(
        reads=[kv_rwset_pb2.KVRead(key=k, version=kv_rwset_pb2.Version(block_num=v.block, tx_num=v.tx)) if v
               else kv_rwset_pb2.KVRead(key=k) for k, v in reads],
        writes=[kv_rwset_pb2.KVWrite(key=k, value=val or b"", is_delete=val is None) for k, val in writes],
        range_queries_info=list(ranges),
    )


def results(sets: dict[str, kv_rwset_pb2.KVRWSet] | None = None, **one: object) -> bytes:
    """A TxReadWriteSet: ``sets`` per namespace, or the keyword arguments of :func:`kv` for the chaincode."""
    sets = sets if sets is not None else {CHAINCODE: kv(**one)}  # type: ignore[arg-type]
    return rwset_pb2.TxReadWriteSet(
        data_model=rwset_pb2.TxReadWriteSet.KV,
        ns_rwset=[rwset_pb2.NsReadWriteSet(namespace=ns, rwset=s.SerializeToString()) for ns, s in sets.items()],
    ).SerializeToString()


def range_info(start: str, end: str, reads: Sequence[tuple[str, Version]], exhausted: bool = True
               ) -> kv_rwset_pb2.RangeQueryInfo:
    return kv_rwset_pb2.RangeQueryInfo(
        start_key=start, end_key=end, itr_exhausted=exhausted,
        raw_reads=kv_rwset_pb2.QueryReads(kv_reads=[
            kv_rwset_pb2.KVRead(key=k, version=kv_rwset_pb2.Version(block_num=v.block, tx_num=v.tx)) for k, v in reads
        ]),
    )


def endorse(prop: proposal_pb2.Proposal, endorser: Member, rwset: bytes, *, event: bytes = b"",
            chaincode: str = CHAINCODE, version: str = "1.0") -> proposal_response_pb2.ProposalResponse:
    return endorse_response(
        proposal=prop, response=proposal_response_pb2.Response(status=200, payload=b"ok"), results=rwset, event=event,
        chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode, version=version), sign=endorser.sign,
        endorser=endorser.serialized,
    )


@dataclass(frozen=True)
class Tx:
    tx_id: str
    envelope: bytes


def signed(payload: common_pb2.Payload, creator: Member) -> bytes:
    data = payload.SerializeToString()
    return common_pb2.Envelope(payload=data, signature=creator.sign(data)).SerializeToString()


def transaction(creator: Member | None = None, endorsers: Sequence[Member] | None = None, rwset: bytes | None = None,
                prop: proposal_pb2.Proposal | None = None, **endorse_options: object) -> Tx:
    """An endorsed, assembled and signed transaction (defaults: DC1 client, DC1 + DC2 peers, writes k=v)."""
    creator = creator or who(CLIENT)
    prop = prop or proposal(creator)
    rwset = rwset if rwset is not None else results(writes=[("k", b"v")])
    endorsers = endorsers if endorsers is not None else peers("dc1", "dc2")
    responses = [endorse(prop, e, rwset, **endorse_options) for e in endorsers]  # type: ignore[arg-type]
    payload = assemble_transaction(prop, responses)
    return Tx(common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id, signed(payload, creator))


def rebuild(tx: Tx, change, creator: Member | None = None) -> bytes:  # type: ignore[no-untyped-def]
    """The transaction with its payload changed by ``change(payload)`` and signed again by the creator."""
    payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(tx.envelope).payload)
    change(payload)
    return signed(payload, creator or who(CLIENT))


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


@pytest.fixture
def msps() -> ChannelMSPs:
    channel = pki().channel()
    return ChannelMSPs((*channel.orgs, channel.orderer_org), clock=clock)


@pytest.fixture
def validator(ledger: MemoryLedger, msps: ChannelMSPs) -> BlockValidator:
    return BlockValidator(pki().channel(), msps, ledger)


def codes(validator: BlockValidator, *envelopes: bytes) -> list[int]:
    return [r.code for r in validator.validate(list(envelopes), 1)]


# --- valid transactions --------------------------------------------------------------------------

def test_valid_transaction_carries_its_writes(validator: BlockValidator) -> None:
    tx = transaction(rwset=results(writes=[("a", b"1"), ("b", None)]))
    [result] = validator.validate([tx.envelope], 1)
    assert (result.tx_id, result.index, result.code) == (tx.tx_id, 0, C.VALID)
    assert list(result.writes) == [(CHAINCODE, "a", b"1"), (CHAINCODE, "b", None)]
    assert result.timestamp_s > 1_700_000_000


def test_empty_value_write_is_a_delete(validator: BlockValidator) -> None:
    rwset = rwset_pb2.TxReadWriteSet(ns_rwset=[rwset_pb2.NsReadWriteSet(
        namespace=CHAINCODE, rwset=kv_rwset_pb2.KVRWSet(writes=[kv_rwset_pb2.KVWrite(key="a")]).SerializeToString())])
    [result] = validator.validate([transaction(rwset=rwset.SerializeToString()).envelope], 1)
    assert result.code == C.VALID and list(result.writes) == [(CHAINCODE, "a", None)]


def test_valid_with_current_reads_and_all_three_endorsers(validator: BlockValidator, ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "k", b"old", Version(3, 1))
    rwset = results(reads=[("k", Version(3, 1)), ("absent", None)], writes=[("k", b"new")])
    assert codes(validator, transaction(endorsers=peers("dc1", "dc2", "dc3"), rwset=rwset).envelope) == [C.VALID]


def test_auditor_admin_and_orderer_may_submit(validator: BlockValidator) -> None:
    auditor_admin, orderer = member("auditor", "admin"), member("orderer", "orderer")
    assert codes(validator, transaction(auditor_admin).envelope, transaction(orderer).envelope) == [C.VALID, C.VALID]


def test_transient_data_is_not_in_the_transaction(validator: BlockValidator) -> None:
    creator = who(CLIENT)
    prop = proposal(creator, transient={"secret": b"s3cr3t"})
    tx = transaction(creator, prop=prop)
    assert b"s3cr3t" not in tx.envelope
    assert codes(validator, tx.envelope) == [C.VALID]


def test_chaincode_event_of_the_chaincode_is_valid(validator: BlockValidator) -> None:
    event = chaincode_event_pb2.ChaincodeEvent(chaincode_id=CHAINCODE, event_name="Put").SerializeToString()
    assert codes(validator, transaction(event=event).envelope) == [C.VALID]
    other = chaincode_event_pb2.ChaincodeEvent(chaincode_id="other", event_name="Put").SerializeToString()
    assert codes(validator, transaction(event=other).envelope) == [C.INVALID_OTHER_REASON]


def test_genesis_config_transaction_is_valid_only_in_block_zero(validator: BlockValidator) -> None:
    orderer = member("orderer", "admin")
    channel_header = common_pb2.ChannelHeader(type=common_pb2.CONFIG, channel_id=CHANNEL, tx_id="cfg")
    header = common_pb2.Header(channel_header=channel_header.SerializeToString(), signature_header=common_pb2.SignatureHeader(
        creator=orderer.serialized, nonce=b"n").SerializeToString())
    envelope = signed(common_pb2.Payload(header=header, data=b"\x0a\x00"), orderer)
    [result] = validator.validate([envelope], 0)
    assert (result.code, result.tx_id, list(result.writes)) == (C.VALID, "cfg", [])
    assert codes(validator, envelope) == [C.INVALID_CONFIG_TRANSACTION]


# --- envelope, header and creator ----------------------------------------------------------------

def test_malformed_envelopes(validator: BlockValidator) -> None:
    no_header = signed(common_pb2.Payload(data=b"x"), who(CLIENT))
    bad_payload = common_pb2.Envelope(payload=b"\xff\xff", signature=b"s").SerializeToString()
    results_ = validator.validate([b"", b"\xff\xff\xff", bad_payload, no_header], 1)
    assert [r.code for r in results_] == [C.NIL_ENVELOPE, C.INVALID_OTHER_REASON, C.BAD_PAYLOAD, C.BAD_COMMON_HEADER]
    assert all(r.tx_id == "" and not r.writes for r in results_)


def test_tampered_payload_breaks_the_creator_signature(validator: BlockValidator) -> None:
    tx = transaction()
    envelope = common_pb2.Envelope.FromString(tx.envelope)
    payload = common_pb2.Payload.FromString(envelope.payload)
    payload.data = payload.data.replace(b"ok", b"OK")
    tampered = common_pb2.Envelope(payload=payload.SerializeToString(), signature=envelope.signature)
    [result] = validator.validate([tampered.SerializeToString()], 1)
    assert result.code == C.BAD_CREATOR_SIGNATURE and result.tx_id == tx.tx_id and not result.writes


def test_unsigned_or_high_s_envelope(validator: BlockValidator) -> None:
    creator = who(CLIENT)
    envelope = common_pb2.Envelope.FromString(transaction(creator).envelope)
    unsigned = common_pb2.Envelope(payload=envelope.payload)
    high_s = common_pb2.Envelope(payload=envelope.payload, signature=creator.sign_high_s(envelope.payload))
    assert codes(validator, unsigned.SerializeToString(), high_s.SerializeToString()) == [
        C.BAD_CREATOR_SIGNATURE, C.BAD_CREATOR_SIGNATURE]


def test_creator_from_an_unknown_ca_or_msp(validator: BlockValidator) -> None:
    impostor = pki().outsider.issue("client.dc1", ("client",), mspid="DC1MSP")
    outsider = member("outsider", "client")
    assert codes(validator, transaction(impostor).envelope, transaction(outsider).envelope) == [
        C.BAD_CREATOR_SIGNATURE, C.BAD_CREATOR_SIGNATURE]


def test_expired_creator(validator: BlockValidator) -> None:
    from datetime import timedelta

    from engine_pki import NOW

    expired = pki().dc1.issue("old.dc1", ("client",), not_before=NOW - timedelta(days=9), not_after=NOW - timedelta(days=1))
    assert codes(validator, transaction(expired).envelope) == [C.BAD_CREATOR_SIGNATURE]


@pytest.mark.parametrize(("org", "role"), [("auditor", "client"), ("auditor", "peer"), ("dc1", "peer")])
def test_creator_must_satisfy_the_channel_writers(validator: BlockValidator, org: str, role: str) -> None:
    assert codes(validator, transaction(member(org, role)).envelope) == [C.BAD_CREATOR_SIGNATURE]


def test_wrong_tx_id(validator: BlockValidator) -> None:
    creator = who(CLIENT)
    prop = custom_proposal(creator, tx_id="00" * 32)
    assert codes(validator, transaction(creator, prop=prop).envelope) == [C.BAD_PROPOSAL_TXID]


def test_header_checks(validator: BlockValidator) -> None:
    creator = who(CLIENT)

    def with_header(**fields: object) -> bytes:
        def change(payload: common_pb2.Payload) -> None:
            channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            for name, value in fields.items():
                setattr(channel_header, name, value)
            payload.header.channel_header = channel_header.SerializeToString()
        return rebuild(transaction(creator), change, creator)

    no_nonce = rebuild(transaction(creator), lambda p: setattr(p.header, "signature_header", common_pb2.SignatureHeader(
        creator=creator.serialized).SerializeToString()), creator)
    assert codes(validator, with_header(epoch=1), with_header(type=common_pb2.MESSAGE), no_nonce) == [
        C.BAD_COMMON_HEADER] * 3
    assert codes(validator, with_header(type=common_pb2.CONFIG_UPDATE)) == [C.UNSUPPORTED_TX_PAYLOAD]


def test_transaction_for_another_channel(validator: BlockValidator) -> None:
    creator = who(CLIENT)
    tx = transaction(creator, prop=proposal(creator, channel="other"))
    assert codes(validator, tx.envelope) == [C.TARGET_CHAIN_NOT_FOUND]


def test_proposal_hash_must_bind_header_and_payload(validator: BlockValidator) -> None:
    creator = who(CLIENT)

    def swap_input(payload: common_pb2.Payload) -> None:
        tx = transaction_pb2.Transaction.FromString(payload.data)
        action_payload = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
        action_payload.chaincode_proposal_payload = proposal_pb2.ChaincodeProposalPayload(input=b"other").SerializeToString()
        tx.actions[0].payload = action_payload.SerializeToString()
        payload.data = tx.SerializeToString()

    def two_actions(payload: common_pb2.Payload) -> None:
        tx = transaction_pb2.Transaction.FromString(payload.data)
        tx.actions.append(tx.actions[0])
        payload.data = tx.SerializeToString()

    assert codes(validator, rebuild(transaction(creator), swap_input, creator),
                 rebuild(transaction(creator), two_actions, creator)) == [C.INVALID_ENDORSER_TRANSACTION] * 2


# --- duplicates ----------------------------------------------------------------------------------

def test_replayed_committed_tx_id(validator: BlockValidator, ledger: MemoryLedger) -> None:
    tx = transaction()
    ledger.tx_ids.add(tx.tx_id)
    [result] = validator.validate([tx.envelope], 1)
    assert (result.code, result.tx_id) == (C.DUPLICATE_TXID, tx.tx_id)


def test_replayed_tx_id_within_the_block(validator: BlockValidator) -> None:
    tx = transaction()
    results_ = validator.validate([tx.envelope, tx.envelope], 1)
    assert [r.code for r in results_] == [C.VALID, C.DUPLICATE_TXID]
    assert results_[1].tx_id == tx.tx_id and not results_[1].writes


def test_invalid_first_copy_does_not_take_the_tx_id(validator: BlockValidator) -> None:
    tx = transaction()
    envelope = common_pb2.Envelope.FromString(tx.envelope)
    forged = common_pb2.Envelope(payload=envelope.payload, signature=b"\x30\x00").SerializeToString()
    assert codes(validator, forged, tx.envelope) == [C.BAD_CREATOR_SIGNATURE, C.VALID]


def test_mvcc_invalid_first_copy_still_takes_the_tx_id(validator: BlockValidator, ledger: MemoryLedger) -> None:
    """Fabric marks duplicates before the MVCC stage."""
    ledger.put(CHAINCODE, "k", b"v", Version(5, 0))
    tx = transaction(rwset=results(reads=[("k", Version(4, 0))], writes=[("k", b"x")]))
    assert codes(validator, tx.envelope, tx.envelope) == [C.MVCC_READ_CONFLICT, C.DUPLICATE_TXID]


# --- endorsements --------------------------------------------------------------------------------

def test_too_few_endorsements(validator: BlockValidator) -> None:
    assert codes(validator, transaction(endorsers=peers("dc1")).envelope) == [C.ENDORSEMENT_POLICY_FAILURE]


def test_endorsement_from_an_org_outside_the_policy(validator: BlockValidator) -> None:
    assert codes(validator, transaction(endorsers=peers("dc1", "auditor")).envelope) == [C.ENDORSEMENT_POLICY_FAILURE]


def test_endorsements_by_non_peers_do_not_count(validator: BlockValidator) -> None:
    endorsers = [member("dc1", "peer"), member("dc2", "admin")]
    assert codes(validator, transaction(endorsers=endorsers).envelope) == [C.ENDORSEMENT_POLICY_FAILURE]


def test_same_endorser_twice_counts_once(validator: BlockValidator) -> None:
    creator, dc1 = who(CLIENT), member("dc1", "peer")
    prop = proposal(creator)
    response = endorse(prop, dc1, results(writes=[("k", b"v")]))

    def duplicate(payload: common_pb2.Payload) -> None:
        tx = transaction_pb2.Transaction.FromString(payload.data)
        action_payload = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
        action_payload.action.endorsements.append(response.endorsement)
        tx.actions[0].payload = action_payload.SerializeToString()
        payload.data = tx.SerializeToString()

    envelope = signed(assemble_transaction(prop, [response]), creator)
    assert codes(validator, rebuild(Tx("", envelope), duplicate, creator)) == [C.ENDORSEMENT_POLICY_FAILURE]


def _replace_endorsement(index: int, endorsement: proposal_response_pb2.Endorsement):  # type: ignore[no-untyped-def]
    def change(payload: common_pb2.Payload) -> None:
        tx = transaction_pb2.Transaction.FromString(payload.data)
        action_payload = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
        action_payload.action.endorsements[index].CopyFrom(endorsement)
        tx.actions[0].payload = action_payload.SerializeToString()
        payload.data = tx.SerializeToString()
    return change


def test_forged_endorsement_signature(validator: BlockValidator) -> None:
    creator, dc2 = who(CLIENT), member("dc2", "peer")
    forged = proposal_response_pb2.Endorsement(endorser=dc2.serialized, signature=member("dc3", "peer").sign(b"x"))
    envelope = rebuild(transaction(creator), _replace_endorsement(1, forged), creator)
    assert codes(validator, envelope) == [C.ENDORSEMENT_POLICY_FAILURE]


def test_endorsement_over_another_payload(validator: BlockValidator) -> None:
    creator, dc2 = who(CLIENT), member("dc2", "peer")
    prop = proposal(creator)
    other = endorse(prop, dc2, results(writes=[("k", b"something else")]))
    envelope = rebuild(transaction(creator, prop=prop), _replace_endorsement(1, other.endorsement), creator)
    assert codes(validator, envelope) == [C.ENDORSEMENT_POLICY_FAILURE]


def test_high_s_endorsement_does_not_count(validator: BlockValidator) -> None:
    creator, dc2 = who(CLIENT), member("dc2", "peer")
    prop = proposal(creator)
    rwset = results(writes=[("k", b"v")])
    good = endorse(prop, dc2, rwset)
    high = proposal_response_pb2.Endorsement(endorser=dc2.serialized,
                                             signature=dc2.sign_high_s(good.payload + dc2.serialized))
    envelope = rebuild(transaction(creator, prop=prop, rwset=rwset), _replace_endorsement(1, high), creator)
    assert codes(validator, envelope) == [C.ENDORSEMENT_POLICY_FAILURE]


def test_endorser_from_an_unknown_ca(validator: BlockValidator) -> None:
    impostor = pki().outsider.issue("peer0.dc2", ("peer",), mspid="DC2MSP")
    assert codes(validator, transaction(endorsers=[member("dc1", "peer"), impostor]).envelope) == [
        C.ENDORSEMENT_POLICY_FAILURE]


# --- chaincode and namespaces --------------------------------------------------------------------

def test_write_to_another_namespace(validator: BlockValidator) -> None:
    rwset = results({CHAINCODE: kv(writes=[("k", b"v")]), "other": kv(writes=[("k", b"v")])})
    assert codes(validator, transaction(rwset=rwset).envelope) == [C.INVALID_CHAINCODE]


def test_reading_another_namespace_is_allowed(validator: BlockValidator) -> None:
    rwset = results({CHAINCODE: kv(writes=[("k", b"v")]), "other": kv(reads=[("k", None)])})
    assert codes(validator, transaction(rwset=rwset).envelope) == [C.VALID]


def test_undefined_chaincode_and_inconsistent_ids(validator: BlockValidator) -> None:
    creator = who(CLIENT)
    undefined = transaction(creator, prop=proposal(creator, chaincode="other"), chaincode="other",
                            rwset=results({"other": kv(writes=[("k", b"v")])}))
    mismatch = transaction(creator, chaincode="other")
    no_version = transaction(creator, version="")
    assert codes(validator, undefined.envelope, mismatch.envelope, no_version.envelope) == [C.INVALID_CHAINCODE] * 3


def test_bad_or_duplicate_namespace_rwsets(validator: BlockValidator) -> None:
    same = rwset_pb2.NsReadWriteSet(namespace=CHAINCODE, rwset=kv(writes=[("k", b"v")]).SerializeToString())
    duplicate = rwset_pb2.TxReadWriteSet(ns_rwset=[same, same]).SerializeToString()
    garbage = rwset_pb2.TxReadWriteSet(ns_rwset=[rwset_pb2.NsReadWriteSet(namespace=CHAINCODE, rwset=b"\xff")])
    assert codes(validator, transaction(rwset=duplicate).envelope,
                 transaction(rwset=garbage.SerializeToString()).envelope) == [C.ILLEGAL_WRITESET, C.BAD_RWSET]


def test_private_data_is_refused(validator: BlockValidator) -> None:
    hashed = kv_rwset_pb2.HashedRWSet(hashed_writes=[kv_rwset_pb2.KVWriteHash(key_hash=b"h", value_hash=b"v")])
    ns = rwset_pb2.NsReadWriteSet(namespace=CHAINCODE, rwset=kv().SerializeToString(), collection_hashed_rwset=[
        rwset_pb2.CollectionHashedReadWriteSet(collection_name="secret", hashed_rwset=hashed.SerializeToString())])
    rwset = rwset_pb2.TxReadWriteSet(ns_rwset=[ns]).SerializeToString()
    assert codes(validator, transaction(rwset=rwset).envelope) == [C.ENDORSEMENT_POLICY_FAILURE]


# --- MVCC and phantoms ---------------------------------------------------------------------------

def test_stale_read_against_committed_state(validator: BlockValidator, ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "k", b"v", Version(5, 2))
    stale = transaction(rwset=results(reads=[("k", Version(4, 0))], writes=[("k", b"x")]))
    absent_now_present = transaction(rwset=results(reads=[("k", None)]))
    deleted_since = transaction(rwset=results(reads=[("missing", Version(1, 0))]))
    assert codes(validator, stale.envelope, absent_now_present.envelope, deleted_since.envelope) == [
        C.MVCC_READ_CONFLICT] * 3


def test_stale_read_against_an_earlier_tx_of_the_block(validator: BlockValidator, ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "k", b"v", Version(5, 2))
    first = transaction(rwset=results(reads=[("k", Version(5, 2))], writes=[("k", b"first")]))
    second = transaction(rwset=results(reads=[("k", Version(5, 2))], writes=[("k", b"second")]))
    blind = transaction(rwset=results(writes=[("k", b"blind")]))
    results_ = validator.validate([first.envelope, second.envelope, blind.envelope], 6)
    assert [r.code for r in results_] == [C.VALID, C.MVCC_READ_CONFLICT, C.VALID]
    assert not results_[1].writes and list(results_[2].writes) == [(CHAINCODE, "k", b"blind")]


def test_writes_of_invalid_txs_do_not_conflict(validator: BlockValidator, ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "k", b"v", Version(5, 2))
    unendorsed = transaction(endorsers=peers("dc1"), rwset=results(writes=[("k", b"x")]))
    reader = transaction(rwset=results(reads=[("k", Version(5, 2))], writes=[("k", b"y")]))
    assert codes(validator, unendorsed.envelope, reader.envelope) == [C.ENDORSEMENT_POLICY_FAILURE, C.VALID]


def test_phantom_in_a_range_query(validator: BlockValidator, ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "a1", b"v", Version(2, 0))
    ledger.put(CHAINCODE, "a3", b"v", Version(2, 1))
    seen = [("a1", Version(2, 0)), ("a3", Version(2, 1))]
    unchanged = transaction(rwset=results(ranges=[range_info("a", "b", seen)]))
    assert codes(validator, unchanged.envelope) == [C.VALID]
    ledger.put(CHAINCODE, "a2", b"v", Version(3, 0))
    assert codes(validator, unchanged.envelope) == [C.PHANTOM_READ_CONFLICT]
    del ledger.values[(CHAINCODE, "a2")]
    ledger.put(CHAINCODE, "a3", b"v2", Version(3, 1))
    assert codes(validator, unchanged.envelope) == [C.PHANTOM_READ_CONFLICT]
    del ledger.values[(CHAINCODE, "a3")]
    assert codes(validator, unchanged.envelope) == [C.PHANTOM_READ_CONFLICT]


def test_phantom_from_an_earlier_tx_of_the_block(validator: BlockValidator, ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "a1", b"v", Version(2, 0))
    scan = transaction(rwset=results(ranges=[range_info("a", "b", [("a1", Version(2, 0))])], writes=[("z", b"1")]))
    insert = transaction(rwset=results(writes=[("a5", b"new")]))
    delete = transaction(rwset=results(writes=[("a1", None)]))
    outside = transaction(rwset=results(writes=[("b", b"x"), ("Z", b"y")]))
    assert codes(validator, insert.envelope, scan.envelope) == [C.VALID, C.PHANTOM_READ_CONFLICT]
    assert codes(validator, delete.envelope, scan.envelope) == [C.VALID, C.PHANTOM_READ_CONFLICT]
    assert codes(validator, outside.envelope, scan.envelope) == [C.VALID, C.VALID]


def test_unexhausted_range_includes_its_end_key(validator: BlockValidator, ledger: MemoryLedger) -> None:
    """A range the chaincode stopped early records the last key seen as end key; it must still be there."""
    ledger.put(CHAINCODE, "a1", b"v", Version(2, 0))
    ledger.put(CHAINCODE, "a2", b"v", Version(2, 1))
    ledger.put(CHAINCODE, "a3", b"v", Version(2, 2))
    seen = [("a1", Version(2, 0)), ("a2", Version(2, 1))]
    partial = transaction(rwset=results(ranges=[range_info("a", "a2", seen, exhausted=False)]))
    assert codes(validator, partial.envelope) == [C.VALID]
    update_end = transaction(rwset=results(writes=[("a2", b"changed")]))
    assert codes(validator, update_end.envelope, partial.envelope) == [C.VALID, C.PHANTOM_READ_CONFLICT]
    delete_end = transaction(rwset=results(writes=[("a2", None)]))
    assert codes(validator, delete_end.envelope, partial.envelope) == [C.VALID, C.PHANTOM_READ_CONFLICT]


def test_unbounded_range_query(validator: BlockValidator, ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "x", b"v", Version(2, 0))
    scan = transaction(rwset=results(ranges=[range_info("", "", [("x", Version(2, 0))])]))
    assert codes(validator, scan.envelope) == [C.VALID]
    ledger.put(CHAINCODE, "\U0001f600", b"v", Version(3, 0))
    assert codes(validator, scan.envelope) == [C.PHANTOM_READ_CONFLICT]


def _merkle_range(keys: Sequence[tuple[str, Version]], max_degree: int) -> kv_rwset_pb2.RangeQueryInfo:
    """A range query summarised as Fabric's simulator does when it returns more than ``max_degree`` results."""
    hashes: list[bytes] = []
    level_hashes = hashes
    for i in range(0, len(keys), max_degree + 1):
        chunk = keys[i:i + max_degree + 1]
        reads = [kv_rwset_pb2.KVRead(key=k, version=kv_rwset_pb2.Version(block_num=v.block, tx_num=v.tx)) for k, v in chunk]
        level_hashes.append(hashlib.sha256(kv_rwset_pb2.QueryReads(kv_reads=reads).SerializeToString()).digest())
    assert 1 < len(hashes) <= max_degree  # one level of leaf hashes: max level 1
    summary = kv_rwset_pb2.QueryReadsMerkleSummary(max_degree=max_degree, max_level=1, max_level_hashes=hashes)
    return kv_rwset_pb2.RangeQueryInfo(start_key="k", end_key="l", itr_exhausted=True, reads_merkle_hashes=summary)


def test_merkle_summarised_range_query(validator: BlockValidator, ledger: MemoryLedger) -> None:
    keys = [(f"k{i:02d}", Version(2, i)) for i in range(7)]
    for key, version in keys:
        ledger.put(CHAINCODE, key, b"v", version)
    scan = transaction(rwset=results(ranges=[_merkle_range(keys, 3)]))
    assert codes(validator, scan.envelope) == [C.VALID]
    ledger.put(CHAINCODE, "k03a", b"v", Version(3, 0))
    assert codes(validator, scan.envelope) == [C.PHANTOM_READ_CONFLICT]


@pytest.mark.parametrize("total", [3, 80, 3000])
def test_simulator_read_write_sets_validate(validator: BlockValidator, ledger: MemoryLedger, total: int) -> None:
    """What the engine's simulator records (raw reads, or a merkle summary past 50 results) passes and
    detects a phantom inserted after the simulation."""
    from swarmfuse.network.embedded.simulator import TxSimulator

    for i in range(total):
        ledger.put(CHAINCODE, f"a{i:05d}", b"v", Version(1, i))
    simulator = TxSimulator(ledger, CHAINCODE, "sim")  # type: ignore[arg-type]
    simulator.get_state("a00001")
    assert len(list(simulator.get_state_range("a", "b"))) == total
    simulator.put_state("b", b"x")
    tx = transaction(rwset=simulator.read_write_set().SerializeToString())
    assert codes(validator, tx.envelope) == [C.VALID]
    ledger.put(CHAINCODE, f"a{total // 2:05d}x", b"v", Version(2, 0))
    assert codes(validator, tx.envelope) == [C.PHANTOM_READ_CONFLICT]


# --- the endorser's proposal checks --------------------------------------------------------------

def signed_proposal(prop: proposal_pb2.Proposal, signer: Member) -> proposal_pb2.SignedProposal:
    data = prop.SerializeToString()
    return proposal_pb2.SignedProposal(proposal_bytes=data, signature=signer.sign(data))


def check(prop: proposal_pb2.Proposal, signer: Member, ledger: MemoryLedger, msps: ChannelMSPs):  # type: ignore[no-untyped-def]
    return check_proposal(signed_proposal(prop, signer), pki().channel(), msps, ledger)


def rejection(prop: proposal_pb2.Proposal, signer: Member, ledger: MemoryLedger, msps: ChannelMSPs) -> ProposalRejected:
    with pytest.raises(ProposalRejected) as info:
        check(prop, signer, ledger, msps)
    return info.value


def test_checked_proposal(ledger: MemoryLedger, msps: ChannelMSPs) -> None:
    creator = who(CLIENT)
    prop = proposal(creator, args=("key", "value"), transient={"t": b"x"})
    checked = check(prop, creator, ledger, msps)
    assert (checked.channel, checked.chaincode_name, checked.creator) == (CHANNEL, CHAINCODE, creator.serialized)
    assert checked.tx_id == common_pb2.ChannelHeader.FromString(common_pb2.Header.FromString(prop.header).channel_header).tx_id
    assert list(checked.input.args) == [b"put", b"key", b"value"]
    assert checked.principal.role == "client" and checked.proposal == prop
    assert checked.proposal_hash == proposal_hash(prop)


def test_auditor_clients_may_propose(ledger: MemoryLedger, msps: ChannelMSPs) -> None:
    auditor = member("auditor", "client")
    assert check(proposal(auditor), auditor, ledger, msps).principal.mspid == "AuditorMSP"


def test_proposal_rejections(ledger: MemoryLedger, msps: ChannelMSPs) -> None:
    creator = who(CLIENT)
    prop = proposal(creator)
    bad_signature = rejection(prop, member("dc2", "client"), ledger, msps)
    assert "access denied: channel [task1] creator org [DC1MSP]" in str(bad_signature)
    assert bad_signature.code == grpc.StatusCode.PERMISSION_DENIED
    high_s = signed_proposal(prop, creator)
    high_s.signature = creator.sign_high_s(high_s.proposal_bytes)
    with pytest.raises(ProposalRejected, match="access denied"):
        check_proposal(high_s, pki().channel(), msps, ledger)
    outsider = member("outsider", "client")
    assert "creator org unknown" in str(rejection(proposal(outsider), outsider, ledger, msps))
    impostor = pki().outsider.issue("c.dc1", ("client",), mspid="DC1MSP")
    assert "creator org unknown, creator is malformed" in str(rejection(proposal(impostor), impostor, ledger, msps))
    wrong_txid = rejection(custom_proposal(creator, tx_id="ab"), creator, ledger, msps)
    assert "incorrectly computed txid 'ab'" in str(wrong_txid)
    config = rejection(custom_proposal(creator, header_type=common_pb2.CONFIG), creator, ledger, msps)
    assert "invalid header type CONFIG" in str(config)
    no_nonce = rejection(custom_proposal(creator, nonce=b""), creator, ledger, msps)
    assert "nonce is empty" in str(no_nonce)
    other_channel = rejection(proposal(creator, channel="nope"), creator, ledger, msps)
    assert "channel 'nope' not found" in str(other_channel) and other_channel.code == grpc.StatusCode.NOT_FOUND
    other_chaincode = rejection(proposal(creator, chaincode="nope"), creator, ledger, msps)
    assert "chaincode nope" in str(other_chaincode)
    orderer = member("orderer", "orderer")
    assert "/Channel/Application/Readers" in str(rejection(proposal(orderer), orderer, ledger, msps))


def test_duplicate_proposal(ledger: MemoryLedger, msps: ChannelMSPs) -> None:
    creator = who(CLIENT)
    prop = proposal(creator)
    checked = check(prop, creator, ledger, msps)
    ledger.tx_ids.add(checked.tx_id)
    duplicate = rejection(prop, creator, ledger, msps)
    assert f"duplicate transaction found [{checked.tx_id}]" in str(duplicate)
    assert duplicate.code == grpc.StatusCode.ALREADY_EXISTS


def test_malformed_proposals(ledger: MemoryLedger, msps: ChannelMSPs) -> None:
    creator = who(CLIENT)
    with pytest.raises(ProposalRejected, match="Proposal") as info:
        check_proposal(proposal_pb2.SignedProposal(proposal_bytes=b"\xff", signature=b"s"), pki().channel(), msps, ledger)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    prop = proposal(creator)
    header = common_pb2.Header.FromString(prop.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    channel_header.extension = b""
    header.channel_header = channel_header.SerializeToString()
    prop.header = header.SerializeToString()
    with pytest.raises(ProposalRejected, match="ChaincodeId is nil"):
        check(prop, creator, ledger, msps)


# --- assembly ------------------------------------------------------------------------------------

def test_proposal_hash_is_fabrics(msps: ChannelMSPs) -> None:
    creator = who(CLIENT)
    prop = proposal(creator, transient={"t": b"x"})
    header = common_pb2.Header.FromString(prop.header)
    without_transient = proposal_pb2.ChaincodeProposalPayload(
        input=proposal_pb2.ChaincodeProposalPayload.FromString(prop.payload).input).SerializeToString()
    expected = hashlib.sha256(header.channel_header + header.signature_header + without_transient).digest()
    assert proposal_hash(prop) == expected
    response = endorse(prop, member("dc1", "peer"), b"rw")
    payload = proposal_response_pb2.ProposalResponsePayload.FromString(response.payload)
    assert payload.proposal_hash == expected
    action = proposal_pb2.ChaincodeAction.FromString(payload.extension)
    assert (action.results, action.chaincode_id.name, action.response.payload) == (b"rw", CHAINCODE, b"ok")
    endorser = member("dc1", "peer").serialized
    assert response.version == 1 and response.endorsement.endorser == endorser
    assert msps.verify(endorser, response.payload + endorser, response.endorsement.signature)


def test_assembly_layout() -> None:
    creator = who(CLIENT)
    prop = proposal(creator, transient={"t": b"x"})
    rwset = results(writes=[("k", b"v")])
    dc1, dc2 = peers("dc1", "dc2")
    responses = [endorse(prop, dc1, rwset), endorse(prop, dc2, rwset), endorse(prop, dc1, rwset)]
    payload = assemble_transaction(prop, responses)
    assert payload.header.SerializeToString() == prop.header
    [action] = transaction_pb2.Transaction.FromString(payload.data).actions
    assert action.header == common_pb2.Header.FromString(prop.header).signature_header
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
    assert not proposal_pb2.ChaincodeProposalPayload.FromString(action_payload.chaincode_proposal_payload).TransientMap
    assert action_payload.action.proposal_response_payload == responses[0].payload
    assert [e.endorser for e in action_payload.action.endorsements] == [dc1.serialized, dc2.serialized]


def test_assembly_refuses_bad_responses() -> None:
    creator = who(CLIENT)
    prop = proposal(creator)
    dc1, dc2 = peers("dc1", "dc2")
    with pytest.raises(AssemblyError, match="do not match"):
        assemble_transaction(prop, [endorse(prop, dc1, b"a"), endorse(prop, dc2, b"b")])
    failed = proposal_response_pb2.ProposalResponse(response=proposal_response_pb2.Response(status=500, message="boom"))
    with pytest.raises(AssemblyError, match="boom"):
        assemble_transaction(prop, [failed])
    unendorsed = endorse(prop, dc1, b"a")
    unendorsed.ClearField("endorsement")
    with pytest.raises(AssemblyError, match="no endorsements"):
        assemble_transaction(prop, [unendorsed])
    with pytest.raises(AssemblyError, match="at least one"):
        assemble_transaction(prop, [])


def _stamped(seconds: int, nanos: int = 0) -> proposal_pb2.SignedProposal:
    header = common_pb2.Header(channel_header=common_pb2.ChannelHeader(
        channel_id=CHANNEL, timestamp=Timestamp(seconds=seconds, nanos=nanos)).SerializeToString())
    return proposal_pb2.SignedProposal(proposal_bytes=proposal_pb2.Proposal(header=header.SerializeToString())
                                       .SerializeToString())


def test_the_peers_time_window_filter() -> None:
    """Fabric's TimeWindowCheck: a proposal more than 15 minutes from the peer's clock is refused, with its message."""
    now = datetime(2026, 11, 25, 10, 0, 0, 500_000, tzinfo=UTC)
    at = int(now.timestamp())
    assert time_window_violation(_stamped(at + 900), now=now) is None
    assert time_window_violation(_stamped(at - 899), now=now) is None
    assert time_window_violation(_stamped(at + 901), now=now) == (
        "request unauthorized due to incorrect timestamp 2026-11-25T10:15:01Z, peer time 2026-11-25T10:00:00Z, "
        "peer.authentication.timewindow 15m0s")
    assert "incorrect timestamp 2026-11-24T10:00:00Z" in (time_window_violation(_stamped(at - 86_400), now=now) or "")
    assert "incorrect timestamp 1970-01-01T00:00:00Z" in (time_window_violation(_stamped(0), now=now) or "")
    assert time_window_violation(proposal_pb2.SignedProposal(proposal_bytes=b"\xff\xff"), now=now) is None


def _unreadable_key_algorithm(identity: bytes) -> bytes:
    """``identity`` with its certificate's public-key algorithm OID altered (ecPublicKey 1.2.840.10045.2.1 ->
    .2.9): the certificate still parses, but reading its key raises cryptography's UnsupportedAlgorithm."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from fabric_protos.msp import identities_pb2

    sid = identities_pb2.SerializedIdentity.FromString(identity)
    der = x509.load_pem_x509_certificate(sid.id_bytes).public_bytes(Encoding.DER)
    oid = bytes.fromhex("06072a8648ce3d0201")
    assert der.count(oid) == 1
    altered = der.replace(oid, oid[:-1] + b"\x09")
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(altered) + b"-----END CERTIFICATE-----\n"
    return identities_pb2.SerializedIdentity(mspid=sid.mspid, id_bytes=pem).SerializeToString()


def test_an_endorser_certificate_that_cannot_be_read_invalidates_only_its_transaction(
        validator: BlockValidator) -> None:
    creator, dc2 = who(CLIENT), member("dc2", "peer")
    bad = proposal_response_pb2.Endorsement(endorser=_unreadable_key_algorithm(dc2.serialized),
                                            signature=dc2.sign(b"anything"))
    spoiled = rebuild(transaction(creator), _replace_endorsement(1, bad), creator)
    # Judged like any invalid endorser: the endorsement is ignored, the policy is not met; the block's other
    # transaction is unaffected.
    assert codes(validator, spoiled, transaction(creator).envelope) == [C.ENDORSEMENT_POLICY_FAILURE, C.VALID]


def test_a_creator_certificate_that_cannot_be_read_invalidates_only_its_transaction(
        validator: BlockValidator) -> None:
    creator = who(CLIENT)
    unreadable = _unreadable_key_algorithm(creator.serialized)

    def swap_creator(payload: common_pb2.Payload) -> None:
        shdr = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        shdr.creator = unreadable
        payload.header.signature_header = shdr.SerializeToString()

    spoiled = rebuild(transaction(creator), swap_creator, creator)
    assert codes(validator, spoiled, transaction(creator).envelope) == [C.BAD_CREATOR_SIGNATURE, C.VALID]


def test_a_failure_while_judging_one_transaction_invalidates_only_that_transaction(
        validator: BlockValidator, msps: ChannelMSPs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong inside the judgement of one transaction (here the MSP raising something no check
    expects, as a future ``cryptography`` might for a certificate it cannot read), that transaction is
    INVALID_OTHER_REASON and the block's other transactions are judged as usual: a block is never lost to it."""
    creator, odd = who(CLIENT), member("dc2", "client", "odd")
    real = msps.identify

    def identify(identity: bytes):  # type: ignore[no-untyped-def]
        if identity == odd.serialized:
            raise KeyError("an error no check expects")
        return real(identity)

    monkeypatch.setattr(msps, "identify", identify)
    assert codes(validator, transaction(odd).envelope, transaction(creator).envelope) == [
        C.INVALID_OTHER_REASON, C.VALID]


# --- key-level endorsement policies (state-based endorsement) -------------------------------------

def owned_by(owner: str) -> bytes:
    """Committed metadata naming ``owner``'s peer and a majority of the three DCs (as the contracts set it)."""
    return encode_metadata({VALIDATION_PARAMETER: owner_and_majority(owner, ["DC1MSP", "DC2MSP", "DC3MSP"])})


def metadata_write(key: str, policy: bytes | None) -> kv_rwset_pb2.KVMetadataWrite:
    entries = [kv_rwset_pb2.KVMetadataEntry(name=VALIDATION_PARAMETER, value=policy)] if policy is not None else []
    return kv_rwset_pb2.KVMetadataWrite(key=key, entries=entries)


def with_metadata(kv_set: kv_rwset_pb2.KVRWSet, *writes: kv_rwset_pb2.KVMetadataWrite) -> bytes:
    kv_set.metadata_writes.extend(writes)
    return results({CHAINCODE: kv_set})


def test_a_key_policy_replaces_the_chaincode_policy_for_writes_and_deletes(
        validator: BlockValidator, ledger: MemoryLedger) -> None:
    """DC3's key: DC1 + DC2 meet the chaincode's OutOf(2) but not AND(DC3, one other); DC3 + DC1 do."""
    ledger.put(CHAINCODE, "ack", b"dc3's", Version(1, 0), owned_by("DC3MSP"))
    colluders = transaction(rwset=results(writes=[("ack", b"forged")]), endorsers=peers("dc1", "dc2"))
    deleting = transaction(rwset=results(writes=[("ack", None)]), endorsers=peers("dc1", "dc2"))
    owner = transaction(rwset=results(writes=[("ack", b"dc3's own")]), endorsers=peers("dc3", "dc1"))
    [forged, deleted, own] = validator.verdicts([colluders.envelope, deleting.envelope, owner.envelope], 2)
    assert (forged.code, deleted.code, own.code) == (C.ENDORSEMENT_POLICY_FAILURE,) * 2 + (C.VALID,)
    assert "key ack of swarmfuse" in forged.reason
    assert [p.scope for p in own.policies] == ["key ack of swarmfuse"]


def test_keys_without_a_policy_still_need_the_chaincode_policy(validator: BlockValidator,
                                                                 ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "ack", b"dc3's", Version(1, 0), owned_by("DC3MSP"))
    one_endorser = transaction(rwset=results(writes=[("ack", b"x"), ("plain", b"y")]), endorsers=peers("dc3"))
    both = transaction(rwset=results(writes=[("ack", b"x"), ("plain", b"y")]), endorsers=peers("dc3", "dc2"))
    [short, ok] = validator.verdicts([one_endorser.envelope, both.envelope], 2)
    assert short.code == C.ENDORSEMENT_POLICY_FAILURE and ok.code == C.VALID
    assert [p.scope for p in ok.policies] == ["key ack of swarmfuse", "chaincode swarmfuse"]


def test_a_policy_on_a_new_key_is_judged_by_the_chaincode_policy(validator: BlockValidator) -> None:
    """Fabric protects a key only once its policy is committed: creating it with one is a chaincode-policy write."""
    policy = owner_and_majority("DC3MSP", ["DC1MSP", "DC2MSP", "DC3MSP"])
    create = transaction(rwset=with_metadata(kv(writes=[("new", b"v")]), metadata_write("new", policy)),
                         endorsers=peers("dc1", "dc2"))
    [result] = validator.validate([create.envelope], 2)
    assert result.code == C.VALID
    assert result.metadata_writes == [(CHAINCODE, "new", encode_metadata({VALIDATION_PARAMETER: policy}))]


def test_changing_or_removing_a_key_policy_needs_the_current_policy(validator: BlockValidator,
                                                                     ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "ack", b"dc3's", Version(1, 0), owned_by("DC3MSP"))
    takeover = owner_and_majority("DC1MSP", ["DC1MSP", "DC2MSP"])
    by_others = transaction(rwset=with_metadata(kv(), metadata_write("ack", takeover)), endorsers=peers("dc1", "dc2"))
    removed = transaction(rwset=with_metadata(kv(), metadata_write("ack", None)), endorsers=peers("dc1", "dc2"))
    assert codes(validator, by_others.envelope, removed.envelope) == [C.ENDORSEMENT_POLICY_FAILURE] * 2


def test_a_policy_changed_earlier_in_the_block_fails_later_writes_of_the_key(validator: BlockValidator,
                                                                             ledger: MemoryLedger) -> None:
    """Fabric's ValidationParameterUpdatedError: a valid earlier transaction of the block set the key's policy."""
    ledger.put(CHAINCODE, "k", b"v", Version(1, 0))
    policy = owner_and_majority("DC1MSP", ["DC1MSP", "DC2MSP", "DC3MSP"])
    setting = transaction(rwset=with_metadata(kv(), metadata_write("k", policy)), endorsers=peers("dc1", "dc2"))
    writing = transaction(rwset=results(writes=[("k", b"w")]), endorsers=peers("dc1", "dc2"))
    other_key = transaction(rwset=results(writes=[("other", b"w")]), endorsers=peers("dc1", "dc2"))
    [first, second, third] = validator.verdicts([setting.envelope, writing.envelope, other_key.envelope], 2)
    assert (first.code, second.code, third.code) == (C.VALID, C.ENDORSEMENT_POLICY_FAILURE, C.VALID)
    assert "has been changed by transaction 0 of block 2" in second.reason


def test_an_invalid_earlier_policy_change_does_not_count(validator: BlockValidator, ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "k", b"v", Version(1, 0))
    policy = owner_and_majority("DC1MSP", ["DC1MSP", "DC2MSP", "DC3MSP"])
    unendorsed = transaction(rwset=with_metadata(kv(), metadata_write("k", policy)), endorsers=peers("dc1"))
    writing = transaction(rwset=results(writes=[("k", b"w")]), endorsers=peers("dc1", "dc2"))
    assert codes(validator, unendorsed.envelope, writing.envelope) == [C.ENDORSEMENT_POLICY_FAILURE, C.VALID]


def test_a_key_policy_that_does_not_parse_fails_the_write(validator: BlockValidator, ledger: MemoryLedger) -> None:
    """Fabric's peer stops the channel here; the engine fails the one transaction."""
    ledger.put(CHAINCODE, "k", b"v", Version(1, 0), encode_metadata({VALIDATION_PARAMETER: b"\xff\xff"}))
    tx = transaction(rwset=results(writes=[("k", b"w")]), endorsers=peers("dc1", "dc2", "dc3"))
    [result] = validator.verdicts([tx.envelope], 2)
    assert result.code == C.ENDORSEMENT_POLICY_FAILURE and "could not translate policy" in result.reason


def test_a_metadata_only_change_makes_earlier_reads_of_the_key_stale(validator: BlockValidator,
                                                                     ledger: MemoryLedger) -> None:
    ledger.put(CHAINCODE, "k", b"v", Version(1, 0))
    policy = owner_and_majority("DC1MSP", ["DC1MSP", "DC2MSP", "DC3MSP"])
    setting = transaction(rwset=with_metadata(kv(), metadata_write("k", policy)), endorsers=peers("dc1", "dc2"))
    reading = transaction(rwset=results(reads=[("k", Version(1, 0))], writes=[("other", b"x")]))
    assert codes(validator, setting.envelope, reading.envelope) == [C.VALID, C.MVCC_READ_CONFLICT]
