"""Config updates on the embedded engine's channel, as Fabric's orderer processes them: a CONFIG_UPDATE adding
an org is refused (BAD_REQUEST, Fabric's wording) until a majority of the application orgs' admins signed it;
then a CONFIG block of its own is committed, its LAST_CONFIG (and every later block's) names it, the new org's
identities read and write from the next block on, the channel reopens with that config, and ``audit verify``'s
replay accepts the block as an authorised update."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from engine_pki import OrgCA, genesis_channel, member, pki
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.orderer import configuration_pb2 as orderer_config_pb2
from fabric_protos.orderer.ab_pb2_grpc import AtomicBroadcastStub, add_AtomicBroadcastServicer_to_server

from swarmfuse.client.audit.channel import ChannelConfig, config_update_problem
from swarmfuse.network.embedded.broadcast import BroadcastService
from swarmfuse.network.embedded.channel import AccessDenied, BroadcastRefused, Channel, open_channel
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.configcompute import add_org_update, compute_update
from swarmfuse.network.protocol.configsign import NotAConfigUpdate, sign_update, unsigned_update

pytestmark = pytest.mark.timeout(60)

DC4 = OrgCA("DC4", "DC4MSP", "member")
ORDERER = member("orderer", "orderer")


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[Channel]:
    opened = genesis_channel(tmp_path / "task1.sqlite", ORDERER)
    opened.start()
    try:
        yield opened
    finally:
        opened.stop()


def _update(channel: Channel, *signers: str) -> common_pb2.Envelope:
    """The update adding DC4, signed in turn by the admins of ``signers`` (pki org attributes)."""
    envelope = unsigned_update(add_org_update(channel.config, channel.name, DC4.definition()))
    for org in signers:
        envelope = sign_update(envelope.SerializeToString(), member(org, "admin"))
    return envelope


def test_an_org_joins_only_with_a_majority_of_admins(channel: Channel) -> None:
    """Four application orgs (DC1-DC3, the Auditor): MAJORITY Admins is three; the Auditor's admin counts."""
    height = channel.ledger.height
    for signers in (("dc1",), ("dc1", "dc1"), ("dc1", "dc2")):
        with pytest.raises(BroadcastRefused) as refused:
            channel.broadcast(_update(channel, *signers))
        assert refused.value.status == "BAD_REQUEST"
        assert refused.value.info == (
            "error applying config update to existing channel 'task1': error authorizing update: error validating "
            "DeltaSet: policy for [Group]  /Channel/Application not satisfied: implicit policy evaluation failed - "
            f"{len(set(signers))} sub-policies were satisfied, but this policy requires 3 of the 'Admins' "
            "sub-policies to be satisfied")
    assert channel.ledger.height == height and not channel.has_org("DC4MSP")

    channel.broadcast(_update(channel, "dc1", "dc2", "auditor"))
    block = channel.ledger.block(height)
    assert block is not None and channel.ledger.height == height + 1
    assert blockfmt.is_config_block(block.data.data) and blockfmt.last_config_index(block) == height
    assert blockfmt.transactions_filter(block) == [0]
    assert channel.has_org("DC4MSP") and channel.config.sequence == 1
    dc4_client = DC4.issue("client.dc4", ("client",))
    assert channel.check_reader(dc4_client.serialized).mspid == "DC4MSP"
    assert channel.check_writer(dc4_client.serialized, b"m", dc4_client.sign(b"m")).role == "client"

    payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(block.data.data[0]).payload)
    replayed = configtx_pb2.ConfigEnvelope.FromString(payload.data).last_update  # the applied update, sent again
    with pytest.raises(BroadcastRefused) as refused:
        channel.broadcast(replayed)
    assert refused.value.info.endswith("error validating ReadSet: proposed update requires that key [Group]  "
                                       "/Channel/Application be at version 0, but it is currently at version 1")
    assert channel.ledger.height == height + 1


