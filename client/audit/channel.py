"""A channel's rules as its ledger defines them, for replaying its blocks: the config block's MSPs and
policies, and Fabric's chaincode lifecycle (``_lifecycle`` namespace) for the endorsement policies, read as
the embedded engine reads them (:mod:`swarmfuse.network.protocol.lifecycle`).

- Policies are read from the config tree by path (``/Channel/Orderer/BlockValidation``): signature policies
  as they are, implicit meta policies (ANY, ALL, MAJORITY of a sub-policy) composed over the sub-groups.
- ``_lifecycle`` is endorsed by ``/Channel/Application/LifecycleEndorsement``; a write to an org's implicit
  collection ``_implicit_org_<MSP ID>`` by that org's ``Endorsement`` policy; a chaincode by the
  ``ValidationInfo`` of its committed definition; a namespace without one is not defined.
- A config block after the first is the channel's config only when its update was authorised by the config
  in force before it, as Fabric's ``common/configtx`` validator decides (:func:`config_update_problem`): the
  next sequence, the update's read set current, every changed element at its next version with its
  ``mod_policy`` (in the config in force) satisfied by the update's signatures, and the update applied to
  the config in force giving exactly the block's config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fabric_protos.common import common_pb2, configtx_pb2
from google.protobuf.message import DecodeError

from swarmfuse.network.configtx import majority_endorsement_policy
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.configupdate import (
    ConfigUpdateRefused,
    map_config,
    mod_policy_path,
    rebuild,
    update_signers,
)
from swarmfuse.network.protocol.lifecycle import (
    LIFECYCLE_ENDORSEMENT,
    ConfigError,
    LifecycleRules,
    config_policy,
)
from swarmfuse.network.protocol.model import ChannelDefinition, StateReader
from swarmfuse.network.protocol.msp import ChannelMSPs, Principal
from swarmfuse.network.protocol.policy import Policy, parse

BLOCK_VALIDATION = "/Channel/Orderer/BlockValidation"
CHANNEL_WRITERS = "/Channel/Writers"


@dataclass(frozen=True)
class ChannelConfig:
    """The channel as config block ``block`` defines it: orgs, MSPs and the policies the replay uses."""

    block: int
    definition: ChannelDefinition
    config: configtx_pb2.Config
    msps: ChannelMSPs
    block_validation: Policy
    lifecycle_endorsement: Policy
    writers: Policy

    @classmethod
    def from_block(cls, block: common_pb2.Block, clock: Callable[[], datetime]) -> ChannelConfig:
        """Read a config block; :class:`ConfigError` (or ``blockfmt.ConfigBlockError``) naming what is wrong.
        ``clock`` gives the time certificates are checked at (the time of the block being replayed)."""
        definition = blockfmt.channel_from_config_block(block)
        _, config = blockfmt.config_of_block(block)
        try:
            msps = ChannelMSPs((*definition.orgs, definition.orderer_org), clock=clock)
        except ValueError as exc:
            raise ConfigError(f"config block {block.header.number}: {exc}") from exc
        return cls(block.header.number, definition, config, msps, config_policy(config, BLOCK_VALIDATION),
                   config_policy(config, LIFECYCLE_ENDORSEMENT), config_policy(config, CHANNEL_WRITERS))

    def is_writer(self, principal: Principal) -> bool:
        """Whether ``principal`` satisfies ``/Channel/Writers`` of this config (what Fabric's orderer asks of
        a transaction's creator)."""
        return self.writers.satisfied_by([principal])

    def rules(self, state: StateReader) -> LifecycleRules:
        """The namespaces' endorsement policies under this config over the replayed ``state``."""
        return LifecycleRules(self.config, self.definition.orgs, state)

    def task_policy(self) -> Policy:
        """The task's chaincode endorsement rule: a majority of the member orgs' peers (``network/configtx.py``)."""
        return parse(majority_endorsement_policy([org.mspid for org in self.definition.orgs if org.kind == "member"]))

    def describe(self) -> str:
        members = ", ".join(f"{org.mspid} ({org.kind})" for org in self.definition.orgs)
        return (f"config sequence {self.config.sequence}: application orgs {members}; orderer org "
                f"{self.definition.orderer_org.mspid}")


# --- config updates (Fabric's common/configtx, :mod:`swarmfuse.network.protocol.configupdate`) ----------


def config_update_problem(config: ChannelConfig, block: common_pb2.Block) -> tuple[str | None, str]:
    """Whether config block ``block`` is an authorised update of ``config`` (the config in force before it), as
    Fabric's configtx validator decides: ``(None, what changed and who signed)`` when it is, ``(why not, "")``
    otherwise."""
    number = block.header.number
    try:
        payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(block.data.data[0]).payload)
        envelope = configtx_pb2.ConfigEnvelope.FromString(payload.data)
        if not envelope.HasField("last_update"):
            return f"config block {number} carries no config update (last_update)", ""
        update_payload = common_pb2.Payload.FromString(envelope.last_update.payload)
        header = common_pb2.ChannelHeader.FromString(update_payload.header.channel_header)
        update_envelope = configtx_pb2.ConfigUpdateEnvelope.FromString(update_payload.data)
        update = configtx_pb2.ConfigUpdate.FromString(update_envelope.config_update)
    except (DecodeError, IndexError) as exc:
        return f"config block {number}: its config update cannot be read: {exc}", ""
    if envelope.config.sequence != config.config.sequence + 1:
        return (f"config sequence {envelope.config.sequence} does not follow the config in force (block "
                f"{config.block}, sequence {config.config.sequence})"), ""
    if header.type != common_pb2.CONFIG_UPDATE:
        return f"the last update's envelope has header type {header.type}, not CONFIG_UPDATE", ""
    channel = config.definition.name
    if update.channel_id != channel or header.channel_id != channel:
        return f"the config update is for channel {update.channel_id!r}, not {channel!r}", ""
    try:
        current = map_config(config.config.channel_group)
        read_set, write_set = map_config(update.read_set), map_config(update.write_set)
    except ConfigUpdateRefused as exc:
        return f"the config update cannot be read: {exc}", ""
    for key, element in read_set.items():
        existing = current.get(key)
        if existing is None:
            return f"the update's read set names {element.name}, which the config in force does not hold", ""
        if existing.item.version != element.item.version:
            return (f"the update read {element.name} at version {element.item.version}; it is at version "
                    f"{existing.item.version}"), ""
    delta = {key: element for key, element in write_set.items()
             if key not in read_set or read_set[key].item.version != element.item.version}
    if not delta:
        return "the config update changes nothing (empty delta set)", ""
    signers, ignored = update_signers(config.msps, update_envelope)
    who = ", ".join(f"{p.mspid} {p.role}" for p in signers) or "no valid signer"
    changed: list[str] = []
    for key, element in sorted(delta.items()):
        if not element.item.mod_policy:
            return f"{element.name}: the update sets no mod_policy", ""
        existing = current.get(key)
        if existing is None:
            if element.item.version != 0:
                return f"{element.name} is new but the update sets it at version {element.item.version}", ""
            changed.append(f"{element.name} added")
            continue
        if element.item.version != existing.item.version + 1:
            return (f"{element.name}: the update sets version {element.item.version}, the config in force has "
                    f"version {existing.item.version}"), ""
        try:
            policy = config_policy(config.config, mod_policy_path(existing))
        except ConfigError as exc:
            return f"{element.name}: its mod_policy {existing.item.mod_policy!r} cannot be resolved: {exc}", ""
        if not policy.satisfied_by(signers):
            return (f"{element.name} changed without its mod_policy {existing.item.mod_policy!r} ({policy}) being "
                    f"satisfied: signed by {who}" + (f"; ignored: {'; '.join(ignored)}" if ignored else "")), ""
        changed.append(f"{element.name} ({existing.item.mod_policy})")
    try:
        result = rebuild({**current, **delta})
    except ConfigUpdateRefused as exc:
        return f"the config update does not apply to the config in force: {exc}", ""
    if result != envelope.config.channel_group:
        return "the block's config is not what its config update makes of the config in force", ""
    return None, f"authorised update of {', '.join(changed)}, signed by {who}"
