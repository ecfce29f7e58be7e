"""``audit verify`` on synthetic ledgers: blocks made by the embedded engine's own channel (orderer thread,
validator, SQLite ledger) from transactions built and endorsed here, replayed as Deliver would serve them;
then the same ledger with a byte of a stored block, a state value or a validation code changed behind the
engine's back. Also the lifecycle rules read from a config block, the artefact checks and the report."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from engine_pki import CHAINCODE, CHANNEL, NOW, Member, MemoryLedger, pki
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import msp_config_pb2
from fabric_protos.peer import chaincode_pb2, policy_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from fabric_protos.peer.lifecycle import chaincode_definition_pb2, db_pb2

from swarmfuse.chaincode.contract.endorsement import owner_and_majority
from swarmfuse.chaincode.stub import create_composite_key
from swarmfuse.client.audit.artefacts import artefact_checks
from swarmfuse.client.audit.channel import ChannelConfig
from swarmfuse.client.audit.queries import LeaderExtractorRecord, RoundAudit
from swarmfuse.client.audit.replay import LedgerReplay, readable_key
from swarmfuse.client.audit.report import Category, Check, Status, VerificationReport, render_html, write_report
from swarmfuse.client.gateway.proposal import ProposalBuilder
from swarmfuse.network.embedded.channel import Channel, create_ledger
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.commithash import commit_hash, stored_commit_hash, update_batch_bytes
from swarmfuse.network.protocol.lifecycle import (
    LIFECYCLE,
    LifecycleRules,
    committed_definition,
    config_policy,
    definition_state,
)
from swarmfuse.network.protocol.model import ChaincodeDefinition, Version
from swarmfuse.network.protocol.policy import parse
from swarmfuse.network.protocol.txassembly import assemble_transaction, endorse_response
from swarmfuse.network.protocol.validator import transaction_rwset

C = transaction_pb2
LONG = {"not_before": NOW - timedelta(days=1), "not_after": NOW + timedelta(days=3000)}
ROUND_KEY = create_composite_key("round", ["r1"])
EXCHANGE_KEY = create_composite_key("exchange", ["r1", "DC2MSP", "DC1MSP", "features"])


def identity(org: str, role: str) -> Member:
    ca = getattr(pki(), org)
    return ca.issue(f"{role}.audit.{ca.name.lower()}", (role,), **LONG)


CLIENT, PEERS, ORDERER = identity("dc1", "client"), {o: identity(o, "peer") for o in ("dc1", "dc2", "dc3")}, \
    identity("orderer", "orderer")
DC2_CLIENT = identity("dc2", "client")  # the sender of EXCHANGE_KEY's exchange


def envelope(writes: dict[str, bytes | None], reads: dict[str, Version | None] | None = None,
             endorsers: Sequence[str] = ("dc1", "dc2"), creator: Member = CLIENT, stamp: datetime | None = None,
             policies: dict[str, bytes] | None = None) -> bytes:
    """An endorsed transaction of the chaincode, signed by ``creator``, as our client and gateway build one
    (``stamp``: the timestamp the submitter chose, now by default; ``policies``: key-level endorsement
    policies it sets)."""
    proposed = ProposalBuilder(CHANNEL, CHAINCODE, "Put").build(creator.serialized)
    proposal = proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes)
    if stamp is not None:
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
        channel_header.timestamp.FromDatetime(stamp)
        header.channel_header = channel_header.SerializeToString()
        proposal.header = header.SerializeToString()
    kv = kv_rwset_pb2.KVRWSet(
        reads=[kv_rwset_pb2.KVRead(key=k, version=kv_rwset_pb2.Version(block_num=v.block, tx_num=v.tx) if v else None)
               for k, v in (reads or {}).items()],
        writes=[kv_rwset_pb2.KVWrite(key=k, value=v or b"", is_delete=v is None) for k, v in writes.items()],
        metadata_writes=[kv_rwset_pb2.KVMetadataWrite(key=k, entries=[
            kv_rwset_pb2.KVMetadataEntry(name="VALIDATION_PARAMETER", value=p)]) for k, p in (policies or {}).items()])
    results = rwset_pb2.TxReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV, ns_rwset=[
        rwset_pb2.NsReadWriteSet(namespace=CHAINCODE, rwset=kv.SerializeToString())]).SerializeToString()
    responses = [endorse_response(proposal, proposal_response_pb2.Response(status=200), results, b"",
                                  chaincode_pb2.ChaincodeID(name=CHAINCODE, version="1.0"), PEERS[org].sign,
                                  PEERS[org].serialized) for org in endorsers]
    payload = assemble_transaction(proposal, responses).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=creator.sign(payload)).SerializeToString()


class EngineChannel:
    """A channel of the embedded engine (its orderer thread, validator and SQLite ledger) without gRPC."""

    def __init__(self, path: Path) -> None:
        self.path = path
        definition = pki().channel()
        genesis = blockfmt.config_block(definition, ORDERER.sign, ORDERER.serialized)
        self.ledger = create_ledger(path, genesis, definition.chaincode)  # type: ignore[arg-type]
        self.channel = Channel(definition, self.ledger, ORDERER.sign, ORDERER.serialized)
        self.channel.start()
        self.channel.define_chaincode(identity("dc1", "admin"), [*PEERS.values(), identity("auditor", "peer")])

    def block(self, *envelopes: bytes) -> int:
        """Order ``envelopes`` into one block; its number."""
        height = self.ledger.height
        for data in envelopes:
            self.channel.orderer.broadcast(data)
        assert self.ledger.wait_for_height(height + 1, 10)
        return height

    def version(self, key: str) -> Version | None:
        value = self.ledger.get_state(CHAINCODE, key)
        return value.version if value else None

    def digest(self) -> dict[str, str]:
        """What ``Audit:StateDigest`` returns: every key of the chaincode with the SHA-256 of its value."""
        return {k: hashlib.sha256(v.value).hexdigest() for k, v in self.ledger.get_state_range(CHAINCODE, "", "")}

    def tamper(self, sql: str, *args: object) -> None:
        """Change the SQLite file behind the engine's back (another connection, as any process could)."""
        with sqlite3.connect(self.path) as conn:
            conn.execute(sql, args)

    def replay(self) -> LedgerReplay:
        replay = LedgerReplay(CHAINCODE)
        for number in range(self.ledger.height):
            block = self.ledger.block(number)  # read from SQLite each time, as Deliver serves it
            assert block is not None
            replay.add(block)
        replay.final_checks(self.digest())
        return replay


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[EngineChannel]:
    channel = EngineChannel(tmp_path / "task1.sqlite")
    channel.block(envelope({ROUND_KEY: b'{"state":"open"}'}))
    channel.block(envelope({EXCHANGE_KEY: b'{"sha256":"' + b"ab" * 32 + b'"}', "plain": b"1"}, creator=DC2_CLIENT))
    current = channel.version(ROUND_KEY)
    # two read-modify-writes of one key in one block: the second is an MVCC conflict; one under-endorsed tx
    channel.block(envelope({ROUND_KEY: b'{"state":"fused"}'}, {ROUND_KEY: current}),
                  envelope({ROUND_KEY: b'{"state":"aborted"}'}, {ROUND_KEY: current}),
                  envelope({"plain": b"2"}, endorsers=("dc3",)))
    channel.block(envelope({"plain": None}, endorsers=("dc2", "dc3")))
    yield channel
    channel.channel.stop()


