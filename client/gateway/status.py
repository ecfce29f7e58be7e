"""A transaction's commit status: validation code and block."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_protos.peer.transaction_pb2 import TxValidationCode


@dataclass(frozen=True)
class Status:
    """How the peers validated a transaction, and the block it is in."""

    transaction_id: str
    block_number: int
    code: int

    @property
    def code_name(self) -> str:
        return TxValidationCode.Name(self.code) if self.code in TxValidationCode.values() else f"UNKNOWN_{self.code}"

    @property
    def successful(self) -> bool:
        return self.code == TxValidationCode.VALID
