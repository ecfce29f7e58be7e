"""Channel configuration updates as Fabric's ``common/configtx`` validator judges them (``configmap.go``,
``update.go``, ``validator.go``), shared by the embedded engine's orderer and by ``audit verify``.

A ``ConfigUpdate`` names a read set (elements at the versions it read) and a write set; the elements of the
write set whose version differs from the read set's are its delta. Each element of the delta must be new at
version 0, or at the next version of the element in force with that element's ``mod_policy`` (resolved in the
config in force, relative to the group holding it) satisfied by the update's signatures (each a
``ConfigSignature`` over its signature header ‖ the update bytes). The new config is the config in force with
the delta laid over it, at the next sequence. Refusals carry Fabric's wording.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fabric_protos.common import common_pb2, configtx_pb2, policies_pb2
from google.protobuf.message import DecodeError

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.msp import ChannelMSPs, IdentityRejected, Principal
from swarmfuse.network.protocol.policy import Policy, PolicyError

GROUP, VALUE, POLICY = "[Group]  ", "[Value]  ", "[Policy] "
ROOT = "Channel"
_CONFIG_ID = re.compile(r"[a-zA-Z0-9.-]+")
_MAX_ID = 249
Item = configtx_pb2.ConfigGroup | configtx_pb2.ConfigValue | configtx_pb2.ConfigPolicy


class ConfigUpdateRefused(SwarmfuseError, ValueError):
    """A config update the config in force does not authorise, or that cannot be read (Fabric's message)."""


@dataclass(frozen=True)
class Element:
    """One element of a config tree: its kind prefix, the groups leading to it, its key and the element."""

    prefix: str
    path: tuple[str, ...]
    key: str
    item: Item

    @property
    def name(self) -> str:
        return "/" + "/".join((*self.path, self.key))

    @property
    def map_key(self) -> str:
        """Fabric's config map key: ``[Group]  /Channel/Application``, ``[Policy] /Channel/Admins``..."""
        return self.prefix + self.name


def _check_config_id(key: str) -> str | None:
    """Fabric's ``validateConfigID``: why ``key`` may not name an element, ``None`` when it may."""
    if not key:
        return "config ID illegal, cannot be empty"
    if len(key) > _MAX_ID:
        return f"config ID illegal, cannot be longer than {_MAX_ID}"
    if key in (".", ".."):
        return f"name '{key}' for config ID is not allowed"
    if not _CONFIG_ID.fullmatch(key):
        return f"config ID '{key}' contains illegal characters"
    return None


def map_config(group: configtx_pb2.ConfigGroup, root: str = ROOT) -> dict[str, Element]:
    """Every element of a config tree by its config map key; :class:`ConfigUpdateRefused` for an illegal key."""
    elements: dict[str, Element] = {}

    def add(element: Element) -> None:
        problem = _check_config_id(element.key)
        if problem is not None:
            raise ConfigUpdateRefused(f"illegal characters in key: {element.prefix}: {problem}")
        elements[element.map_key] = element

    def walk(path: tuple[str, ...], key: str, node: configtx_pb2.ConfigGroup) -> None:
        add(Element(GROUP, path, key, node))
        inner = (*path, key)
        for name, child in node.groups.items():
            walk(inner, name, child)
        for prefix, items in ((VALUE, node.values), (POLICY, node.policies)):
            for name, item in items.items():
                add(Element(prefix, inner, name, item))

    walk((), root, group)
    return elements


def rebuild(elements: dict[str, Element], path: str = "/" + ROOT) -> configtx_pb2.ConfigGroup:
    """Fabric's ``recurseConfigMap``: the group at ``path`` with the children its own entry lists, each taken
    from ``elements``; :class:`ConfigUpdateRefused` when one is missing."""
    entry = elements.get(GROUP + path)
    if entry is None or not isinstance(entry.item, configtx_pb2.ConfigGroup):
        raise ConfigUpdateRefused(f"missing group at path: {GROUP}{path}")
    group = configtx_pb2.ConfigGroup(version=entry.item.version, mod_policy=entry.item.mod_policy)
    for key in entry.item.groups:
        group.groups[key].CopyFrom(rebuild(elements, f"{path}/{key}"))
    for prefix, source, target in ((VALUE, entry.item.values, group.values),
                                   (POLICY, entry.item.policies, group.policies)):
        for key in source:
            child = elements.get(f"{prefix}{path}/{key}")
            if child is None:
                raise ConfigUpdateRefused(f"missing {prefix.strip(' []').lower()} at path: {prefix}{path}/{key}")
            target[key].CopyFrom(child.item)
    return group


def mod_policy_path(element: Element) -> str:
    """Fabric's ``policyForItem``: the absolute path of the element's ``mod_policy``, relative to the group
    holding it (a group's own ``mod_policy`` relative to the group itself), absolute when it starts with ``/``
    or the element is the root group."""
    name = element.item.mod_policy
    if name.startswith("/"):
        return name
    if not element.path:
        return f"/{ROOT}/{name}"
    groups = element.path + ((element.key,) if element.prefix == GROUP else ())
    return "/" + "/".join((*groups, name))


def policy_failure(config: configtx_pb2.Config, path: str, signers: Sequence[Principal]) -> str | None:
    """Why ``signers`` do not satisfy the config policy at ``path`` (Fabric's ``EvaluateSignedData`` message), or
    ``None`` when they do. An implicit meta policy counts each sub-group's sub-policy, evaluated alone (a
    sub-group without it is never satisfied); a signature policy is evaluated as ``cauthdsl`` does.
    :class:`ConfigUpdateRefused` when there is no such policy."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != ROOT:
        raise ConfigUpdateRefused(f"unexpected missing policy {path}")
    group = config.channel_group
    for name in parts[1:-1]:
        if name not in group.groups:
            raise ConfigUpdateRefused(f"unexpected missing policy {path}")
        group = group.groups[name]
    if parts[-1] not in group.policies:
        raise ConfigUpdateRefused(f"unexpected missing policy {path}")
    return _group_failure(group, parts[-1], signers)


def _group_failure(group: configtx_pb2.ConfigGroup, name: str, signers: Sequence[Principal]) -> str | None:
    if name not in group.policies:
        return "no such policy"
    policy = group.policies[name].policy
    try:
        if policy.type == policies_pb2.Policy.SIGNATURE:
            satisfied = Policy.from_envelope(policy.value).satisfied_by(signers)
            return None if satisfied else "signature set did not satisfy policy"
        if policy.type == policies_pb2.Policy.IMPLICIT_META:
            meta = policies_pb2.ImplicitMetaPolicy.FromString(policy.value)
            subs = list(group.groups.values())
            threshold = {policies_pb2.ImplicitMetaPolicy.ANY: 1, policies_pb2.ImplicitMetaPolicy.ALL: len(subs),
                         policies_pb2.ImplicitMetaPolicy.MAJORITY: len(subs) // 2 + 1}.get(meta.rule, 0)
            threshold = threshold if subs else 0
            met = sum(1 for sub in subs if _group_failure(sub, meta.sub_policy, signers) is None)
            if met >= threshold:
                return None
            return (f"implicit policy evaluation failed - {met} sub-policies were satisfied, but this policy requires "
                    f"{threshold} of the '{meta.sub_policy}' sub-policies to be satisfied")
    except (DecodeError, PolicyError) as exc:
        return f"the policy cannot be read: {exc}"
    return f"unknown policy type {policy.type}"


def update_signers(msps: ChannelMSPs, update: configtx_pb2.ConfigUpdateEnvelope) -> tuple[list[Principal], list[str]]:
    """The valid signers of a config update (Fabric's ``ConfigUpdateEnvelopeAsSignedData``: each signature over
    its signature header ‖ the update bytes) and why the others were ignored."""
    signers: list[Principal] = []
    ignored: list[str] = []
    for signature in update.signatures:
        try:
            creator = common_pb2.SignatureHeader.FromString(signature.signature_header).creator
            principal = msps.identify(creator)
        except (DecodeError, IdentityRejected) as exc:
            ignored.append(f"a signer that is not a valid identity of the channel ({exc})")
            continue
        if not msps.check_signature(principal, signature.signature_header + update.config_update, signature.signature):
            ignored.append(f"{principal.mspid} {principal.role}: its signature does not verify")
            continue
        signers.append(principal)
    return signers, ignored


@dataclass(frozen=True)
class AuthorisedUpdate:
    """A config update the config in force authorises: the config it makes, what it changes, who signed it."""

    config: configtx_pb2.Config
    changed: tuple[str, ...]
    signers: tuple[Principal, ...]


def config_update_of(envelope: common_pb2.Envelope) -> configtx_pb2.ConfigUpdateEnvelope:
    """The ``ConfigUpdateEnvelope`` of a CONFIG_UPDATE envelope (Fabric's ``EnvelopeToConfigUpdate``)."""
    try:
        payload = common_pb2.Payload.FromString(envelope.payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        if header.type != common_pb2.CONFIG_UPDATE:
            raise ConfigUpdateRefused(f"invalid type in header, expected {common_pb2.CONFIG_UPDATE}, got {header.type}")
        return configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)
    except DecodeError as exc:
        raise ConfigUpdateRefused(f"error unmarshalling the config update: {exc}") from exc


def authorise_update(config: configtx_pb2.Config, channel: str, envelope: common_pb2.Envelope,
                     msps: ChannelMSPs) -> AuthorisedUpdate:
    """Fabric's ``ProposeConfigUpdate`` of a CONFIG_UPDATE ``envelope`` on ``channel`` whose config in force is
    ``config`` (``msps`` its MSPs): the config it makes, or :class:`ConfigUpdateRefused` with Fabric's message."""
    try:
        update_envelope = config_update_of(envelope)
    except ConfigUpdateRefused as exc:
        raise ConfigUpdateRefused(f"error converting envelope to config update: {exc}") from exc
    try:
        return _authorise(config, channel, update_envelope, msps)
    except ConfigUpdateRefused as exc:
        raise ConfigUpdateRefused(f"error authorizing update: {exc}") from exc


def _authorise(config: configtx_pb2.Config, channel: str, update_envelope: configtx_pb2.ConfigUpdateEnvelope,
               msps: ChannelMSPs) -> AuthorisedUpdate:
    try:
        update = configtx_pb2.ConfigUpdate.FromString(update_envelope.config_update)
    except DecodeError as exc:
        raise ConfigUpdateRefused(f"error unmarshalling ConfigUpdate: {exc}") from exc
    if update.channel_id != channel:
        raise ConfigUpdateRefused(f"ConfigUpdate for channel '{update.channel_id}' but envelope for channel '{channel}'")
    current = map_config(config.channel_group)
    try:
        read_set = map_config(update.read_set) if update.HasField("read_set") else {}
    except ConfigUpdateRefused as exc:
        raise ConfigUpdateRefused(f"error mapping ReadSet: {exc}") from exc
    for key, element in sorted(read_set.items()):
        existing = current.get(key)
        if existing is None:
            raise ConfigUpdateRefused(f"error validating ReadSet: existing config does not contain element for {key} "
                                      "but was in the read set")
        if existing.item.version != element.item.version:
            raise ConfigUpdateRefused(f"error validating ReadSet: proposed update requires that key {key} be at "
                                      f"version {element.item.version}, but it is currently at version "
                                      f"{existing.item.version}")
    try:
        write_set = map_config(update.write_set) if update.HasField("write_set") else {}
    except ConfigUpdateRefused as exc:
        raise ConfigUpdateRefused(f"error mapping WriteSet: {exc}") from exc
    delta = {key: element for key, element in write_set.items()
             if key not in read_set or read_set[key].item.version != element.item.version}
    signers, _ = update_signers(msps, update_envelope)
    changed = _verify_delta(config, current, delta, signers)
    proposed = {**current, **delta}
    try:
        group = rebuild(proposed)
    except ConfigUpdateRefused as exc:
        raise ConfigUpdateRefused(f"could not turn configMap back to channelGroup: {exc}") from exc
    new_config = configtx_pb2.Config(sequence=config.sequence + 1, channel_group=group)
    return AuthorisedUpdate(new_config, changed, tuple(signers))


def _verify_delta(config: configtx_pb2.Config, current: dict[str, Element], delta: dict[str, Element],
                  signers: Sequence[Principal]) -> tuple[str, ...]:
    if not delta:
        raise ConfigUpdateRefused("error validating DeltaSet: delta set was empty -- update would have no effect")
    changed = []
    for key, element in sorted(delta.items()):
        mod_policy = element.item.mod_policy
        problem = "mod_policy not set" if not mod_policy else next(
            (f"path element at {i} is invalid: {why}" for i, part in enumerate(mod_policy.removeprefix("/").split("/"))
             if (why := _check_config_id(part)) is not None), None)
        if problem is not None:
            raise ConfigUpdateRefused(f"error validating DeltaSet: invalid mod_policy for element {key}: {problem}")
        existing = current.get(key)
        if existing is None:
            if element.item.version != 0:
                raise ConfigUpdateRefused(f"error validating DeltaSet: attempted to set key {key} to version "
                                          f"{element.item.version}, but key does not exist")
            changed.append(f"{element.name} added")
            continue
        if element.item.version != existing.item.version + 1:
            raise ConfigUpdateRefused(f"error validating DeltaSet: attempt to set key {key} to version "
                                      f"{element.item.version}, but key is at version {existing.item.version}")
        try:
            failure = policy_failure(config, mod_policy_path(existing), signers)
        except ConfigUpdateRefused as exc:
            raise ConfigUpdateRefused(f"error validating DeltaSet: unexpected missing policy "
                                      f"{existing.item.mod_policy} for item {key}") from exc
        if failure is not None:
            raise ConfigUpdateRefused(f"error validating DeltaSet: policy for {key} not satisfied: {failure}")
        changed.append(f"{element.name} ({existing.item.mod_policy})")
    return tuple(changed)


def check_config_envelope(config: configtx_pb2.Config, channel: str, envelope: configtx_pb2.ConfigEnvelope,
                          msps: ChannelMSPs) -> AuthorisedUpdate:
    """Fabric's ``Validate`` of a CONFIG transaction (what a peer checks before committing a config block): the
    next sequence, and its last update, authorised by the config in force, making exactly its config."""
    if envelope.config.sequence != config.sequence + 1:
        raise ConfigUpdateRefused(f"config currently at sequence {config.sequence}, cannot validate config at "
                                  f"sequence {envelope.config.sequence}")
    authorised = authorise_update(config, channel, envelope.last_update, msps)
    if authorised.config.channel_group != envelope.config.channel_group:
        raise ConfigUpdateRefused("ConfigEnvelope LastUpdate did not produce the supplied config result")
    return authorised