def failures(replay: LedgerReplay) -> list[Check]:
    return [c for c in replay.checks if c.status == Status.FAIL]


def find(replay: LedgerReplay, name: str, subject: str) -> Check:
    [check] = [c for c in replay.checks if (c.name, c.subject) == (name, subject)]
    return check


def test_an_untouched_ledger_passes_every_check(engine: EngineChannel) -> None:
    replay = engine.replay()
    assert failures(replay) == []
    assert replay.newest == 5
    names = {c.name for c in replay.checks}
    assert {"hash chain", "data hash", "orderer signature", "last config", "transactions filter", "commit hash",
            "channel config", "creator", "endorsements", "validation code", "unique tx IDs", "state value"} <= names
    assert "OrdererMSP orderer" in find(replay, "orderer signature", "block 4").detail
    # invalid transactions are recorded as such, and the replay agrees
    assert find(replay, "validation code", "block 4 tx 1").detail.startswith("MVCC_READ_CONFLICT: key")
    policy = find(replay, "endorsements", "block 4 tx 2")
    assert policy.status == Status.INFO and "ENDORSEMENT_POLICY_FAILURE" in policy.detail
    assert find(replay, "validation code", "block 4 tx 2").status == Status.PASS
    # the chaincode is defined as on Fabric: by a _lifecycle transaction in block 1, endorsed per
    # LifecycleEndorsement (a majority of the 4 application orgs' peers)
    definition = find(replay, "chaincode definition", f"chaincode {CHAINCODE}")
    assert (definition.status, definition.block) == (Status.PASS, 1)
    assert definition.detail == ("committed through _lifecycle: sequence 1, version 1.0, endorsement policy "
                                 "OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer') (the task's rule)")
    lifecycle = find(replay, "endorsements", "block 1 tx 0")
    assert lifecycle.status == Status.PASS and "chaincode _lifecycle: OutOf(3, OutOf(1, 'AuditorMSP.peer')" in \
        lifecycle.detail
    assert "DC1MSP admin" in find(replay, "creator", "block 1 tx 0").detail
    state = {c.subject: c for c in replay.checks if c.name == "state value"}
    assert set(state) == {"key round/r1", "key exchange/r1/DC2MSP/DC1MSP/features"}  # "plain" was deleted
    assert state["key round/r1"].block == 4 and state["key round/r1"].detail.endswith("(block 4 tx 0)")


def test_a_byte_changed_in_a_stored_block_names_the_block_and_the_transaction(engine: EngineChannel) -> None:
    data = engine.ledger.block_bytes(3)
    assert data is not None
    at = data.index(b"ab" * 32)  # inside the exchange record's value, in the write set of block 3's only tx
    changed = data[:at] + b"c" + data[at + 1:]
    engine.tamper("UPDATE blocks SET data = ? WHERE number = 3", changed)
    tx_id = common_pb2.ChannelHeader.FromString(common_pb2.Payload.FromString(common_pb2.Envelope.FromString(
        common_pb2.Block.FromString(data).data.data[0]).payload).header.channel_header).tx_id
    replay = engine.replay()
    failed = {(c.name, c.subject) for c in failures(replay)}
    assert failed == {("data hash", "block 3"), ("commit hash", "block 3"), ("creator", "block 3 tx 0"),
                      ("endorsements", "block 3 tx 0"), ("validation code", "block 3 tx 0"),
                      ("state value", "key exchange/r1/DC2MSP/DC1MSP/features")}
    code = find(replay, "validation code", "block 3 tx 0")
    assert (code.block, code.tx_id) == (3, tx_id)
    assert code.detail.startswith("recorded VALID, the replay gives BAD_CREATOR_SIGNATURE")
    state = find(replay, "state value", "key exchange/r1/DC2MSP/DC1MSP/features")
    assert (state.block, state.tx_id) == (3, tx_id)


