"""Test helper: a tiny in-memory ``StateReader`` (committed state and history of one channel)."""

from __future__ import annotations

from collections.abc import Iterator

from swarmfuse.network.protocol.model import HistoryEntry, Version, VersionedValue


class MemoryState:
    """Committed values per (namespace, key) and their history, newest first."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], VersionedValue] = {}
        self.history: dict[tuple[str, str], list[HistoryEntry]] = {}

    def put(self, namespace: str, key: str, value: bytes, version: Version = Version(1, 0), tx_id: str = "") -> None:
        """Commit ``value`` (b"" deletes) and prepend the change to the key's history."""
        if value:
            self.values[(namespace, key)] = VersionedValue(value, version)
        else:
            self.values.pop((namespace, key), None)
        entry = HistoryEntry(
            tx_id=tx_id or f"tx{version.block}.{version.tx}",
            value=value,
            is_delete=not value,
            timestamp_s=1_700_000_000 + version.block,
            timestamp_nanos=version.tx,
            version=version,
        )
        self.history.setdefault((namespace, key), []).insert(0, entry)

    def get_state(self, namespace: str, key: str) -> VersionedValue | None:
        return self.values.get((namespace, key))

    def get_state_range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, VersionedValue]]:
        keys = sorted(k for ns, k in self.values if ns == namespace and k >= start and (not end or k < end))
        for key in keys:
            yield key, self.values[(namespace, key)]

    def get_history(self, namespace: str, key: str) -> list[HistoryEntry]:
        return list(self.history.get((namespace, key), []))
