"""Fabric's block format: header hashing, new blocks, the orderer's signature, the validation
filter, and the channel's genesis (config) block as ``configtxgen`` builds it for our configtx.

Facts from Fabric v3.1.5 (``protoutil/blockutils.go``, ``orderer/common/multichannel/blockwriter.go``,
``common/genesis/genesis.go``, ``internal/configtxgen/encoder/encoder.go``, ``common/channelconfig/``,
``msp/configbuilder.go``, ``common/policydsl/policyparser.go``):

- header bytes: ASN.1 DER ``SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash }``;
  block hash = SHA-256 of them; data hash = SHA-256 of the envelopes concatenated as they are;
- metadata has 5 slots (SIGNATURES, LAST_CONFIG, TRANSACTIONS_FILTER, ORDERER, COMMIT_HASH); the orderer
  writes ``Metadata{LastConfig}`` into LAST_CONFIG and ``Metadata{OrdererBlockMetadata, [MetadataSignature]}``
  into SIGNATURES, signing ``value ‖ signature_header ‖ header bytes``;
- the channel group of a config block is a tree of maps, so org order is not stored: orgs come back in
  :func:`canonical_channel` order (members, then auditors, each by name). The org kind is read back from
  the rules configtx.py writes: an application org whose Writers policy names only its admin is an
  auditor; the org of the Orderer group is the orderer org.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from fabric_protos.common import common_pb2, configtx_pb2, configuration_pb2, policies_pb2
from fabric_protos.msp import msp_config_pb2, msp_principal_pb2
from fabric_protos.orderer import configuration_pb2 as orderer_config_pb2
from fabric_protos.orderer.etcdraft import configuration_pb2 as etcdraft_pb2
from fabric_protos.peer import configuration_pb2 as peer_config_pb2
from google.protobuf.message import DecodeError, Message

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.durations import go_duration, parse_go_duration
from swarmfuse.network.protocol.identity import transaction_id
from swarmfuse.network.protocol.model import ChannelDefinition, OrgDefinition
from swarmfuse.network.protocol.policy import org_policy_rules

SIGNATURES = common_pb2.BlockMetadataIndex.SIGNATURES
LAST_CONFIG = common_pb2.BlockMetadataIndex.LAST_CONFIG
TRANSACTIONS_FILTER = common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER
COMMIT_HASH = common_pb2.BlockMetadataIndex.COMMIT_HASH
METADATA_SLOTS = len(common_pb2.BlockMetadataIndex.keys())

# Config tree names (common/channelconfig).
APPLICATION = "Application"
ORDERER = "Orderer"
MSP = "MSP"
ANCHOR_PEERS = "AnchorPeers"
ENDPOINTS = "Endpoints"
BATCH_SIZE = "BatchSize"
BATCH_TIMEOUT = "BatchTimeout"
CHANNEL_RESTRICTIONS = "ChannelRestrictions"
CONSENSUS_TYPE = "ConsensusType"
HASHING_ALGORITHM = "HashingAlgorithm"
BLOCK_DATA_HASHING_STRUCTURE = "BlockDataHashingStructure"
CAPABILITIES = "Capabilities"
ACLS = "ACLs"
ADMINS = "Admins"
READERS = "Readers"
WRITERS = "Writers"
ENDORSEMENT = "Endorsement"

CONSENSUS = "etcdraft"
CHANNEL_CAPABILITY = "V3_0"
ORDERER_CAPABILITY = "V2_0"
APPLICATION_CAPABILITY = "V2_5"
NONCE_SIZE = 24
CONFIG_MSG_VERSION = 1  # common/genesis: the genesis block's channel header version
FABRIC_MSP_TYPE = 0
NODE_OUS = ("client", "peer", "admin", "orderer")

_ROLES = {
    "member": msp_principal_pb2.MSPRole.MEMBER,
    "admin": msp_principal_pb2.MSPRole.ADMIN,
    "client": msp_principal_pb2.MSPRole.CLIENT,
    "peer": msp_principal_pb2.MSPRole.PEER,
    "orderer": msp_principal_pb2.MSPRole.ORDERER,
}


class ConfigBlockError(SwarmfuseError, ValueError):
    """A block is not a config block this module can read, or a channel definition cannot be encoded."""


# ---------------------------------------------------------------------------------------------- hashing


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_unsigned(n: int) -> bytes:
    """DER INTEGER of a non-negative number: minimal two's complement (``0`` is one zero byte)."""
    body = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return _der(0x02, body)


