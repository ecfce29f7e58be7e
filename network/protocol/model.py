"""Types of Fabric's protocol shared by the engine, the validator and the auditor: versions, state reads,
channel and chaincode definitions, and a transaction's validation outcome."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

OrgKind = Literal["member", "auditor", "orderer"]


@dataclass(frozen=True, order=True)
class Version:
    """Fabric's state version: the block and the transaction (within it) that last wrote a key."""

    block: int
    tx: int


@dataclass(frozen=True)
class VersionedValue:
    """A committed value, its version and its metadata (a serialized ``KVMetadataWrite``, ``b""``: none)."""

    value: bytes
    version: Version
    metadata: bytes = b""


@dataclass(frozen=True)
class HistoryEntry:
    """One committed change of a key (``value`` is empty for a delete)."""

    tx_id: str
    value: bytes
    is_delete: bool
    timestamp_s: int
    timestamp_nanos: int
    version: Version


class StateReader(Protocol):
    """Committed world state of one channel, as the simulator and the validator read it."""

    def get_state(self, namespace: str, key: str) -> VersionedValue | None:
        """The committed value and version of ``key``, or ``None`` when it does not exist."""

    def get_state_range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, VersionedValue]]:
        """Keys in ``[start, end)`` in Fabric's order (UTF-8 bytes); ``end == ""`` means no upper bound."""

    def get_history(self, namespace: str, key: str) -> list[HistoryEntry]:
        """Every committed change of ``key``, newest first (as Fabric's history database answers)."""


@dataclass(frozen=True)
class OrgDefinition:
    """An organisation of a channel: MSP ID, CA roots (PEM) and, for peer orgs, the peer's endpoint."""

    name: str
    mspid: str
    kind: OrgKind
    ca_certs: tuple[bytes, ...]
    tls_ca_certs: tuple[bytes, ...]
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChaincodeDefinition:
    """The chaincode committed on a channel and its endorsement policy (``OutOf(k, 'X.peer', ...)``)."""

    name: str
    version: str
    sequence: int
    endorsement_policy: str


@dataclass(frozen=True)
class ChannelDefinition:
    """What a channel's genesis (config) block holds, plus its chaincode definition."""

    name: str
    orgs: tuple[OrgDefinition, ...]
    orderer_org: OrgDefinition
    batch_max_count: int = 100
    batch_absolute_max_bytes: int = 10 * 1024 * 1024
    batch_preferred_max_bytes: int = 2 * 1024 * 1024  # configtx.py "2 MB" (configtxgen reads MB as MiB)
    batch_timeout_s: float = 0.25
    chaincode: ChaincodeDefinition | None = None

    def org_by_msp(self, mspid: str) -> OrgDefinition | None:
        for org in (*self.orgs, self.orderer_org):
            if org.mspid == mspid:
                return org
        return None


VALID = 0
"""TxValidationCode.VALID."""


@dataclass(frozen=True)
class TxLocation:
    block: int
    index: int
    code: int


@dataclass(frozen=True)
class TxResult:
    """The validation outcome of one envelope; ``writes`` (``None`` value = delete) and ``metadata_writes``
    (namespace, key, encoded metadata, ``b""`` = none; see :mod:`~swarmfuse.network.protocol.txops`) apply
    only when VALID."""

    tx_id: str
    index: int
    code: int
    writes: Sequence[tuple[str, str, bytes | None]] = ()
    timestamp_s: int = 0
    timestamp_nanos: int = 0
    metadata_writes: Sequence[tuple[str, str, bytes]] = ()