def test_a_state_value_changed_behind_the_engine_names_the_key_and_its_last_write(engine: EngineChannel) -> None:
    engine.tamper("UPDATE state SET value = ? WHERE ns = ? AND key = ?", b'{"state":"closed"}', CHAINCODE,
                  ROUND_KEY.encode())
    replay = engine.replay()
    [failure] = failures(replay)
    assert (failure.name, failure.subject, failure.block) == ("state value", "key round/r1", 4)
    assert failure.tx_id == replay.state.last_write(CHAINCODE, ROUND_KEY).tx_id  # type: ignore[union-attr]
    assert hashlib.sha256(b'{"state":"closed"}').hexdigest() in failure.detail
    assert "last valid write, tx " in failure.detail and "(block 4 tx 0)" in failure.detail


def test_a_changed_validation_code_is_caught_by_the_replay_and_the_commit_hash(engine: EngineChannel) -> None:
    block = common_pb2.Block.FromString(engine.ledger.block_bytes(4))  # type: ignore[arg-type]
    block.metadata.metadata[blockfmt.TRANSACTIONS_FILTER] = bytes([C.VALID, C.VALID, C.ENDORSEMENT_POLICY_FAILURE])
    engine.tamper("UPDATE blocks SET data = ? WHERE number = 4", block.SerializeToString())
    replay = engine.replay()
    failed = {(c.name, c.subject) for c in failures(replay)}
    assert failed == {("validation code", "block 4 tx 1"), ("commit hash", "block 4"), ("state value", "key round/r1")}
    assert find(replay, "validation code", "block 4 tx 1").detail.startswith(
        "recorded VALID, the replay gives MVCC_READ_CONFLICT")


def test_a_block_signed_by_someone_else_fails_its_orderer_signature(engine: EngineChannel) -> None:
    block = common_pb2.Block.FromString(engine.ledger.block_bytes(1))  # type: ignore[arg-type]
    blockfmt.sign_block(block, PEERS["dc1"].sign, PEERS["dc1"].serialized, last_config=0)
    engine.tamper("UPDATE blocks SET data = ? WHERE number = 1", block.SerializeToString())
    check = find(engine.replay(), "orderer signature", "block 1")
    assert check.status == Status.FAIL and "DC1MSP peer" in check.detail and "BlockValidation" in check.detail


# --- Fabric's lifecycle rules, read from the ledger -----------------------------------------------


def _config() -> ChannelConfig:
    block = blockfmt.config_block(pki().channel(), ORDERER.sign, ORDERER.serialized)
    return ChannelConfig.from_block(block, lambda: NOW)


def test_policies_come_from_the_config_tree() -> None:
    config = _config()
    assert str(config.lifecycle_endorsement) == ("OutOf(3, OutOf(1, 'AuditorMSP.peer'), OutOf(1, 'DC1MSP.peer'), "
                                                 "OutOf(1, 'DC2MSP.peer'), OutOf(1, 'DC3MSP.peer'))")
    assert str(config.block_validation) == "OutOf(1, OutOf(1, 'OrdererMSP.member'))"
    assert str(config_policy(config.config, "/Channel/Application/DC2/Endorsement")) == "OutOf(1, 'DC2MSP.peer')"
    assert str(config.task_policy()) == "OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer')"


def test_ledger_rules_follow_the_committed_chaincode_definition() -> None:
    config, state = _config(), MemoryLedger()
    rules = LifecycleRules(config.config, config.definition.orgs, state)
    assert rules.policy(CHAINCODE) is None and rules.policy("other") is None  # not defined: not a namespace
    assert rules.policy(LIFECYCLE) == config.lifecycle_endorsement
    assert rules.collection_policy(LIFECYCLE, "_implicit_org_DC3MSP") == parse("OR('DC3MSP.peer')")
    assert rules.collection_policy(CHAINCODE, "_implicit_org_DC3MSP") is None
    defined = "OutOf(3, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer')"
    for key, value in definition_state(ChaincodeDefinition(CHAINCODE, "1.2", 1, defined)).items():
        state.put(LIFECYCLE, key, value, Version(1, 0))
    assert rules.policy(CHAINCODE) == parse(defined)
    definition = committed_definition(state, CHAINCODE, config.config)
    assert definition is not None
    assert (definition.sequence, definition.version, definition.written_at) == (1, "1.2", Version(1, 0))
    # the values are Fabric's: StateData of the marshalled lifecycle messages, plugins defaulted
    info = chaincode_definition_pb2.ChaincodeValidationInfo.FromString(db_pb2.StateData.FromString(
        state.get_state(LIFECYCLE, f"namespaces/fields/{CHAINCODE}/ValidationInfo").value).Bytes)  # type: ignore[union-attr]
    assert info.validation_plugin == "vscc"
    assert policy_pb2.ApplicationPolicy.FromString(info.validation_parameter).signature_policy == \
        parse(defined).to_envelope()
    assert db_pb2.StateMetadata.FromString(state.get_state(LIFECYCLE, f"namespaces/metadata/{CHAINCODE}").value) == \
        db_pb2.StateMetadata(datatype="ChaincodeDefinition",  # type: ignore[union-attr]
                             fields=["Sequence", "EndorsementInfo", "ValidationInfo", "Collections"])
    reference = policy_pb2.ApplicationPolicy(channel_config_policy_reference="/Channel/Application/Endorsement")
    info.validation_parameter = reference.SerializeToString()
    state.put(LIFECYCLE, f"namespaces/fields/{CHAINCODE}/ValidationInfo",
              db_pb2.StateData(Bytes=info.SerializeToString()).SerializeToString(), Version(2, 0))
    assert str(rules.policy(CHAINCODE)) == ("OutOf(3, OutOf(1, 'AuditorMSP.peer'), OutOf(1, 'DC1MSP.peer'), "
                                            "OutOf(1, 'DC2MSP.peer'), OutOf(1, 'DC3MSP.peer'))")  # MAJORITY Endorsement