def header_bytes(header: common_pb2.BlockHeader) -> bytes:
    """Fabric's ``BlockHeaderBytes``: DER ``SEQUENCE{INTEGER number, OCTET STRING previous, OCTET STRING data}``."""
    return _der(
        0x30,
        _der_unsigned(header.number) + _der(0x04, header.previous_hash) + _der(0x04, header.data_hash),
    )


def header_hash(header: common_pb2.BlockHeader) -> bytes:
    """The block hash: SHA-256 of :func:`header_bytes` (the next block's ``previous_hash``)."""
    return hashlib.sha256(header_bytes(header)).digest()


def data_hash(envelopes: Sequence[bytes]) -> bytes:
    """SHA-256 of the envelopes concatenated as they are (``ComputeBlockDataHash``)."""
    digest = hashlib.sha256()
    for envelope in envelopes:
        digest.update(envelope)
    return digest.digest()


# ----------------------------------------------------------------------------------------------- blocks


def new_block(number: int, previous_hash: bytes, envelopes: Sequence[bytes]) -> common_pb2.Block:
    """Block ``number`` holding ``envelopes`` with its data hash and 5 empty metadata slots."""
    block = common_pb2.Block()
    block.header.number = number
    block.header.previous_hash = previous_hash
    block.header.data_hash = data_hash(envelopes)
    block.data.data.extend(envelopes)
    block.metadata.metadata.extend([b""] * METADATA_SLOTS)
    return block


def _ensure_slots(block: common_pb2.Block) -> None:
    missing = METADATA_SLOTS - len(block.metadata.metadata)
    if missing > 0:
        block.metadata.metadata.extend([b""] * missing)


def sign_block(block: common_pb2.Block, sign: Callable[[bytes], bytes], creator: bytes, last_config: int) -> None:
    """Write LAST_CONFIG and the orderer's signature into SIGNATURES as Fabric's block writer does.

    ``sign`` gets the message (``value ‖ signature_header ‖ header_bytes``) and returns a DER low-S ECDSA
    signature over its SHA-256; ``creator`` is the orderer's serialized identity.
    """
    _ensure_slots(block)
    block.metadata.metadata[LAST_CONFIG] = common_pb2.Metadata(
        value=common_pb2.LastConfig(index=last_config).SerializeToString()
    ).SerializeToString()
    value = common_pb2.OrdererBlockMetadata(
        last_config=common_pb2.LastConfig(index=last_config),
        consenter_metadata=common_pb2.Metadata().SerializeToString(),
    ).SerializeToString()
    signature_header = common_pb2.SignatureHeader(creator=creator, nonce=os.urandom(NONCE_SIZE)).SerializeToString()
    signature = sign(value + signature_header + header_bytes(block.header))
    block.metadata.metadata[SIGNATURES] = common_pb2.Metadata(
        value=value,
        signatures=[common_pb2.MetadataSignature(signature_header=signature_header, signature=signature)],
    ).SerializeToString()


def verify_block_signature(
    block: common_pb2.Block, verify: Callable[[bytes, bytes, bytes], bool]
) -> bool:
    """True when some signature in SIGNATURES verifies: ``verify(creator, message, signature)``.

    Like Fabric's ``BlockSignatureVerifier`` with an ANY policy: signatures that do not verify are
    ignored; a block without a signature (or with unreadable metadata) does not verify.
    """
    if len(block.metadata.metadata) <= SIGNATURES:
        return False
    try:
        metadata = common_pb2.Metadata.FromString(block.metadata.metadata[SIGNATURES])
    except DecodeError:
        return False
    header = header_bytes(block.header)
    for item in metadata.signatures:
        try:
            creator = common_pb2.SignatureHeader.FromString(item.signature_header).creator
        except DecodeError:
            continue
        if verify(creator, metadata.value + item.signature_header + header, item.signature):
            return True
    return False


