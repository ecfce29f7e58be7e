"""Checkpointers: where an event listener resumes (in memory, or a file written atomically with fsync)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from swarmfuse.client.gateway.errors import GatewayError
from swarmfuse.files import write_atomic


@dataclass(frozen=True)
class Position:
    """Resume at ``block_number``, after ``transaction_id`` within it (``None``: from its start)."""

    block_number: int | None = None
    transaction_id: str | None = None


class Checkpointer(Protocol):
    """Records progress; the event iterators call it after the caller has processed each event."""

    @property
    def position(self) -> Position: ...

    def checkpoint_block(self, block_number: int) -> None:
        """The whole block is processed: resume at the next one."""

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        """Events up to this transaction are processed: resume after it."""


class InMemoryCheckpointer:
    """Progress kept for the life of the process."""

    def __init__(self) -> None:
        self._position = Position()

    @property
    def position(self) -> Position:
        return self._position

    def checkpoint_block(self, block_number: int) -> None:
        self._position = Position(block_number + 1)

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        self._position = Position(block_number, transaction_id)


class FileCheckpointer(InMemoryCheckpointer):
    """Progress in a JSON file, replaced atomically (temp file, fsync, rename, fsync of the folder)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self._position = Position(data["block_number"], data["transaction_id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise GatewayError(f"checkpoint file {path} is corrupt: {exc!r}") from exc

    def checkpoint_block(self, block_number: int) -> None:
        super().checkpoint_block(block_number)
        self._save()

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        super().checkpoint_transaction(block_number, transaction_id)
        self._save()

    def _save(self) -> None:
        data = json.dumps({"block_number": self._position.block_number, "transaction_id": self._position.transaction_id})
        write_atomic(self.path, data.encode())
