"""Read the endorser transactions of a block fetched from an orderer with ``peer channel fetch``: the
tx ID and the chaincode event each carries (ordered blocks have no peer validation flags yet)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_event_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2


@dataclass(frozen=True)
class TxSummary:
    tx_id: str
    event_name: str | None
    event_payload: bytes | None
    chaincode_id: str | None


def read_block(path: Path) -> common_pb2.Block:
    block = common_pb2.Block()
    block.ParseFromString(path.read_bytes())
    return block


def transactions(block: common_pb2.Block) -> list[TxSummary]:
    """One summary per endorser transaction in ``block``, in block order."""
    found = []
    for raw in block.data.data:
        envelope = common_pb2.Envelope.FromString(raw)
        payload = common_pb2.Payload.FromString(envelope.payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        if header.type != common_pb2.HeaderType.ENDORSER_TRANSACTION:
            continue
        event = chaincode_event(transaction_pb2.Transaction.FromString(payload.data))
        found.append(TxSummary(
            tx_id=header.tx_id,
            event_name=event.event_name if event else None,
            event_payload=event.payload if event else None,
            chaincode_id=event.chaincode_id if event else None,
        ))
    return found


def chaincode_event(tx: transaction_pb2.Transaction) -> chaincode_event_pb2.ChaincodeEvent | None:
    """The chaincode event an endorser transaction set (the first action's that has one), if any."""
    for action in tx.actions:
        cap = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
        prp = proposal_response_pb2.ProposalResponsePayload.FromString(cap.action.proposal_response_payload)
        chaincode_action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
        event = chaincode_event_pb2.ChaincodeEvent.FromString(chaincode_action.events)
        if event.event_name:
            return event
    return None
