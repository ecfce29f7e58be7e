"""What contracts see of the proposal: txid, channel, timestamp, creator and transient data."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from shim_peer import DEFAULT_CERT, PeerSim, ShimTestChaincode, make_cert, response_of, signed_proposal, transaction

from swarmfuse.chaincode.shim import ChaincodeServer, ServerConfig
from swarmfuse.chaincode.shim.proposal import ProposalError, decode_invocation, decode_proposal

pytestmark = pytest.mark.timeout(60)


def test_contract_sees_creator_timestamp_and_transient_over_the_stream() -> None:
    server = ChaincodeServer(ShimTestChaincode(), ServerConfig(chaincode_id="swarmfuse_1.0:p", address="127.0.0.1:0"))
    server.start()
    peer = PeerSim(f"127.0.0.1:{server.port}")
    try:
        peer.handshake()
        auditor = make_cert("auditor-user")
        when = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
        proposal = signed_proposal(
            "tx-who", "AuditorMSP", auditor.cert_pem, when, transient={"secret": b"s3"}, channel="task9"
        )
        response = response_of(peer.run(transaction("tx-who", "whoami", channel="task9", proposal=proposal)))
        assert json.loads(response.payload) == {
            "tx": "tx-who",
            "channel": "task9",
            "mspid": "AuditorMSP",
            "cert": auditor.cert_pem.decode(),
            "at": "2026-01-02T03:04:05.678000+00:00",
            "transient": {"secret": "s3"},
        }
    finally:
        peer.close()
        server.stop(grace=None)


def test_decode_proposal_fields() -> None:
    when = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    context = decode_proposal(signed_proposal("t", "DC2MSP", DEFAULT_CERT.cert_pem, when))
    assert context.creator.mspid == "DC2MSP"
    assert context.creator.cert_pem == DEFAULT_CERT.cert_pem
    assert context.timestamp == when
    assert context.transient == {}


def test_decode_invocation_splits_function_and_args() -> None:
    data = chaincode_pb2.ChaincodeInput(args=[b"Sample:Put", b"k", b"\x00\xff"]).SerializeToString()
    invocation = decode_invocation(data, {"t": b"x"})
    assert (invocation.function, tuple(invocation.args), invocation.transient) == (
        "Sample:Put",
        (b"k", b"\x00\xff"),
        {"t": b"x"},
    )


@pytest.mark.parametrize(
    ("signed", "message"),
    [
        (proposal_pb2.SignedProposal(), "the transaction carries no signed proposal"),
        (proposal_pb2.SignedProposal(proposal_bytes=b"\xff\xff"), "cannot decode proposal"),
        (
            proposal_pb2.SignedProposal(proposal_bytes=proposal_pb2.Proposal(payload=b"x").SerializeToString()),
            "the proposal has no header",
        ),
        (
            proposal_pb2.SignedProposal(
                proposal_bytes=proposal_pb2.Proposal(
                    header=common_pb2.Header(
                        channel_header=common_pb2.ChannelHeader(channel_id="task1").SerializeToString()
                    ).SerializeToString()
                ).SerializeToString()
            ),
            "the proposal creator has no MSP ID",
        ),
    ],
)
def test_undecodable_proposals_are_named(signed: proposal_pb2.SignedProposal, message: str) -> None:
    with pytest.raises(ProposalError, match=message):
        decode_proposal(signed)


def test_function_name_must_be_utf8() -> None:
    with pytest.raises(ProposalError, match="not valid UTF-8"):
        decode_invocation(chaincode_pb2.ChaincodeInput(args=[b"\xff"]).SerializeToString(), {})
