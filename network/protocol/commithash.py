"""COMMIT_HASH as Fabric's kvledger computes it (``core/ledger/kvledger/kv_ledger.go`` ``addBlockCommitHash``
and ``txmgr/update_batch_bytes.go``): for blocks from 1 on, ``SHA-256(varint(len(filter)) ‖ filter ‖ Updates
bytes ‖ previous commit hash)`` where Updates holds, per namespace (sorted, ``""`` skipped) and key (sorted),
the block's last valid write with its version bytes; stored as ``Metadata{value}`` in slot 4. Key metadata
is not part of it."""

from __future__ import annotations

import hashlib

from fabric_protos.common import common_pb2

from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.model import Version


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _order_preserving_uint(n: int) -> bytes:
    """Fabric's ``EncodeOrderPreservingVarUint64``: size byte, then the big-endian bytes without leading zeros."""
    body = n.to_bytes(8, "big").lstrip(b"\x00")
    return bytes([len(body)]) + body


def version_bytes(version: Version) -> bytes:
    """Fabric's ``Height.ToBytes`` of a version."""
    return _order_preserving_uint(version.block) + _order_preserving_uint(version.tx)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _kv_write(key: bytes, value: bytes | None, version: Version) -> bytes:
    """A ``txmgr.KVWrite`` without namespace and collection: key, isDelete (Go: Value == nil) or value, version."""
    write = _field(3, key) if key else b""
    write += b"\x20\x01" if not value else _field(5, value)
    return write + _field(6, version_bytes(version))


HashedUpdates = dict[tuple[str, str, bytes], tuple[bytes | None, Version]]
"""Private data updates: (namespace, collection, key hash) -> (value hash, ``None`` for a delete; version)."""


def update_batch_bytes(updates: dict[tuple[str, str], tuple[bytes | None, Version]],
                       hashed: HashedUpdates | None = None) -> bytes:
    """Fabric's ``deterministicBytesForPubAndHashUpdates``: ``txmgr.Updates`` bytes. Per namespace (sorted,
    ``""`` skipped), its public writes by key, then each collection's (sorted) hashed writes by key hash; the
    namespace only on the namespace's first KVWrite, the collection only on the collection's first."""
    hashed = hashed or {}
    public: dict[str, list[tuple[bytes, bytes | None, Version]]] = {}
    for (ns, key), (value, version) in updates.items():
        public.setdefault(ns, []).append((key.encode(), value, version))
    private: dict[str, dict[str, list[tuple[bytes, bytes | None, Version]]]] = {}
    for (ns, collection, key_hash), (value_hash, version) in hashed.items():
        private.setdefault(ns, {}).setdefault(collection, []).append((key_hash, value_hash, version))
    out = bytearray()
    for ns in sorted(public.keys() | private.keys(), key=str.encode):
        if ns == "":
            continue
        writes = [_kv_write(*kv) for kv in sorted(public.get(ns, []), key=lambda kv: kv[0])]
        for collection in sorted(private.get(ns, {}), key=str.encode):
            first, *rest = [_kv_write(*kv) for kv in sorted(private[ns][collection], key=lambda kv: kv[0])]
            writes += [_field(2, collection.encode()) + first, *rest]
        writes[0] = _field(1, ns.encode()) + writes[0]
        out += b"".join(_field(1, write) for write in writes)
    return bytes(out)


def commit_hash(tx_filter: bytes, batch_bytes: bytes, previous: bytes) -> bytes:
    """SHA-256(varint(len(filter)) ‖ filter ‖ update batch bytes ‖ previous commit hash)."""
    return hashlib.sha256(_varint(len(tx_filter)) + tx_filter + batch_bytes + previous).digest()


def stored_commit_hash(block: common_pb2.Block) -> bytes:
    """The COMMIT_HASH a block's metadata holds (empty when it has none)."""
    if len(block.metadata.metadata) <= blockfmt.COMMIT_HASH or not block.metadata.metadata[blockfmt.COMMIT_HASH]:
        return b""
    return common_pb2.Metadata.FromString(block.metadata.metadata[blockfmt.COMMIT_HASH]).value
