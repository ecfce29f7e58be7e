"""Fabric's chaincode lifecycle (the ``_lifecycle`` namespace) as the engine and ``audit verify`` share it: a
chaincode is defined on a channel by a ``CommitChaincodeDefinition`` transaction in a block, and the channel's
rules for validating transactions come from the config tree and that committed definition.

Facts from Fabric v3.1.5 (``core/chaincode/lifecycle``: ``lifecycle.go``, ``serializer.go``, ``scc.go``,
``endorsement_info.go``, ``deployedcc_infoprovider.go``; ``core/scc/scc.go``):

- a definition is serialized into public state as ``namespaces/metadata/<name>`` =
  ``StateMetadata{datatype: "ChaincodeDefinition", fields: [Sequence, EndorsementInfo, ValidationInfo,
  Collections]}`` and one ``namespaces/fields/<name>/<field>`` = ``StateData`` per field (``Int64`` for the
  sequence, ``Bytes`` of the marshalled ``ChaincodeEndorsementInfo``, ``ChaincodeValidationInfo``,
  ``CollectionConfigPackage``; empty bytes for no collections);
- the commit invocation is ``_lifecycle`` with args ``["CommitChaincodeDefinition", CommitChaincodeDefinitionArgs]``;
  it reads the current ``Sequence`` field and the metadata key (and, in namespace ``lscc``, the chaincode's
  name: no legacy chaincode may have it), defaults the plugins to ``escc``/``vscc``, and returns an empty
  ``CommitChaincodeDefinitionResult``; system chaincodes report version ``syscc``. (Checked against the commit
  transaction of ``swarmfuse task create`` on Fabric v3.1.5: the same ``_lifecycle`` writes, byte for byte.)
- ``_lifecycle`` writes are endorsed by ``/Channel/Application/LifecycleEndorsement``, writes to an org's
  implicit collection ``_implicit_org_<MSP ID>`` by ``/Channel/Application/<org>/Endorsement``, a chaincode's
  by its committed ``ValidationInfo`` (an ``ApplicationPolicy``: a signature policy, or a reference to a
  channel config policy). A namespace without a committed definition is not defined (INVALID_CHAINCODE).

On Fabric every org first approves the definition in its implicit collection (private data, of which a block
holds hashes) and the commit reads those approvals' hashes; the embedded engine has no private data, so its
commit transaction carries no approvals: it is endorsed by every org's peer of the channel instead, as the
commit of ``swarmfuse task create`` on Fabric is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from fabric_protos.common import common_pb2, configtx_pb2, policies_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_pb2, collection_pb2, policy_pb2, proposal_pb2, proposal_response_pb2
from fabric_protos.peer.lifecycle import chaincode_definition_pb2, db_pb2, lifecycle_pb2
from google.protobuf.message import DecodeError

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.identity import transaction_id
from swarmfuse.network.protocol.model import ChaincodeDefinition, OrgDefinition, StateReader, Version
from swarmfuse.network.protocol.policy import NOutOf, Policy, PolicyError, parse
from swarmfuse.network.protocol.txassembly import assemble_transaction, endorse_response

LIFECYCLE = "_lifecycle"
LSCC = "lscc"
SYSCC_VERSION = "syscc"
COMMIT = "CommitChaincodeDefinition"
CHAINCODE_DEFINITION = "ChaincodeDefinition"
DEFINITION_FIELDS = ("Sequence", "EndorsementInfo", "ValidationInfo", "Collections")
ENDORSEMENT_PLUGIN = "escc"
VALIDATION_PLUGIN = "vscc"
IMPLICIT_COLLECTION = "_implicit_org_"
LIFECYCLE_ENDORSEMENT = "/Channel/Application/LifecycleEndorsement"

_THRESHOLDS: dict[int, Callable[[int], int]] = {
    policies_pb2.ImplicitMetaPolicy.ANY: lambda n: 1,
    policies_pb2.ImplicitMetaPolicy.ALL: lambda n: n,
    policies_pb2.ImplicitMetaPolicy.MAJORITY: lambda n: n // 2 + 1,
}


class ConfigError(SwarmfuseError, ValueError):
    """The channel config (or a chaincode definition) does not hold what is asked of it."""


def metadata_key(name: str) -> str:
    return f"namespaces/metadata/{name}"


def field_key(name: str, field: str) -> str:
    return f"namespaces/fields/{name}/{field}"


# --- policies of the config tree ----------------------------------------------------------------------


def config_policy(config: configtx_pb2.Config, path: str) -> Policy:
    """The policy at ``path`` (``/Channel/<group>/.../<policy>``) of a channel config, as one signature policy:
    signature policies as they are, implicit meta policies (ANY, ALL, MAJORITY of a sub-policy) composed over
    the sub-groups that define the sub-policy."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "Channel":
        raise ConfigError(f"policy path {path!r} does not start with /Channel/")
    group = config.channel_group
    for name in parts[1:-1]:
        if name not in group.groups:
            raise ConfigError(f"policy {path}: the config has no group {name!r}")
        group = group.groups[name]
    return _group_policy(group, parts[-1], path)