def test_readable_keys() -> None:
    assert readable_key(EXCHANGE_KEY) == "exchange/r1/DC2MSP/DC1MSP/features"
    assert readable_key("plain") == "plain"


# --- artefacts ------------------------------------------------------------------------------------


def _round(features: bytes, labels: bytes, model: bytes) -> RoundAudit:
    sha = lambda data: hashlib.sha256(data).hexdigest()
    at = "2026-11-25T10:00:00Z"
    record = {"round_id": "r1", "state": "closed", "participants": ["DC1MSP", "DC2MSP", "DC3MSP"],
              "roles": {}, "label_holder": "DC1MSP", "method": "intermediate", "model_spec_sha256": sha(b"spec"),
              "deadline": at, "opened_by": "DC1MSP", "opened_at": at, "open_tx": "t0", "turn": 0, "leader": "DC3MSP",
              "model_sha256": sha(model), "updated_at": at}
    exchanges = [{"round_id": "r1", "sender": sender, "receiver": "DC3MSP", "kind": kind, "sha256": sha(data),
                  "bytes": len(data), "entity_count": 3, "recorded_at": at, "tx_id": f"tx-{kind}"}
                 for sender, kind, data in (("DC2MSP", "features", features), ("DC1MSP", "labels", labels))]
    history = [{"tx_id": "t0", "timestamp": at, "value": {**record, "model_sha256": None}},
               {"tx_id": "tx-fused", "timestamp": at, "value": record}]
    return RoundAudit.model_validate({"record": record, "history": history, "alignment": None,
                                      "exchanges": exchanges, "acknowledgements": []})


def test_artefacts_match_their_records_and_a_changed_byte_names_the_record(tmp_path: Path) -> None:
    features, labels, model = b"features of DC2", b"labels of DC1", b"the fused model"
    rounds = {"r1": _round(features, labels, model)}
    leader = tmp_path / "DC3" / "rounds" / "r1"
    (leader / "in").mkdir(parents=True)
    received = leader / "in" / f"DC2MSP-features-{hashlib.sha256(features).hexdigest()[:16]}"
    received.write_bytes(features)
    (leader / "in" / f"DC1MSP-labels-{hashlib.sha256(labels).hexdigest()[:16]}").write_bytes(labels)
    (leader / "model.npz").write_bytes(model)
    (leader / "features.npy").write_bytes(b"the leader's own features")
    (leader / "published.json").write_text("{}")
    checks = {c.subject: c for c in artefact_checks(tmp_path / "DC3", rounds, "DC3MSP")}
    assert {s: c.status for s, c in checks.items()} == {
        "file rounds/r1/features.npy": Status.INFO, "file rounds/r1/model.npz": Status.PASS,
        f"file rounds/r1/in/{received.name}": Status.PASS,
        f"file rounds/r1/in/DC1MSP-labels-{hashlib.sha256(labels).hexdigest()[:16]}": Status.PASS}
    assert checks["file rounds/r1/model.npz"].tx_id == "tx-fused"
    received.write_bytes(b"Features of DC2")
    (leader / "model.npz").write_bytes(b"the fused modeL")
    checks = {c.subject: c for c in artefact_checks(tmp_path / "DC3", rounds, "DC3MSP")}
    exchange = checks[f"file rounds/r1/in/{received.name}"]
    assert (exchange.status, exchange.record, exchange.tx_id) == (Status.FAIL, "exchange r1 DC2MSP->DC3MSP features",
                                                                  "tx-features")
    assert hashlib.sha256(features).hexdigest() in exchange.detail
    model_check = checks["file rounds/r1/model.npz"]
    assert (model_check.status, model_check.record) == (Status.FAIL, "model r1")
    sender = tmp_path / "DC2" / "rounds" / "r1"
    sender.mkdir(parents=True)
    (sender / "features.npy").write_bytes(features)
    (sender / "r2").mkdir()
    [own] = artefact_checks(tmp_path / "DC2", rounds, None)  # matched by content when the org is unknown
    assert (own.status, own.record) == (Status.PASS, "exchange r1 DC2MSP->DC3MSP features")
    (tmp_path / "DC2" / "rounds" / "r9").mkdir()
    (tmp_path / "DC2" / "rounds" / "r9" / "model.npz").write_bytes(model)
    assert [c.status for c in artefact_checks(tmp_path / "DC2", rounds, "DC2MSP")] == [Status.PASS, Status.FAIL]