def last_config_index(block: common_pb2.Block) -> int:
    """The last config block number from the SIGNATURES slot (``GetLastConfigIndexFromBlock``)."""
    metadata = common_pb2.Metadata.FromString(block.metadata.metadata[SIGNATURES])
    if metadata.value:
        return common_pb2.OrdererBlockMetadata.FromString(metadata.value).last_config.index
    legacy = common_pb2.Metadata.FromString(block.metadata.metadata[LAST_CONFIG])
    return common_pb2.LastConfig.FromString(legacy.value).index


def set_transactions_filter(block: common_pb2.Block, codes: Sequence[int]) -> None:
    """One validation-code byte per envelope into TRANSACTIONS_FILTER."""
    if len(codes) != len(block.data.data):
        raise ValueError(
            f"block {block.header.number}: {len(codes)} validation codes for {len(block.data.data)} envelopes")
    if any(not 0 <= code <= 255 for code in codes):
        raise ValueError(f"block {block.header.number}: validation codes must fit in one byte: {list(codes)}")
    _ensure_slots(block)
    block.metadata.metadata[TRANSACTIONS_FILTER] = bytes(codes)


def transactions_filter(block: common_pb2.Block) -> list[int]:
    """The validation codes of the block's envelopes (empty when the filter is not set)."""
    if len(block.metadata.metadata) <= TRANSACTIONS_FILTER:
        return []
    return list(block.metadata.metadata[TRANSACTIONS_FILTER])


# ------------------------------------------------------------------------------------------- policies