def _group_policy(group: configtx_pb2.ConfigGroup, name: str, where: str) -> Policy:
    if name not in group.policies:
        raise ConfigError(f"policy {where}: not defined")
    policy = group.policies[name].policy
    try:
        if policy.type == policies_pb2.Policy.SIGNATURE:
            return Policy.from_envelope(policy.value)
        if policy.type == policies_pb2.Policy.IMPLICIT_META:
            meta = policies_pb2.ImplicitMetaPolicy.FromString(policy.value)
            subs = [_group_policy(sub, meta.sub_policy, f"{where}/{sub_name}")
                    for sub_name, sub in sorted(group.groups.items()) if meta.sub_policy in sub.policies]
            return Policy(NOutOf(_THRESHOLDS[meta.rule](len(subs)), tuple(sub.rule for sub in subs)))
    except (DecodeError, PolicyError, KeyError) as exc:
        raise ConfigError(f"policy {where}: cannot read it: {exc}") from exc
    raise ConfigError(f"policy {where}: type {policy.type} is neither a signature nor an implicit meta policy")


# --- the committed definition -------------------------------------------------------------------------


def definition_state(definition: ChaincodeDefinition) -> dict[str, bytes]:
    """The public keys and values Fabric's ``CommitChaincodeDefinition`` writes for a new definition (no
    collections, no init required, default plugins), by key."""
    application = policy_pb2.ApplicationPolicy(signature_policy=parse(definition.endorsement_policy).to_envelope())
    endorsement = chaincode_definition_pb2.ChaincodeEndorsementInfo(version=definition.version,
                                                                    endorsement_plugin=ENDORSEMENT_PLUGIN)
    validation = chaincode_definition_pb2.ChaincodeValidationInfo(
        validation_plugin=VALIDATION_PLUGIN, validation_parameter=application.SerializeToString())
    fields = {
        "Sequence": db_pb2.StateData(Int64=definition.sequence),
        "EndorsementInfo": db_pb2.StateData(Bytes=endorsement.SerializeToString()),
        "ValidationInfo": db_pb2.StateData(Bytes=validation.SerializeToString()),
        "Collections": db_pb2.StateData(Bytes=collection_pb2.CollectionConfigPackage().SerializeToString()),
    }
    state = {field_key(definition.name, name): data.SerializeToString() for name, data in fields.items()}
    state[metadata_key(definition.name)] = db_pb2.StateMetadata(datatype=CHAINCODE_DEFINITION,
                                                                fields=list(DEFINITION_FIELDS)).SerializeToString()
    return state


@dataclass(frozen=True)
class CommittedDefinition:
    """A chaincode definition committed through ``_lifecycle``: sequence, version, endorsement policy, and the
    version (block, tx) of the write that set its policy."""

    name: str
    sequence: int
    version: str
    policy: Policy
    written_at: Version


