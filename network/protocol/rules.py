"""What a channel allows, as validation reads it: who may read and write (its Readers and Writers policies),
which namespaces and collections are defined with which endorsement policies, and the ledger view
(committed state and the tx ID index) both the endorser's checks and block validation read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from swarmfuse.network.protocol.model import ChannelDefinition, StateReader, Version
from swarmfuse.network.protocol.msp import Principal
from swarmfuse.network.protocol.policy import Policy, PolicyError, org_policies, parse


class LedgerView(StateReader, Protocol):
    """What validation reads from a channel's ledger: committed state and the tx ID index."""

    def tx_location(self, tx_id: str) -> object | None:
        """Where the transaction ``tx_id`` was committed (valid or not), ``None`` when never."""

    def get_hashed_version(self, namespace: str, collection: str, key_hash: bytes) -> Version | None:
        """The version of a private data key (by its hash) in a collection, ``None`` when it does not exist."""


class NamespaceRules(Protocol):
    """The endorsement policies validation applies; ``None`` means not defined on the channel."""

    def policy(self, namespace: str) -> Policy | None:
        """The endorsement policy of a namespace (a chaincode, or ``_lifecycle`` on Fabric)."""

    def collection_policy(self, namespace: str, collection: str) -> Policy | None:
        """The endorsement policy of writes to a collection of the namespace."""


@dataclass(frozen=True)
class ChaincodeRules:
    """The engine's channel: one chaincode with its endorsement policy, no private data collections."""

    name: str | None
    endorsement: Policy | None

    @classmethod
    def of(cls, channel: ChannelDefinition) -> ChaincodeRules:
        if channel.chaincode is None:
            return cls(None, None)
        try:
            return cls(channel.chaincode.name, parse(channel.chaincode.endorsement_policy))
        except PolicyError as exc:
            raise ValueError(f"chaincode {channel.chaincode.name} of channel {channel.name}: {exc}") from exc

    def policy(self, namespace: str) -> Policy | None:
        return self.endorsement if namespace == self.name else None

    def collection_policy(self, namespace: str, collection: str) -> Policy | None:
        return None


def channel_readers(channel: ChannelDefinition, principal: Principal) -> bool:
    """``/Channel/Application/Readers`` (ANY Readers of the application orgs): Fabric's default ACL for
    ``peer/Propose`` in our channels."""
    return any(org.mspid == principal.mspid and org_policies(org).readers.satisfied_by([principal])
               for org in channel.orgs)


def channel_writers(channel: ChannelDefinition, principal: Principal) -> bool:
    """``/Channel/Writers`` (ANY Writers of the application and orderer orgs): what Fabric's orderer
    requires of a submitted transaction's creator."""
    return any(org.mspid == principal.mspid and org_policies(org).writers.satisfied_by([principal])
               for org in (*channel.orgs, channel.orderer_org))