_GATE = re.compile(r"^\s*(OR|AND|OutOf)\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_PRINCIPAL = re.compile(r"^'([A-Za-z0-9.-]+)\.(member|admin|client|peer|orderer)'$")


def signature_policy_envelope(rule: str) -> policies_pb2.SignaturePolicyEnvelope:
    """Encode a flat ``OR(...)``/``AND(...)``/``OutOf(n, ...)`` rule of principals as ``policydsl.FromString``
    does: one MSPPrincipal (ROLE) per principal in order, ``SignedBy(i)`` rules under one ``NOutOf``."""
    gate = _GATE.match(rule)
    if not gate:
        raise ConfigBlockError(f"unsupported policy rule {rule!r}: expected OR(...), AND(...) or OutOf(n, ...)")
    args = [part.strip() for part in gate.group(2).split(",")]
    name = gate.group(1).lower()
    if name == "outof":
        try:
            n = int(args.pop(0))
        except ValueError as exc:
            raise ConfigBlockError(f"policy rule {rule!r}: OutOf needs a number first") from exc
    else:
        n = 1 if name == "or" else len(args)
    if not args or not 0 <= n <= len(args):
        raise ConfigBlockError(f"policy rule {rule!r}: invalid {n} out of {len(args)}")
    envelope = policies_pb2.SignaturePolicyEnvelope(version=0)
    for i, arg in enumerate(args):
        principal = _PRINCIPAL.match(arg)
        if not principal:
            raise ConfigBlockError(f"policy rule {rule!r}: cannot parse principal {arg!r}")
        role = msp_principal_pb2.MSPRole(msp_identifier=principal.group(1), role=_ROLES[principal.group(2)])
        envelope.identities.append(msp_principal_pb2.MSPPrincipal(
            principal_classification=msp_principal_pb2.MSPPrincipal.ROLE, principal=role.SerializeToString()))
        envelope.rule.n_out_of.rules.append(policies_pb2.SignaturePolicy(signed_by=i))
    envelope.rule.n_out_of.n = n
    return envelope


def _principal_roles(envelope: policies_pb2.SignaturePolicyEnvelope) -> list[tuple[str, int]]:
    roles = []
    for principal in envelope.identities:
        if principal.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
            raise ConfigBlockError("policy principal is not an MSP role")
        role = msp_principal_pb2.MSPRole.FromString(principal.principal)
        roles.append((role.msp_identifier, role.role))
    return roles


def _signature_policy(rule: str) -> configtx_pb2.ConfigPolicy:
    return configtx_pb2.ConfigPolicy(
        mod_policy=ADMINS,
        policy=policies_pb2.Policy(
            type=policies_pb2.Policy.SIGNATURE, value=signature_policy_envelope(rule).SerializeToString()),
    )


def _implicit_meta(rule: str) -> configtx_pb2.ConfigPolicy:
    kind, sub_policy = rule.split()
    meta = policies_pb2.ImplicitMetaPolicy(sub_policy=sub_policy, rule=policies_pb2.ImplicitMetaPolicy.Rule.Value(kind))
    return configtx_pb2.ConfigPolicy(
        mod_policy=ADMINS,
        policy=policies_pb2.Policy(type=policies_pb2.Policy.IMPLICIT_META, value=meta.SerializeToString()),
    )


_STANDARD_META = {READERS: "ANY Readers", WRITERS: "ANY Writers", ADMINS: "MAJORITY Admins"}


# --------------------------------------------------------------------------------------- config block


def _value(group: configtx_pb2.ConfigGroup, key: str, message: Message, mod_policy: str = ADMINS) -> None:
    group.values[key].CopyFrom(configtx_pb2.ConfigValue(value=message.SerializeToString(), mod_policy=mod_policy))


def _capabilities(name: str) -> configuration_pb2.Capabilities:
    caps = configuration_pb2.Capabilities()
    caps.capabilities[name].SetInParent()
    return caps


def _msp_config(org: OrgDefinition) -> msp_config_pb2.MSPConfig:
    if not org.ca_certs:
        raise ConfigBlockError(f"org {org.name}: no CA certificate")
    ca = org.ca_certs[0]
    # cryptogen's config.yaml names the CA certificate for each NodeOU; configbuilder loads it into the OU.
    node_ous = msp_config_pb2.FabricNodeOUs(enable=True, **{
        f"{ou}_ou_identifier": msp_config_pb2.FabricOUIdentifier(certificate=ca, organizational_unit_identifier=ou)
        for ou in NODE_OUS
    })
    fabric = msp_config_pb2.FabricMSPConfig(
        name=org.mspid,
        root_certs=list(org.ca_certs),
        tls_root_certs=list(org.tls_ca_certs),
        crypto_config=msp_config_pb2.FabricCryptoConfig(
            signature_hash_family="SHA2", identity_identifier_hash_function="SHA256"),
        fabric_node_ous=node_ous,
    )
    return msp_config_pb2.MSPConfig(type=FABRIC_MSP_TYPE, config=fabric.SerializeToString())


def _split_endpoint(endpoint: str, org: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigBlockError(f"org {org}: endpoint {endpoint!r} is not host:port")
    return host, int(port)


def org_group(org: OrgDefinition) -> configtx_pb2.ConfigGroup:
    """An org's config group as configtxgen builds it: its policies (:func:`org_policy_rules`), MSP and anchor
    peers (or, for the orderer org, its orderer endpoints)."""
    group = configtx_pb2.ConfigGroup(mod_policy=ADMINS)
    for name, rule in org_policy_rules(org.mspid, org.kind).items():
        group.policies[name].CopyFrom(_signature_policy(rule))
    _value(group, MSP, _msp_config(org))
    if org.kind == "orderer":
        if org.endpoints:
            _value(group, ENDPOINTS, configuration_pb2.OrdererAddresses(addresses=list(org.endpoints)))
    elif org.endpoints:
        anchors = [peer_config_pb2.AnchorPeer(host=h, port=p) for h, p in
                   (_split_endpoint(e, org.name) for e in org.endpoints)]
        _value(group, ANCHOR_PEERS, peer_config_pb2.AnchorPeers(anchor_peers=anchors))
    return group


def _orderer_group(channel: ChannelDefinition) -> configtx_pb2.ConfigGroup:
    group = configtx_pb2.ConfigGroup(mod_policy=ADMINS)
    for name, rule in {**_STANDARD_META, "BlockValidation": "ANY Writers"}.items():
        group.policies[name].CopyFrom(_implicit_meta(rule))
    _value(group, BATCH_SIZE, orderer_config_pb2.BatchSize(
        max_message_count=channel.batch_max_count, absolute_max_bytes=channel.batch_absolute_max_bytes,
        preferred_max_bytes=channel.batch_preferred_max_bytes))
    timeout_ns = round(channel.batch_timeout_s * 10**9)
    if timeout_ns <= 0:
        raise ConfigBlockError(
            f"channel {channel.name}: batch timeout must be positive, got {channel.batch_timeout_s}s")
    _value(group, BATCH_TIMEOUT, orderer_config_pb2.BatchTimeout(timeout=go_duration(timeout_ns)))
    _value(group, CHANNEL_RESTRICTIONS, orderer_config_pb2.ChannelRestrictions(max_count=0))
    _value(group, CAPABILITIES, _capabilities(ORDERER_CAPABILITY))
    consenters = [etcdraft_pb2.Consenter(host=h, port=p) for h, p in
                  (_split_endpoint(e, channel.orderer_org.name) for e in channel.orderer_org.endpoints)]
    metadata = etcdraft_pb2.ConfigMetadata(consenters=consenters).SerializeToString()
    _value(group, CONSENSUS_TYPE, orderer_config_pb2.ConsensusType(type=CONSENSUS, metadata=metadata))
    group.groups[channel.orderer_org.name].CopyFrom(org_group(channel.orderer_org))
    return group


def _application_group(channel: ChannelDefinition) -> configtx_pb2.ConfigGroup:
    group = configtx_pb2.ConfigGroup(mod_policy=ADMINS)
    policies = {**_STANDARD_META, "LifecycleEndorsement": "MAJORITY Endorsement", ENDORSEMENT: "MAJORITY Endorsement"}
    for name, rule in policies.items():
        group.policies[name].CopyFrom(_implicit_meta(rule))
    acls = peer_config_pb2.ACLs()
    acls.acls["peer/Propose"].policy_ref = "/Channel/Application/Readers"
    _value(group, ACLS, acls)
    _value(group, CAPABILITIES, _capabilities(APPLICATION_CAPABILITY))
    for org in channel.orgs:
        group.groups[org.name].CopyFrom(org_group(org))
    return group


def _check_definition(channel: ChannelDefinition) -> None:
    if channel.orderer_org.kind != "orderer":
        raise ConfigBlockError(f"channel {channel.name}: orderer org {channel.orderer_org.name} has kind "
                               f"{channel.orderer_org.kind!r}, not 'orderer'")
    names = [org.name for org in channel.orgs]
    if len(set(names)) != len(names):
        raise ConfigBlockError(f"channel {channel.name}: an org name appears twice: {names}")
    for org in channel.orgs:
        if org.kind not in ("member", "auditor"):
            raise ConfigBlockError(f"channel {channel.name}: application org {org.name} has kind {org.kind!r}")
    if not 0 < channel.batch_max_count < 2**32 or not 0 < channel.batch_absolute_max_bytes < 2**32:
        raise ConfigBlockError(f"channel {channel.name}: batch sizes must be positive 32-bit numbers")
    if not 0 < channel.batch_preferred_max_bytes <= channel.batch_absolute_max_bytes:
        raise ConfigBlockError(f"channel {channel.name}: the preferred batch size must be positive and at most the "
                               "absolute one")


def channel_group(channel: ChannelDefinition) -> configtx_pb2.ConfigGroup:
    """The channel's config tree as configtxgen builds it from our configtx (``NewChannelGroup``)."""
    _check_definition(channel)
    group = configtx_pb2.ConfigGroup(mod_policy=ADMINS)
    for name, rule in _STANDARD_META.items():
        group.policies[name].CopyFrom(_implicit_meta(rule))
    _value(group, HASHING_ALGORITHM, configuration_pb2.HashingAlgorithm(name="SHA256"))
    _value(group, BLOCK_DATA_HASHING_STRUCTURE, configuration_pb2.BlockDataHashingStructure(width=2**32 - 1))
    _value(group, CAPABILITIES, _capabilities(CHANNEL_CAPABILITY))
    group.groups[ORDERER].CopyFrom(_orderer_group(channel))
    group.groups[APPLICATION].CopyFrom(_application_group(channel))
    return group


def config_block(channel: ChannelDefinition, sign: Callable[[bytes], bytes], creator: bytes) -> common_pb2.Block:
    """Block 0 of ``channel``: one CONFIG envelope (signed by ``creator``) and the orderer's block signature."""
    nonce = os.urandom(NONCE_SIZE)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.CONFIG, version=CONFIG_MSG_VERSION, channel_id=channel.name,
        tx_id=transaction_id(nonce, creator), epoch=0)
    channel_header.timestamp.FromSeconds(int(time.time()))
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
        ),
        data=configtx_pb2.ConfigEnvelope(
            config=configtx_pb2.Config(sequence=0, channel_group=channel_group(channel))).SerializeToString(),
    )
    payload_bytes = payload.SerializeToString()
    envelope = common_pb2.Envelope(payload=payload_bytes, signature=sign(payload_bytes))
    block = new_block(0, b"", [envelope.SerializeToString()])
    sign_block(block, sign, creator, last_config=0)
    return block


