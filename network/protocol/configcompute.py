"""Computing a channel config update as ``configtxlator compute_update`` does (``internal/configtxlator/update``):
from the config in force and the config wanted, the read set (what the update depends on, at its versions) and
the write set (what it changes, at the next versions; new elements at version 0). A changed group lists all its
members, the unchanged ones by version only, so that the orderer rebuilds it whole."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from fabric_protos.common import configtx_pb2
from fabric_protos.msp import msp_config_pb2

from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.model import OrgDefinition


def compute_update(original: configtx_pb2.Config, updated: configtx_pb2.Config, channel: str) -> configtx_pb2.ConfigUpdate:
    """The ``ConfigUpdate`` turning ``original`` into ``updated`` on ``channel``: each changed group in both sets
    (read at its version, written at the next with its unchanged members listed by version only), each changed
    value or policy written at its next version, each new element at version 0. ``ValueError`` when nothing
    differs."""
    read_set, write_set, changed = _group_update(original.channel_group, updated.channel_group)
    if not changed:
        raise ValueError("no differences detected between original and updated config")
    return configtx_pb2.ConfigUpdate(channel_id=channel, read_set=read_set, write_set=write_set)


_Leaf = TypeVar("_Leaf", configtx_pb2.ConfigValue, configtx_pb2.ConfigPolicy)


def _items_update(original: Mapping[str, _Leaf], updated: Mapping[str, _Leaf], same: Callable[[_Leaf, _Leaf], bool]
                  ) -> tuple[dict[str, _Leaf], dict[str, _Leaf], bool]:
    """Written and unchanged entries of one map (values or policies) of a group, and whether its members changed."""
    written: dict[str, _Leaf] = {}
    unchanged: dict[str, _Leaf] = {}
    members_changed = any(key not in updated for key in original)
    for key, item in original.items():
        if key in updated:
            if same(item, updated[key]):
                unchanged[key] = type(item)(version=item.version)
            else:
                written[key] = _at_version(updated[key], item.version + 1)
    for key, new in updated.items():
        if key not in original:
            members_changed = True
            written[key] = _at_version(new, 0)
    return written, unchanged, members_changed


def _at_version(item: _Leaf, version: int) -> _Leaf:
    copy = type(item)()
    copy.CopyFrom(item)
    copy.version = version
    return copy


def _group(version: int, policies: Mapping[str, configtx_pb2.ConfigPolicy], values: Mapping[str, configtx_pb2.ConfigValue],
           groups: Mapping[str, configtx_pb2.ConfigGroup], mod_policy: str = "") -> configtx_pb2.ConfigGroup:
    built = configtx_pb2.ConfigGroup(version=version, mod_policy=mod_policy)
    for key, policy in policies.items():
        built.policies[key].CopyFrom(policy)
    for key, value in values.items():
        built.values[key].CopyFrom(value)
    for key, child in groups.items():
        built.groups[key].CopyFrom(child)
    return built


def _group_update(original: configtx_pb2.ConfigGroup, updated: configtx_pb2.ConfigGroup
                  ) -> tuple[configtx_pb2.ConfigGroup, configtx_pb2.ConfigGroup, bool]:
    policies_write, policies_same, policies_members = _items_update(
        original.policies, updated.policies,
        lambda a, b: a.mod_policy == b.mod_policy and a.policy == b.policy)
    values_write, values_same, values_members = _items_update(
        original.values, updated.values, lambda a, b: a.mod_policy == b.mod_policy and a.value == b.value)
    groups_read: dict[str, configtx_pb2.ConfigGroup] = {}
    groups_write: dict[str, configtx_pb2.ConfigGroup] = {}
    groups_same: dict[str, configtx_pb2.ConfigGroup] = {}
    groups_members = any(key not in updated.groups for key in original.groups)
    for key, group in original.groups.items():
        if key not in updated.groups:
            continue
        read, write, changed = _group_update(group, updated.groups[key])
        if changed:
            groups_read[key], groups_write[key] = read, write
        else:
            groups_same[key] = read
    for key, group in updated.groups.items():
        if key not in original.groups:
            groups_members = True
            _, write, _ = _group_update(configtx_pb2.ConfigGroup(), group)
            write.version, write.mod_policy = 0, group.mod_policy
            groups_write[key] = write
    members_changed = policies_members or values_members or groups_members or original.mod_policy != updated.mod_policy

    if not members_changed:
        if not (policies_write or values_write or groups_read or groups_write):
            return _group(original.version, {}, {}, {}), _group(original.version, {}, {}, {}), False
        return (_group(original.version, {}, {}, groups_read),
                _group(original.version, policies_write, values_write, groups_write), True)
    return (_group(original.version, policies_same, values_same, {**groups_read, **groups_same}),
            _group(original.version + 1, {**policies_write, **policies_same}, {**values_write, **values_same},
                  {**groups_write, **groups_same}, updated.mod_policy), True)


def add_org_update(config: configtx_pb2.Config, channel: str, org: OrgDefinition) -> configtx_pb2.ConfigUpdate:
    """The update adding ``org`` to the channel's Application group (its group as configtxgen builds it), as
    ``configtxlator compute_update`` makes it; ``ValueError`` when the channel has an org of that name or MSP ID."""
    application = config.channel_group.groups[blockfmt.APPLICATION]
    for name, group in application.groups.items():
        mspid = msp_config_pb2.FabricMSPConfig.FromString(
            msp_config_pb2.MSPConfig.FromString(group.values[blockfmt.MSP].value).config).name
        if name == org.name or mspid == org.mspid:
            raise ValueError(f"channel {channel} already has org {name} ({mspid})")
    updated = configtx_pb2.Config()
    updated.CopyFrom(config)
    updated.channel_group.groups[blockfmt.APPLICATION].groups[org.name].CopyFrom(blockfmt.org_group(org))
    return compute_update(config, updated, channel)


def remove_org_update(config: configtx_pb2.Config, channel: str, name: str) -> configtx_pb2.ConfigUpdate:
    """The update removing application org ``name`` (its group) from the channel; ``ValueError`` when the channel
    has no such org."""
    application = config.channel_group.groups[blockfmt.APPLICATION]
    if name not in application.groups:
        raise ValueError(f"channel {channel} has no org {name} (it has {', '.join(sorted(application.groups))})")
    updated = configtx_pb2.Config()
    updated.CopyFrom(config)
    del updated.channel_group.groups[blockfmt.APPLICATION].groups[name]
    return compute_update(config, updated, channel)