def test_split_learning_files_match_their_epoch_exchanges_and_training_state_is_not_checked(tmp_path: Path) -> None:
    features, gradients = b"DC2's features of epoch 1", b"gradients for DC2, epoch 1"
    audit = _round(b"f", b"l", b"m")
    sha = lambda data: hashlib.sha256(data).hexdigest()
    extra = [audit.exchanges[0].model_copy(update={"kind": "features.1", "sha256": sha(features),
                                                   "bytes": len(features), "tx_id": "tx-f1"}),
             audit.exchanges[0].model_copy(update={"sender": "DC3MSP", "receiver": "DC2MSP", "kind": "gradients.1",
                                                   "sha256": sha(gradients), "bytes": len(gradients), "tx_id": "tx-g1"})]
    rounds = {"r1": audit.model_copy(update={"exchanges": [*audit.exchanges, *extra]})}
    site, leader = tmp_path / "DC2" / "rounds" / "r1" / "split", tmp_path / "DC3" / "rounds" / "r1" / "split"
    site.mkdir(parents=True)
    leader.mkdir(parents=True)
    (site / "features.1.npy").write_bytes(features)
    (site / "top.1.pt").write_bytes(b"the site's trainable top")  # training state: never sent, not checked
    (leader / "gradients.1.DC2MSP.npy").write_bytes(gradients)
    (leader / "leader.1.pt").write_bytes(b"the leader's heads")
    [sent] = artefact_checks(tmp_path / "DC2", rounds, "DC2MSP")
    assert (sent.subject, sent.status, sent.tx_id) == ("file rounds/r1/split/features.1.npy", Status.PASS, "tx-f1")
    [back] = artefact_checks(tmp_path / "DC3", rounds, "DC3MSP")
    assert (back.status, back.record) == (Status.PASS, "exchange r1 DC3MSP->DC2MSP gradients.1")
    (leader / "gradients.1.DC2MSP.npy").write_bytes(b"gradients for DC2, epoch 2")
    [changed] = artefact_checks(tmp_path / "DC3", rounds, "DC3MSP")
    assert (changed.status, changed.tx_id) == (Status.FAIL, "tx-g1") and sha(gradients) in changed.detail


def test_a_fine_tuned_extractor_bundle_matches_the_hash_its_final_features_name(tmp_path: Path) -> None:
    onnx = b"the extractor split learning fine-tuned at DC2"
    sha = lambda data: hashlib.sha256(data).hexdigest()
    audit = _round(b"f", b"l", b"m")
    named = audit.exchanges[0].model_copy(update={"extractor_onnx_sha256": sha(onnx)})  # DC2's final features
    rounds = {"r1": audit.model_copy(update={"exchanges": [named, *audit.exchanges[1:]]})}
    bundle = tmp_path / "DC2" / "rounds" / "r1" / "extractor"
    bundle.mkdir(parents=True)
    (bundle / "bundle.json").write_text(json.dumps({"onnx_file": "extractor.onnx"}))
    (bundle / "extractor.onnx").write_bytes(onnx)
    for owner in ("DC2MSP", None):
        [check] = artefact_checks(tmp_path / "DC2", rounds, owner)
        assert (check.subject, check.status, check.record, check.tx_id) == (
            "folder rounds/r1/extractor", Status.PASS, "exchange r1 DC2MSP->DC3MSP features", "tx-features")
    (bundle / "extractor.onnx").write_bytes(onnx + b"!")
    [changed] = artefact_checks(tmp_path / "DC2", rounds, "DC2MSP")
    assert (changed.status, changed.record) == (Status.FAIL, "exchange r1 DC2MSP->DC3MSP features")
    assert sha(onnx) in changed.detail and sha(onnx + b"!") in changed.detail
    leader = tmp_path / "DC3" / "rounds" / "r1" / "extractor"  # the leader's own: never sent, its own record
    leader.mkdir(parents=True)
    (leader / "bundle.json").write_text(json.dumps({"onnx_file": "extractor.onnx"}))
    (leader / "extractor.onnx").write_bytes(b"the leader's fine-tuned extractor")
    [own] = artefact_checks(tmp_path / "DC3", rounds, "DC3MSP")
    assert own.status == Status.INFO and "recorded no fine-tuned extractor" in own.detail
    recorded = LeaderExtractorRecord(round_id="r1", org="DC3MSP", tx_id="tx-own", recorded_at=audit.record.opened_at,
                                     extractor_onnx_sha256=sha(b"the leader's fine-tuned extractor"))
    rounds["r1"] = rounds["r1"].model_copy(update={"leader_extractor": recorded})
    [own] = artefact_checks(tmp_path / "DC3", rounds, "DC3MSP")
    assert (own.status, own.record, own.tx_id) == (Status.PASS, "leader extractor r1 DC3MSP", "tx-own")
    (leader / "extractor.onnx").write_bytes(b"another extractor")
    [own] = artefact_checks(tmp_path / "DC3", rounds, "DC3MSP")
    assert own.status == Status.FAIL and recorded.extractor_onnx_sha256 in own.detail


