"""What the event services read out of committed blocks: start positions, chaincode events of valid
transactions, and filtered blocks (validation codes, events without payloads) as a Fabric peer builds them."""

from __future__ import annotations

from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_event_pb2, events_pb2, transaction_pb2

from swarmfuse.network.blocks import chaincode_event
from swarmfuse.network.protocol import blockfmt

VALID = transaction_pb2.TxValidationCode.VALID


def start_block(position: ab_pb2.SeekPosition, height: int) -> int:
    """The first block number a seek position names (``next_commit`` and unset: the next block)."""
    kind = position.WhichOneof("Type")
    if kind == "oldest":
        return 0
    if kind == "newest":
        return max(height - 1, 0)
    if kind == "specified":
        return position.specified.number
    return height


def _header(envelope: bytes) -> tuple[common_pb2.ChannelHeader, common_pb2.Payload]:
    payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(envelope).payload)
    return common_pb2.ChannelHeader.FromString(payload.header.channel_header), payload


def _event(payload: common_pb2.Payload) -> chaincode_event_pb2.ChaincodeEvent | None:
    return chaincode_event(transaction_pb2.Transaction.FromString(payload.data))


def block_chaincode_events(block: common_pb2.Block) -> list[tuple[int, chaincode_event_pb2.ChaincodeEvent]]:
    """``(transaction index, event)`` of every event set by the block's valid transactions, in block order."""
    codes = blockfmt.transactions_filter(block)
    found = []
    for index, envelope in enumerate(block.data.data):
        if index >= len(codes) or codes[index] != VALID:
            continue
        header, payload = _header(envelope)
        if header.type != common_pb2.ENDORSER_TRANSACTION:
            continue
        event = _event(payload)
        if event is not None:
            found.append((index, event))
    return found


def chaincode_events(events: list[tuple[int, chaincode_event_pb2.ChaincodeEvent]], chaincode: str,
                     after_index: int = -1) -> list[chaincode_event_pb2.ChaincodeEvent]:
    """The events of ``chaincode`` among a block's ``events`` (:func:`block_chaincode_events`) after ``after_index``."""
    return [event for index, event in events if index > after_index and event.chaincode_id == chaincode]


def filtered_block(block: common_pb2.Block, channel: str) -> events_pb2.FilteredBlock:
    """The block as DeliverFiltered sends it: tx IDs, types, validation codes, events without payload."""
    codes = blockfmt.transactions_filter(block)
    filtered = events_pb2.FilteredBlock(channel_id=channel, number=block.header.number)
    for index, envelope in enumerate(block.data.data):
        header, payload = _header(envelope)
        code = codes[index] if index < len(codes) else VALID
        tx = filtered.filtered_transactions.add(txid=header.tx_id, type=header.type, tx_validation_code=code)
        if header.type == common_pb2.ENDORSER_TRANSACTION:
            event = _event(payload)
            action = tx.transaction_actions.chaincode_actions.add()
            if event is not None:
                action.chaincode_event.CopyFrom(chaincode_event_pb2.ChaincodeEvent(
                    chaincode_id=event.chaincode_id, tx_id=event.tx_id, event_name=event.event_name))
    return filtered