def test_the_config_holds_from_the_next_block_and_after_a_restart(channel: Channel, tmp_path: Path) -> None:
    genesis = channel.ledger.block(0)
    channel.broadcast(_update(channel, "dc1", "dc2", "dc3"))
    config_number = channel.ledger.height - 1
    config_block = channel.ledger.block(config_number)
    writer = DC4.issue("admin.dc4", ("admin",))
    payload = common_pb2.Payload(header=common_pb2.Header(
        channel_header=common_pb2.ChannelHeader(type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel.name)
        .SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=writer.serialized, nonce=b"n" * 24).SerializeToString()))
    data = payload.SerializeToString()
    channel.broadcast(common_pb2.Envelope(payload=data, signature=writer.sign(data)))  # DC4 may now broadcast
    assert channel.ledger.wait_for_height(config_number + 2, 10)
    after = channel.ledger.block(config_number + 1)
    assert after is not None and blockfmt.last_config_index(after) == config_number

    path = channel.ledger.path
    channel.stop()
    reopened = open_channel(path, ORDERER.sign, ORDERER.serialized)
    try:
        assert reopened.has_org("DC4MSP") and reopened.config.sequence == 1
        assert reopened.check_reader(writer.serialized).mspid == "DC4MSP"
    finally:
        reopened.ledger.close()
    assert genesis is not None and config_block is not None

    def at(_: object = None) -> datetime:
        return datetime.now(UTC)

    problem, authorised = config_update_problem(ChannelConfig.from_block(genesis, at), config_block)
    assert problem is None and "/Channel/Application/DC4 added" in authorised
    assert "DC1MSP admin, DC2MSP admin, DC3MSP admin" in authorised


def test_broadcast_refusals_carry_fabrics_status(channel: Channel) -> None:
    update = _update(channel, "dc1", "dc2", "dc3")
    outsider = member("outsider", "admin")
    forged = sign_update(update.SerializeToString(), outsider)
    with pytest.raises(BroadcastRefused) as refused:
        channel.broadcast(forged)  # the envelope's creator is no writer of the channel
    assert refused.value.status == "FORBIDDEN"
    assert refused.value.info.startswith("config update for existing channel did not pass initial checks: implicit "
                                         "policy evaluation failed")
    payload = common_pb2.Payload.FromString(update.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    for kind, info in ((common_pb2.CONFIG, "message is of type that cannot be processed directly"),
                       (common_pb2.ORDERER_TRANSACTION, "message is of type that is no longer supported")):
        header.type = kind
        payload.header.channel_header = header.SerializeToString()
        with pytest.raises(BroadcastRefused, match=info):
            channel.broadcast(common_pb2.Envelope(payload=payload.SerializeToString(), signature=update.signature))
    with pytest.raises(AccessDenied):
        channel.check_reader(DC4.issue("client.dc4", ("client",)).serialized)


def test_only_a_config_update_envelope_is_signed(channel: Channel) -> None:
    with pytest.raises(NotAConfigUpdate, match="not CONFIG_UPDATE"):
        sign_update(channel.ledger.block(0).data.data[0], member("dc1", "admin"))  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="already has org DC1"):
        add_org_update(channel.config, channel.name, pki().dc1.definition())


def _anchor_update(channel: Channel, endpoint: str) -> bytes:
    """The unsigned update setting DC1's anchor peer to ``endpoint``."""
    updated = configtx_pb2.Config()
    updated.CopyFrom(channel.config)
    moved = blockfmt.org_group(replace(pki().dc1.definition(), endpoints=(endpoint,)))
    updated.channel_group.groups["Application"].groups["DC1"].values["AnchorPeers"].CopyFrom(
        moved.values["AnchorPeers"])
    return unsigned_update(compute_update(channel.config, updated, channel.name)).SerializeToString()


def test_each_changed_element_is_judged_by_its_own_mod_policy(channel: Channel) -> None:
    """DC1's anchor peers are DC1's to set: a new ``AnchorPeers`` value changes DC1's group (mod_policy ``Admins``
    relative to it), a changed one the value itself (``Admins`` relative to the group holding it). DC2's and
    DC3's admins together can do neither; DC1's admin alone does both."""
    for endpoint, changed, versions in (("dc1.example:7051", "[Group]  /Channel/Application/DC1", (0, 1, 0)),
                                        ("dc1.example:7052", "[Value]  /Channel/Application/DC1/AnchorPeers",
                                         (0, 1, 1))):
        unsigned = _anchor_update(channel, endpoint)
        others = sign_update(sign_update(unsigned, member("dc2", "admin")).SerializeToString(),
                             member("dc3", "admin"))
        with pytest.raises(BroadcastRefused) as refused:
            channel.broadcast(others)
        assert refused.value.info.endswith(f"policy for {changed} not satisfied: signature set did not satisfy policy")
        channel.broadcast(sign_update(unsigned, member("dc1", "admin")))
        assert channel.definition.org_by_msp("DC1MSP").endpoints == (endpoint,)  # type: ignore[union-attr]
        group = channel.config.channel_group.groups["Application"]
        assert (group.version, group.groups["DC1"].version, group.groups["DC1"].values["AnchorPeers"].version) \
            == versions