# --- the report -----------------------------------------------------------------------------------


def test_report_json_and_html_put_failures_first(engine: EngineChannel, tmp_path: Path) -> None:
    engine.tamper("UPDATE state SET value = ? WHERE ns = ? AND key = ?", b"<x>", CHAINCODE, ROUND_KEY.encode())
    replay = engine.replay()
    report = VerificationReport(channel=CHANNEL, chaincode=CHAINCODE, engine="embedded", identity="AuditorMSP",
                                newest_block=replay.newest, started_at=NOW, seconds=0.5, checks=replay.checks)
    assert not report.ok and report.summary.failed == 1
    html_path, json_path = write_report(report, tmp_path / "out")
    document = json.loads(json_path.read_text())
    assert document["ok"] is False and document["summary"]["failed"] == 1
    assert VerificationReport.model_validate(document).checks == report.checks
    page = html_path.read_text()
    assert page.index("Failures (1)") < page.index("Every check") and "key round/r1" in page
    assert not any(tag in page for tag in ("<script", "<link", "src=", "@import"))  # self-contained
    assert render_html(report.model_copy(update={"checks": [c for c in report.checks if c.status != Status.FAIL]})) \
        .count("VERIFIED") == 1
    assert {c.category for c in report.checks} == {Category.BLOCKS, Category.TRANSACTIONS, Category.STATE}


# --- an attacker's blocks: forged ledgers the orderer signed, judged against the config in force -------


class ForgedChain:
    """The engine fixture's blocks followed by blocks built here exactly as an orderer and a committing peer
    would write them (hash chain, orderer signature, LAST_CONFIG, recorded codes, COMMIT_HASH), whatever the
    codes say: what a ledger looks like when a faulty orderer or peer let something through."""

    def __init__(self, engine: EngineChannel) -> None:
        self.blocks = [engine.ledger.block(n) for n in range(engine.ledger.height)]
        self.last_config = 0

    def append(self, envelopes: Sequence[bytes], codes: Sequence[int] | None = None, config: bool = False) -> int:
        previous = self.blocks[-1]
        assert previous is not None
        number = previous.header.number + 1
        block = blockfmt.new_block(number, blockfmt.header_hash(previous.header), envelopes)
        codes = list(codes if codes is not None else [C.VALID] * len(envelopes))
        blockfmt.set_transactions_filter(block, codes)
        updates: dict[tuple[str, str], tuple[bytes | None, Version]] = {}
        for index, (data, code) in enumerate(zip(envelopes, codes, strict=True)):
            if code == C.VALID and not config:
                for ns, kv, _ in transaction_rwset(data):
                    for write in kv.writes:
                        updates[(ns, write.key)] = (None if write.is_delete else write.value, Version(number, index))
        digest = commit_hash(bytes(codes), update_batch_bytes(updates), stored_commit_hash(previous))
        block.metadata.metadata[blockfmt.COMMIT_HASH] = common_pb2.Metadata(value=digest).SerializeToString()
        if config:
            self.last_config = number
        blockfmt.sign_block(block, ORDERER.sign, ORDERER.serialized, last_config=self.last_config)
        self.blocks.append(block)
        return number

    def replay(self) -> LedgerReplay:
        replay = LedgerReplay(CHAINCODE)
        for block in self.blocks:
            replay.add(block)
        replay.final_checks({k: hashlib.sha256(v.value).hexdigest()
                             for k, v in replay.state.namespace(CHAINCODE).items()})
        return replay


ADMINS = {org: identity(org, "admin") for org in ("dc1", "dc2", "dc3")}


def msp_update(chain: ForgedChain, org: str, extra_ca: bytes, signers: Sequence[Member]) -> bytes:
    """A config envelope adding ``extra_ca`` to the root CAs of ``org``'s MSP, with its config update (the
    MSP value at its next version) signed by ``signers``, as ``peer channel update`` submits one."""
    genesis = chain.blocks[0]
    assert genesis is not None
    _, config = blockfmt.config_of_block(genesis)
    name = getattr(pki(), org).name
    current = config.channel_group.groups["Application"].groups[name]
    msp = msp_config_pb2.MSPConfig.FromString(current.values["MSP"].value)
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    fabric.root_certs.append(extra_ca)
    msp.config = fabric.SerializeToString()
    changed = configtx_pb2.ConfigValue(version=current.values["MSP"].version + 1, mod_policy="Admins",
                                       value=msp.SerializeToString())

    def tree(leaf: configtx_pb2.ConfigGroup) -> configtx_pb2.ConfigGroup:
        root = configtx_pb2.ConfigGroup()
        root.groups["Application"].groups[name].CopyFrom(leaf)
        return root

    update = configtx_pb2.ConfigUpdate(channel_id=CHANNEL, read_set=tree(configtx_pb2.ConfigGroup()),
                                       write_set=tree(configtx_pb2.ConfigGroup()))
    update.write_set.groups["Application"].groups[name].values["MSP"].CopyFrom(changed)
    update_bytes = update.SerializeToString()
    signatures = []
    for signer in signers:
        header = common_pb2.SignatureHeader(creator=signer.serialized, nonce=b"n" * 24).SerializeToString()
        signatures.append(configtx_pb2.ConfigSignature(signature_header=header,
                                                     signature=signer.sign(header + update_bytes)))
    update_envelope = configtx_pb2.ConfigUpdateEnvelope(config_update=update_bytes, signatures=signatures)
    last_update = common_pb2.Envelope(payload=common_pb2.Payload(
        header=common_pb2.Header(channel_header=common_pb2.ChannelHeader(
            type=common_pb2.CONFIG_UPDATE, channel_id=CHANNEL).SerializeToString()),
        data=update_envelope.SerializeToString()).SerializeToString())
    new_config = configtx_pb2.Config(sequence=config.sequence + 1, channel_group=config.channel_group)
    new_config.channel_group.groups["Application"].groups[name].values["MSP"].CopyFrom(changed)
    channel_header = common_pb2.ChannelHeader(type=common_pb2.CONFIG, channel_id=CHANNEL, tx_id="config-1")
    channel_header.timestamp.GetCurrentTime()
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=channel_header.SerializeToString(),
                                 signature_header=common_pb2.SignatureHeader(creator=ORDERER.serialized,
                                                                             nonce=b"o" * 24).SerializeToString()),
        data=configtx_pb2.ConfigEnvelope(config=new_config, last_update=last_update).SerializeToString(),
    ).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=ORDERER.sign(payload)).SerializeToString()