def committed_definition(state: StateReader, name: str, config: configtx_pb2.Config) -> CommittedDefinition | None:
    """The committed definition of chaincode ``name`` in the ``_lifecycle`` namespace of ``state``, ``None`` when
    there is none; :class:`ConfigError` when it is there but unreadable."""
    metadata = state.get_state(LIFECYCLE, metadata_key(name))
    if metadata is None:
        return None
    try:
        if db_pb2.StateMetadata.FromString(metadata.value).datatype != CHAINCODE_DEFINITION:
            return None
        sequence, endorsement, validation = (state.get_state(LIFECYCLE, field_key(name, f))
                                             for f in ("Sequence", "EndorsementInfo", "ValidationInfo"))
        if sequence is None or validation is None:
            raise ConfigError(f"chaincode {name}: its definition lacks a Sequence or ValidationInfo")
        info = chaincode_definition_pb2.ChaincodeValidationInfo.FromString(
            db_pb2.StateData.FromString(validation.value).Bytes)
        application = policy_pb2.ApplicationPolicy.FromString(info.validation_parameter)
        kind = application.WhichOneof("Type")
        if kind == "signature_policy":
            policy = Policy.from_envelope(application.signature_policy)
        elif kind == "channel_config_policy_reference":
            policy = config_policy(config, application.channel_config_policy_reference)
        else:
            raise ConfigError(f"chaincode {name}: its validation parameter names no policy")
        version = "" if endorsement is None else chaincode_definition_pb2.ChaincodeEndorsementInfo.FromString(
            db_pb2.StateData.FromString(endorsement.value).Bytes).version
        return CommittedDefinition(name, db_pb2.StateData.FromString(sequence.value).Int64, version, policy,
                                   validation.version)
    except (DecodeError, PolicyError) as exc:
        raise ConfigError(f"chaincode {name}: its committed definition cannot be read: {exc}") from exc


class LifecycleRules:
    """The endorsement policies of a channel's namespaces as its ledger defines them (Fabric's lifecycle), for
    :class:`~swarmfuse.network.protocol.validator.BlockValidator`: ``_lifecycle`` by LifecycleEndorsement, an
    org's implicit collection by the org's Endorsement, a chaincode by its committed definition (read from
    ``state`` at each call, so a definition committed in a block applies to the blocks after it)."""

    def __init__(self, config: configtx_pb2.Config, orgs: Sequence[OrgDefinition], state: StateReader) -> None:
        self._config = config
        self._orgs = {org.mspid: org.name for org in orgs}
        self._state = state
        self.lifecycle_endorsement = config_policy(config, LIFECYCLE_ENDORSEMENT)
        self._cached: dict[str, tuple[tuple[Version | None, ...], Policy | None]] = {}

    def policy(self, namespace: str) -> Policy | None:
        if namespace == LIFECYCLE:
            return self.lifecycle_endorsement
        # The definition is parsed again only when one of the keys it is read from changed (their versions).
        keys = (metadata_key(namespace), field_key(namespace, "Sequence"), field_key(namespace, "ValidationInfo"))
        versions = tuple(v.version if (v := self._state.get_state(LIFECYCLE, key)) else None for key in keys)
        cached = self._cached.get(namespace)
        if cached is not None and cached[0] == versions:
            return cached[1]
        defined = committed_definition(self._state, namespace, self._config)
        policy = defined.policy if defined is not None else None
        self._cached[namespace] = (versions, policy)
        return policy

    def collection_policy(self, namespace: str, collection: str) -> Policy | None:
        if namespace == LIFECYCLE and collection.startswith(IMPLICIT_COLLECTION):
            return self.org_endorsement(collection.removeprefix(IMPLICIT_COLLECTION))
        return None

    def org_endorsement(self, mspid: str) -> Policy | None:
        """The ``Endorsement`` policy of the application org with this MSP ID (``None``: no such org)."""
        name = self._orgs.get(mspid)
        return None if name is None else config_policy(self._config, f"/Channel/Application/{name}/Endorsement")