def test_the_orderer_cuts_by_the_batch_size_in_force(channel: Channel) -> None:
    """BatchSize is the orderer org's to change (``/Channel/Orderer/Admins``): the DC admins cannot, the orderer
    org's admin can, and the blocks after the update hold at most the new MaxMessageCount."""
    updated = configtx_pb2.Config()
    updated.CopyFrom(channel.config)
    batch = orderer_config_pb2.BatchSize.FromString(updated.channel_group.groups["Orderer"].values["BatchSize"].value)
    batch.max_message_count = 1
    updated.channel_group.groups["Orderer"].values["BatchSize"].value = batch.SerializeToString()
    unsigned = unsigned_update(compute_update(channel.config, updated, channel.name)).SerializeToString()
    with pytest.raises(BroadcastRefused, match="policy for \\[Value\\]  /Channel/Orderer/BatchSize not satisfied"):
        channel.broadcast(_signed(unsigned, "dc1", "dc2", "dc3"))
    channel.broadcast(_signed(unsigned, "orderer"))
    height = channel.ledger.height
    writer = member("dc1", "client")
    for nonce in (b"a" * 24, b"b" * 24):
        payload = common_pb2.Payload(header=common_pb2.Header(
            channel_header=common_pb2.ChannelHeader(type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel.name)
            .SerializeToString(),
            signature_header=common_pb2.SignatureHeader(creator=writer.serialized, nonce=nonce).SerializeToString(),
        )).SerializeToString()
        channel.broadcast(common_pb2.Envelope(payload=payload, signature=writer.sign(payload)))
    assert channel.ledger.wait_for_height(height + 2, 10)
    assert [len(channel.ledger.block(n).data.data) for n in (height, height + 1)] == [1, 1]  # type: ignore[union-attr]


def _signed(unsigned: bytes, *orgs: str) -> common_pb2.Envelope:
    envelope = common_pb2.Envelope.FromString(unsigned)
    for org in orgs:
        envelope = sign_update(envelope.SerializeToString(), member(org, "admin"))
    return envelope


def test_an_orgs_policies_are_those_of_the_config_in_force(channel: Channel) -> None:
    """DC2's admin narrows DC2's Readers to its admin and peer: from the next block on, DC2's clients may neither
    read the channel nor send proposals, while they still write, and DC1's clients are unaffected."""
    client = member("dc2", "client")
    assert channel.check_reader(client.serialized) and channel.may_propose(channel.principal(client.serialized))
    updated = configtx_pb2.Config()
    updated.CopyFrom(channel.config)
    updated.channel_group.groups["Application"].groups["DC2"].policies["Readers"].policy.value = \
        blockfmt.signature_policy_envelope("OR('DC2MSP.admin', 'DC2MSP.peer')").SerializeToString()
    unsigned = unsigned_update(compute_update(channel.config, updated, channel.name)).SerializeToString()
    channel.broadcast(_signed(unsigned, "dc2"))
    with pytest.raises(AccessDenied, match="DC2MSP client does not satisfy the Readers policy"):
        channel.check_reader(client.serialized)
    assert not channel.may_propose(channel.principal(client.serialized))
    assert channel.check_writer(client.serialized, b"m", client.sign(b"m")).mspid == "DC2MSP"
    assert channel.check_reader(member("dc1", "client").serialized).mspid == "DC1MSP"


def test_the_orderers_broadcast_answers_each_envelope_and_ends_at_a_refusal(channel: Channel) -> None:
    """AtomicBroadcast.Broadcast: SUCCESS for an authorised update (its config block committed), NOT_FOUND for an
    unknown channel, and after an unsuccessful response the stream ends, as Fabric's handler ends it."""
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    add_AtomicBroadcastServicer_to_server(BroadcastService({channel.name: channel}), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    elsewhere = _update(channel, "dc1")
    payload = common_pb2.Payload.FromString(elsewhere.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    header.channel_id = "nowhere"
    payload.header.channel_header = header.SerializeToString()
    unknown = common_pb2.Envelope(payload=payload.SerializeToString(), signature=elsewhere.signature)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as connection:
            stream = AtomicBroadcastStub(connection).Broadcast(
                iter([_update(channel, "dc1", "dc2", "dc3"), unknown, _update(channel, "dc1", "dc2", "dc3")]),
                timeout=30)
            answers = [(common_pb2.Status.Name(r.status), r.info) for r in stream]
    finally:
        server.stop(0)
    assert answers == [("SUCCESS", ""), ("NOT_FOUND", "channel does not exist")]
    assert channel.has_org("DC4MSP")
