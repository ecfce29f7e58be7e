"""Runs one transaction: decode it, call the chaincode, and build the message that ends it."""

from __future__ import annotations

import logging

from fabric_protos.peer import chaincode_event_pb2, proposal_response_pb2

from swarmfuse.chaincode.shim.peer_stub import PeerStub
from swarmfuse.chaincode.shim.proposal import ProposalError, decode_invocation, decode_proposal
from swarmfuse.chaincode.shim.session import ChaincodeMessage, TxConnection
from swarmfuse.chaincode.stub import Chaincode, Response

logger = logging.getLogger(__name__)


def _error(tx: TxConnection, text: str) -> ChaincodeMessage:
    return ChaincodeMessage(
        type=ChaincodeMessage.ERROR, payload=text.encode("utf-8"), txid=tx.txid, channel_id=tx.channel_id
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class TransactionRunner:
    """Serves transactions for one chaincode; never raises, every outcome becomes a message."""

    def __init__(self, chaincode: Chaincode) -> None:
        self._chaincode = chaincode

    def __call__(self, tx: TxConnection, message: ChaincodeMessage) -> ChaincodeMessage:
        try:
            return self._run(tx, message)
        except Exception as exc:  # any failure ends the transaction with an ERROR naming it; nothing is written
            logger.exception("[%s] transaction failed", tx.txid[:8])
            return _error(tx, _describe(exc))

    def _run(self, tx: TxConnection, message: ChaincodeMessage) -> ChaincodeMessage:
        try:
            context = decode_proposal(message.proposal)
            invocation = decode_invocation(message.payload, context.transient)
        except ProposalError as exc:
            logger.error("[%s] rejected: %s", tx.txid[:8], exc)
            return _error(tx, str(exc))
        stub = PeerStub(tx, context, invocation, tx.session.write_batch_size)
        response = self._invoke(stub)
        logger.info("[%s] %s -> %d %s", tx.txid[:8], invocation.function, response.status, response.message)
        completed = ChaincodeMessage(
            type=ChaincodeMessage.COMPLETED,
            payload=proposal_response_pb2.Response(
                status=response.status, message=response.message, payload=response.payload
            ).SerializeToString(),
            txid=tx.txid,
            channel_id=tx.channel_id,
        )
        if response.ok and stub.event is not None:
            completed.chaincode_event.CopyFrom(
                chaincode_event_pb2.ChaincodeEvent(
                    event_name=stub.event.name, payload=stub.event.payload, tx_id=tx.txid
                )
            )
        return completed

    def _invoke(self, stub: PeerStub) -> Response:
        """Call the chaincode; on success send its writes. Queries it left open are closed either way."""
        try:
            response = self._chaincode.invoke(stub)
            if not isinstance(response, Response):
                raise TypeError(f"chaincode returned {type(response).__name__}, expected Response")
        finally:
            stub.close_queries()
        if response.ok:
            stub.flush_writes()
        return response