# --- the commit transaction ---------------------------------------------------------------------------


class SigningIdentity(Protocol):
    """A serialized identity and its signer (the message in, a DER ECDSA signature over its SHA-256 out)."""

    @property
    def serialized(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


def commit_transaction(channel: str, definition: ChaincodeDefinition, creator: SigningIdentity,
                       endorsers: Sequence[SigningIdentity], previous: CommittedDefinition | None = None) -> bytes:
    """The signed envelope of ``_lifecycle`` ``CommitChaincodeDefinition`` for ``definition``: submitted by
    ``creator`` (an org admin), endorsed by ``endorsers`` (the orgs' peers), with the read-write set Fabric's
    lifecycle produces for it (less the approvals' hashes). ``previous`` is the definition in force, whose
    sequence ``definition`` must follow (``None``: the chaincode is not defined yet and ``definition`` is sequence
    1); its keys are read at the version it was written at, so a commit racing another fails MVCC."""
    expected = 1 if previous is None else previous.sequence + 1
    if definition.sequence != expected:
        raise ConfigError(f"chaincode {definition.name}: the next definition is sequence {expected}, not "
                          f"{definition.sequence}")
    validation = policy_pb2.ApplicationPolicy(signature_policy=parse(definition.endorsement_policy).to_envelope())
    arguments = lifecycle_pb2.CommitChaincodeDefinitionArgs(
        sequence=definition.sequence, name=definition.name, version=definition.version,
        validation_parameter=validation.SerializeToString())
    chaincode_id = chaincode_pb2.ChaincodeID(name=LIFECYCLE)
    nonce = os.urandom(24)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel, tx_id=transaction_id(nonce, creator.serialized),
        extension=proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id).SerializeToString())
    channel_header.timestamp.GetCurrentTime()
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator.serialized, nonce=nonce).SerializeToString())
    spec = chaincode_pb2.ChaincodeInvocationSpec(chaincode_spec=chaincode_pb2.ChaincodeSpec(
        chaincode_id=chaincode_id, input=chaincode_pb2.ChaincodeInput(args=[COMMIT.encode(), arguments.SerializeToString()])))
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(),
        payload=proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString()).SerializeToString())
    written = definition_state(definition)
    reads = sorted((metadata_key(definition.name), field_key(definition.name, "Sequence")))
    version = None if previous is None else kv_rwset_pb2.Version(block_num=previous.written_at.block,
                                                                 tx_num=previous.written_at.tx)
    kv = kv_rwset_pb2.KVRWSet(reads=[kv_rwset_pb2.KVRead(key=key, version=version) for key in reads],
                              writes=[kv_rwset_pb2.KVWrite(key=key, value=written[key]) for key in sorted(written)])
    legacy = kv_rwset_pb2.KVRWSet(reads=[kv_rwset_pb2.KVRead(key=definition.name)])  # no lscc chaincode of the name
    results = rwset_pb2.TxReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV, ns_rwset=[
        rwset_pb2.NsReadWriteSet(namespace=LIFECYCLE, rwset=kv.SerializeToString()),
        rwset_pb2.NsReadWriteSet(namespace=LSCC, rwset=legacy.SerializeToString())]).SerializeToString()
    response = proposal_response_pb2.Response(
        status=200, payload=lifecycle_pb2.CommitChaincodeDefinitionResult().SerializeToString())
    responses = [endorse_response(proposal, response, results, b"",
                                  chaincode_pb2.ChaincodeID(name=LIFECYCLE, version=SYSCC_VERSION), peer.sign,
                                  peer.serialized) for peer in endorsers]
    payload = assemble_transaction(proposal, responses).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=creator.sign(payload)).SerializeToString()