@pytest.mark.parametrize("signed_by", ["dc1", "dc2"])
def test_a_config_block_changing_an_msp_must_be_authorised_by_the_config_in_force(
        engine: EngineChannel, signed_by: str) -> None:
    """DC2's MSP given an extra CA the attacker holds; only DC2's admins may change it (its mod_policy
    Admins, relative to DC2's group). Signed by DC1's admin, the block fails and the config of block 0 stays in
    force, so a transaction by a 'DC2MSP' client of the attacker's CA fails with it, by block and tx ID."""
    chain = ForgedChain(engine)
    rogue = pki().outsider
    number = chain.append([msp_update(chain, "dc2", rogue.cert.public_bytes(Encoding.PEM), [ADMINS[signed_by]])],
                          config=True)
    impostor = rogue.issue("client.impostor", ("client",), mspid="DC2MSP", **LONG)
    forged = envelope({"plain": b"forged"}, creator=impostor)
    after = chain.append([forged])
    replay = chain.replay()
    config = find(replay, "channel config", f"block {number}")
    creator = find(replay, "creator", f"block {after} tx 0")
    if signed_by == "dc2":
        assert failures(replay) == []
        assert "/Channel/Application/DC2/MSP (Admins)" in config.detail and "DC2MSP admin" in config.detail
        assert "DC2MSP client" in creator.detail
        return
    assert {(c.name, c.subject) for c in failures(replay)} == {
        ("channel config", f"block {number}"), ("last config", f"block {after}"),
        ("creator", f"block {after} tx 0"), ("endorsements", f"block {after} tx 0"),
        ("validation code", f"block {after} tx 0")}
    assert "/Channel/Application/DC2/MSP changed without its mod_policy 'Admins'" in config.detail
    assert "signed by DC1MSP admin" in config.detail and "config of block 0 stays in force" in config.detail
    code = find(replay, "validation code", f"block {after} tx 0")
    assert code.detail.startswith("recorded VALID, the replay gives BAD_CREATOR_SIGNATURE")
    assert code.tx_id == common_pb2.ChannelHeader.FromString(common_pb2.Payload.FromString(
        common_pb2.Envelope.FromString(forged).payload).header.channel_header).tx_id


def test_a_config_block_whose_config_is_not_its_update_fails(engine: EngineChannel) -> None:
    """The update signed by DC2's admin, but the block's config holds more than the update made."""
    chain = ForgedChain(engine)
    data = msp_update(chain, "dc2", pki().outsider.cert.public_bytes(Encoding.PEM), [ADMINS["dc2"]])
    env = common_pb2.Envelope.FromString(data)
    payload = common_pb2.Payload.FromString(env.payload)
    config = configtx_pb2.ConfigEnvelope.FromString(payload.data)
    config.config.channel_group.groups["Application"].policies["Admins"].mod_policy = "Writers"
    payload.data = config.SerializeToString()
    number = chain.append([common_pb2.Envelope(payload=payload.SerializeToString(),
                                               signature=ORDERER.sign(payload.SerializeToString()))
                           .SerializeToString()], config=True)
    check = find(chain.replay(), "channel config", f"block {number}")
    assert check.status == Status.FAIL and "not what its config update makes" in check.detail


