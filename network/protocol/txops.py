"""How the valid transactions of one block change the world state: values and key metadata.

Fabric's committer (core/ledger/kvledger/txmgmt/validation: ``txops``, ``batch_preparer``) merges a
transaction's value writes and metadata writes per key, over the state as the block's earlier valid
transactions left it:

- a value write keeps the key's current metadata (its state-based endorsement policy survives updates);
- a metadata write without a value write keeps the key's value; on a key that does not exist it is dropped;
- a delete removes value and metadata, whatever metadata the transaction also wrote;
- a metadata write replaces the key's whole metadata map (no entries: the metadata is removed);
- each change takes the version (block, tx index) of its transaction, so a metadata-only change makes
  earlier reads of the key stale; only value writes enter the key history.

Metadata is kept as Fabric's state database keeps it: a serialized ``KVMetadataWrite`` of the entries
sorted by name (``b""`` when the key has none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

from swarmfuse.network.protocol.model import StateReader, Version, VersionedValue

VALIDATION_PARAMETER = "VALIDATION_PARAMETER"
"""Metadata entry holding a key's endorsement policy (Fabric's ``MetaDataKeys_VALIDATION_PARAMETER``)."""


def encode_metadata(entries: Mapping[str, bytes]) -> bytes:
    """A metadata map as stored: a ``KVMetadataWrite`` of the entries sorted by name; ``b""`` when empty."""
    if not entries:
        return b""
    return kv_rwset_pb2.KVMetadataWrite(
        entries=[kv_rwset_pb2.KVMetadataEntry(name=name, value=entries[name]) for name in sorted(entries)]
    ).SerializeToString()


def decode_metadata(data: bytes) -> dict[str, bytes]:
    """The metadata map of a stored value (empty for ``b""``)."""
    if not data:
        return {}
    return {entry.name: entry.value for entry in kv_rwset_pb2.KVMetadataWrite.FromString(data).entries}


@dataclass(frozen=True)
class KeyChange:
    """What one transaction did to one key: the resulting value (``None``: deleted), metadata and version.
    ``value_write`` is False for a change of the metadata alone."""

    namespace: str
    key: str
    value: bytes | None
    metadata: bytes
    version: Version
    value_write: bool


class BlockChanges:
    """The changes of a block's valid transactions, applied one transaction at a time in block order over
    ``committed`` state; :attr:`latest` holds each key's last change (the block's update batch)."""

    def __init__(self, number: int, committed: StateReader) -> None:
        self.number = number
        self._committed = committed
        self.latest: dict[tuple[str, str], KeyChange] = {}

    def current(self, namespace: str, key: str) -> VersionedValue | None:
        """The key as the block's earlier transactions left it (``None``: absent)."""
        change = self.latest.get((namespace, key))
        if change is None:
            return self._committed.get_state(namespace, key)
        if change.value is None:
            return None
        return VersionedValue(change.value, change.version, change.metadata)

    def apply(self, index: int, writes: Iterable[tuple[str, str, bytes | None]],
              metadata_writes: Iterable[tuple[str, str, bytes]] = ()) -> list[KeyChange]:
        """Apply transaction ``index``'s writes (``None`` value: delete) and metadata writes (encoded, ``b""``:
        remove); return its changes sorted by (namespace, key)."""
        values: dict[tuple[str, str], bytes | None] = {}
        for namespace, key, value in writes:
            values[(namespace, key)] = value or None
        metadata = {(namespace, key): data for namespace, key, data in metadata_writes}
        version = Version(self.number, index)
        changes = []
        for nk in sorted(values.keys() | metadata.keys()):
            if nk in values:
                value = values[nk]
                if value is None:
                    kept = b""
                elif nk in metadata:
                    kept = metadata[nk]
                else:
                    existing = self.current(*nk)
                    kept = existing.metadata if existing is not None else b""
                changes.append(KeyChange(nk[0], nk[1], value, kept, version, value_write=True))
            else:
                existing = self.current(*nk)
                if existing is None:
                    continue  # metadata of a key that does not exist: dropped
                changes.append(KeyChange(nk[0], nk[1], existing.value, metadata[nk], version, value_write=False))
        for change in changes:
            self.latest[(change.namespace, change.key)] = change
        return changes

    def update_batch(self) -> dict[tuple[str, str], tuple[bytes | None, Version]]:
        """The block's updates as the commit hash covers them: per key, its last value and version."""
        return {nk: (change.value, change.version) for nk, change in self.latest.items()}