def config_transaction(channel: str, envelope: configtx_pb2.ConfigEnvelope, sign: Callable[[bytes], bytes],
                       creator: bytes) -> bytes:
    """The CONFIG envelope an orderer makes of an authorised config update (``CreateSignedEnvelope`` with message
    version 0 and epoch 0: a channel header without a transaction ID, signed by the orderer)."""
    channel_header = common_pb2.ChannelHeader(type=common_pb2.HeaderType.CONFIG, version=0, channel_id=channel, epoch=0)
    channel_header.timestamp.FromSeconds(int(time.time()))
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(creator=creator, nonce=os.urandom(NONCE_SIZE))
            .SerializeToString()),
        data=envelope.SerializeToString(),
    ).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=sign(payload)).SerializeToString()


def is_config_block(block_envelopes: Sequence[bytes]) -> bool:
    """Whether envelopes of a block make a config block: one envelope, of type CONFIG."""
    if len(block_envelopes) != 1:
        return False
    try:
        payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(block_envelopes[0]).payload)
        return common_pb2.ChannelHeader.FromString(payload.header.channel_header).type == common_pb2.HeaderType.CONFIG
    except DecodeError:
        return False


# ------------------------------------------------------------------------------------ reading it back


def config_of_block(block: common_pb2.Block) -> tuple[str, configtx_pb2.Config]:
    """The channel ID and ``Config`` of a config block, or :class:`ConfigBlockError` naming what is wrong."""
    if len(block.data.data) != 1:
        raise ConfigBlockError(
            f"block {block.header.number}: a config block has 1 envelope, not {len(block.data.data)}")
    try:
        envelope = common_pb2.Envelope.FromString(block.data.data[0])
        payload = common_pb2.Payload.FromString(envelope.payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        if header.type != common_pb2.HeaderType.CONFIG:
            raise ConfigBlockError(f"block {block.header.number}: envelope type {header.type} is not CONFIG")
        config = configtx_pb2.ConfigEnvelope.FromString(payload.data).config
    except DecodeError as exc:
        raise ConfigBlockError(f"block {block.header.number}: cannot parse the config envelope: {exc}") from exc
    return header.channel_id, config


def _parse(message_type: type[Message], group: configtx_pb2.ConfigGroup, key: str, where: str) -> Any:
    if key not in group.values:
        raise ConfigBlockError(f"{where}: no {key} value")
    try:
        return message_type.FromString(group.values[key].value)
    except DecodeError as exc:
        raise ConfigBlockError(f"{where}: cannot parse {key}: {exc}") from exc


def _read_org(name: str, group: configtx_pb2.ConfigGroup, orderer: bool) -> OrgDefinition:
    where = f"org {name}"
    msp = _parse(msp_config_pb2.MSPConfig, group, MSP, where)
    if msp.type != FABRIC_MSP_TYPE:
        raise ConfigBlockError(f"{where}: MSP type {msp.type} is not FABRIC")
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    if orderer:
        kind = "orderer"
        endpoints = tuple(_parse(configuration_pb2.OrdererAddresses, group, ENDPOINTS, where).addresses) \
            if ENDPOINTS in group.values else ()
    else:
        if WRITERS not in group.policies:
            raise ConfigBlockError(f"{where}: no Writers policy")
        writers = policies_pb2.SignaturePolicyEnvelope.FromString(group.policies[WRITERS].policy.value)
        roles = {role for _, role in _principal_roles(writers)}
        kind = "auditor" if roles == {msp_principal_pb2.MSPRole.ADMIN} else "member"
        anchors = _parse(peer_config_pb2.AnchorPeers, group, ANCHOR_PEERS, where).anchor_peers \
            if ANCHOR_PEERS in group.values else ()
        endpoints = tuple(f"{a.host}:{a.port}" for a in anchors)
    return OrgDefinition(
        name=name, mspid=fabric.name, kind=kind, ca_certs=tuple(fabric.root_certs),
        tls_ca_certs=tuple(fabric.tls_root_certs), endpoints=endpoints)


def canonical_channel(channel: ChannelDefinition) -> ChannelDefinition:
    """``channel`` with orgs in the order :func:`channel_from_config_block` returns them
    (members, then auditors, each by name) and no chaincode: what a config block can hold."""
    orgs = tuple(sorted(channel.orgs, key=lambda o: (o.kind != "member", o.name)))
    return dataclasses.replace(channel, orgs=orgs, chaincode=None)


def channel_from_config_block(block: common_pb2.Block) -> ChannelDefinition:
    """The channel definition a config block holds (``chaincode=None``; orgs in canonical order)."""
    channel_id, config = config_of_block(block)
    root = config.channel_group
    for key in (APPLICATION, ORDERER):
        if key not in root.groups:
            raise ConfigBlockError(f"channel {channel_id}: no {key} group")
    application, orderer = root.groups[APPLICATION], root.groups[ORDERER]
    if len(orderer.groups) != 1:
        raise ConfigBlockError(f"channel {channel_id}: expected one orderer org, found {sorted(orderer.groups)}")
    ((orderer_name, orderer_org),) = orderer.groups.items()
    batch = _parse(orderer_config_pb2.BatchSize, orderer, BATCH_SIZE, f"channel {channel_id} orderer")
    timeout = _parse(orderer_config_pb2.BatchTimeout, orderer, BATCH_TIMEOUT, f"channel {channel_id} orderer")
    try:
        timeout_ns = parse_go_duration(timeout.timeout)
    except ValueError as exc:
        raise ConfigBlockError(f"channel {channel_id}: {exc}") from exc
    orgs = [_read_org(name, group, orderer=False) for name, group in application.groups.items()]
    return canonical_channel(ChannelDefinition(
        name=channel_id,
        orgs=tuple(orgs),
        orderer_org=_read_org(orderer_name, orderer_org, orderer=True),
        batch_max_count=batch.max_message_count,
        batch_absolute_max_bytes=batch.absolute_max_bytes,
        batch_preferred_max_bytes=batch.preferred_max_bytes,
        batch_timeout_s=timeout_ns / 10**9,
    ))