def test_forged_roles_and_endorsers_recorded_valid_fail_by_block_and_tx(engine: EngineChannel) -> None:
    """A member owning its CA issues itself certificates: a 'peer' creator, a creator claiming another org's
    MSP, a client endorsing as if a peer; and one transaction twice. Recorded VALID by a faulty peer, each
    fails with its block and transaction."""
    chain = ForgedChain(engine)
    dc1 = pki().dc1
    peer_creator = envelope({"a": b"1"}, creator=dc1.issue("peer.rogue", ("peer",), **LONG))
    other_org = envelope({"b": b"1"}, creator=dc1.issue("client.rogue", ("client",), mspid="DC2MSP", **LONG))
    client_endorser = envelope({"c": b"1"}, endorsers=("dc1",))
    rogue = common_pb2.Envelope.FromString(client_endorser)  # re-endorsed below by DC1's peer and a DC2 client
    twice = envelope({"d": b"1"})
    first = chain.append([peer_creator, other_org, _with_extra_endorser(rogue, identity("dc2", "client"))])
    second = chain.append([twice])
    third = chain.append([twice])
    replay = chain.replay()
    failed = {(c.name, c.subject) for c in failures(replay)}
    assert ("validation code", f"block {first} tx 0") in failed and ("validation code", f"block {first} tx 1") in failed
    assert find(replay, "validation code", f"block {first} tx 0").detail.startswith(
        "recorded VALID, the replay gives BAD_CREATOR_SIGNATURE: the creator (DC1MSP peer) does not satisfy")
    assert "certificate signed by unknown authority (not a CA of DC2MSP)" in find(
        replay, "creator", f"block {first} tx 1").detail
    endorsements = find(replay, "endorsements", f"block {first} tx 2")
    assert endorsements.status == Status.FAIL and "DC2MSP.client valid" in endorsements.detail
    assert "NOT satisfied" in endorsements.detail
    assert find(replay, "validation code", f"block {first} tx 2").detail.startswith(
        "recorded VALID, the replay gives ENDORSEMENT_POLICY_FAILURE")
    assert find(replay, "validation code", f"block {second} tx 0").status == Status.PASS
    duplicate = find(replay, "validation code", f"block {third} tx 0")
    assert duplicate.status == Status.FAIL and "DUPLICATE_TXID" in duplicate.detail
    unique = find(replay, "unique tx IDs", f"blocks 0..{third}")
    assert unique.status == Status.FAIL and f"block {second} tx 0 and block {third} tx 0" in unique.detail


def _with_extra_endorser(env: common_pb2.Envelope, endorser: Member) -> bytes:
    """The envelope with ``endorser``'s valid endorsement added, re-signed by its creator (CLIENT)."""
    payload = common_pb2.Payload.FromString(env.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    action = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
    prp = action.action.proposal_response_payload
    action.action.endorsements.append(proposal_response_pb2.Endorsement(
        endorser=endorser.serialized, signature=endorser.sign(prp + endorser.serialized)))
    tx.actions[0].payload = action.SerializeToString()
    payload.data = tx.SerializeToString()
    data = payload.SerializeToString()
    return common_pb2.Envelope(payload=data, signature=CLIENT.sign(data)).SerializeToString()


def test_a_backdated_transaction_does_not_revive_an_expired_certificate(engine: EngineChannel) -> None:
    """The submitter chooses the timestamp: a creator whose certificate expired yesterday stamps its
    transaction two days ago. The replay's clock never goes back, so the certificate is judged expired."""
    now = datetime.now(UTC)
    expired = pki().dc1.issue("client.expired", ("client",), not_before=NOW - timedelta(days=1),
                              not_after=now - timedelta(days=1))
    chain = ForgedChain(engine)
    number = chain.append([envelope({"e": b"1"}, creator=expired, stamp=now - timedelta(days=2))])
    creator = find(chain.replay(), "creator", f"block {number} tx 0")
    assert creator.status == Status.FAIL and "expired at" in creator.detail


def test_a_write_breaking_a_key_policy_recorded_valid_fails(engine: EngineChannel) -> None:
    """DC3 owns a key (its own policy, set when DC3 created it); DC1 and DC2 meet the chaincode's majority
    and rewrite it. A committing peer that recorded that VALID is caught: the replay applies key policies."""
    policy = owner_and_majority("DC3MSP", ["DC1MSP", "DC2MSP", "DC3MSP"])
    key = create_composite_key("ack", ["r1", "DC3MSP"])
    engine.block(envelope({key: b"dc3's acknowledgement"}, endorsers=("dc3", "dc1"), policies={key: policy}))
    chain = ForgedChain(engine)
    forged = chain.append([envelope({key: b"forged"}, reads={key: engine.version(key)}, endorsers=("dc1", "dc2"))])
    replay = chain.replay()
    code = find(replay, "validation code", f"block {forged} tx 0")
    assert code.status == Status.FAIL and code.detail.startswith(
        "recorded VALID, the replay gives ENDORSEMENT_POLICY_FAILURE")
    assert "ack/r1/DC3MSP" in find(replay, "endorsements", f"block {forged} tx 0").detail


def test_an_act_written_in_another_orgs_name_fails_authorship(engine: EngineChannel) -> None:
    """A new key is judged by the chaincode's majority alone (Fabric has no policy for a key that does not
    exist yet): DC1 and DC2 can commit an acknowledgement in DC3's name. The replay names it by its creator."""
    forged_key = create_composite_key("ack", ["r9", "DC3MSP"])
    own_key = create_composite_key("ack", ["r9", "DC1MSP"])
    forged_block = engine.block(envelope({forged_key: b"forged"}))
    own_block = engine.block(envelope({own_key: b"dc1's own"}))
    replay = engine.replay()
    forged = find(replay, "authorship", f"block {forged_block} tx 0")
    assert forged.status == Status.FAIL
    assert forged.detail == "DC1MSP wrote ack/r9/DC3MSP (an act of DC3MSP)"
    own = find(replay, "authorship", f"block {own_block} tx 0")
    assert own.status == Status.PASS and "ack/r9/DC1MSP" in own.detail
