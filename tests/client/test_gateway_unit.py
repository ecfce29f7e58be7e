"""Fast offline tests: signing, transaction IDs, proposal encoding, status details, checkpoint files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway.gateway_pb2 import ErrorDetail
from fabric_protos.msp.identities_pb2 import SerializedIdentity
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from google.protobuf import any_pb2

from swarmfuse.client.gateway import (
    CommitError,
    ConnectError,
    ECDSASigner,
    FileCheckpointer,
    Gateway,
    GatewayError,
    Identity,
    IdentityError,
    InMemoryCheckpointer,
    MVCCReadConflictError,
    Position,
    ProposalBuilder,
    Status,
    Timeouts,
    load_profile,
    transaction_id,
)
from swarmfuse.client.gateway._retry import retrying
from swarmfuse.client.gateway.commit import raise_unless_valid
from swarmfuse.client.gateway.errors import decode_details
from swarmfuse.network.protocol.identity import P256_ORDER
from swarmfuse.network.protocol.status import RpcStatus


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit")])

    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_signatures_are_low_s_and_verify(key: ec.EllipticCurvePrivateKey) -> None:
    signer = ECDSASigner(key)
    message = b"swarmfuse"
    digest = hashlib.sha256(message).digest()
    for _ in range(64):  # about half of raw ECDSA signatures are high-S: 64 rounds exercise the normalisation
        signature = signer.sign(digest)
        _, s = decode_dss_signature(signature)
        assert s <= P256_ORDER // 2
        key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signer.sign(digest), b"other", ec.ECDSA(hashes.SHA256()))


def test_signer_refuses_other_curves() -> None:
    with pytest.raises(IdentityError, match="P-256"):
        ECDSASigner(ec.generate_private_key(ec.SECP384R1()))


def test_transaction_id_is_sha256_of_nonce_and_creator() -> None:
    nonce, creator = b"n" * 24, Identity("DC1MSP", b"cert").serialize()
    assert transaction_id(nonce, creator) == hashlib.sha256(nonce + creator).hexdigest()


def test_proposal_decodes_back(key: ec.EllipticCurvePrivateKey) -> None:
    identity = Identity("DC1MSP", _cert_pem(key))
    builder = ProposalBuilder("task1", "swarmfuse", "Sample:Put", ["k", b"\x00v"], {"secret": b"s"}, ["DC2MSP"])
    proposed = builder.build(identity.serialize())
    proposal = proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    creator = SerializedIdentity.FromString(signature_header.creator)
    assert (creator.mspid, creator.id_bytes) == ("DC1MSP", identity.credentials)
    assert channel_header.type == common_pb2.ENDORSER_TRANSACTION and channel_header.channel_id == "task1"
    assert channel_header.tx_id == proposed.transaction_id == transaction_id(signature_header.nonce, signature_header.creator)
    assert len(signature_header.nonce) == 24
    extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    assert extension.chaincode_id.name == "swarmfuse"
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    assert list(spec.chaincode_spec.input.args) == [b"Sample:Put", b"k", b"\x00v"]
    assert dict(payload.TransientMap) == {"secret": b"s"}
    assert list(proposed.endorsing_organizations) == ["DC2MSP"]
    assert builder.build(identity.serialize()).transaction_id != proposed.transaction_id  # fresh nonce each time


def test_status_details_decode_per_peer() -> None:
    status = RpcStatus(code=10, message="failed to endorse")
    for msp, message in [("DC1MSP", "chaincode response 404"), ("DC2MSP", "access denied")]:
        item = any_pb2.Any()
        item.Pack(ErrorDetail(address=f"{msp}:7051", msp_id=msp, message=message))
        status.details.append(item)
    details = decode_details(status.SerializeToString())
    assert [(d.msp_id, d.message) for d in details] == [("DC1MSP", "chaincode response 404"), ("DC2MSP", "access denied")]
    assert str(details[1]) == "DC2MSP@DC2MSP:7051: access denied"


def test_commit_codes_map_to_errors() -> None:
    raise_unless_valid(Status("t", 3, 0))
    with pytest.raises(MVCCReadConflictError, match="MVCC_READ_CONFLICT"):
        raise_unless_valid(Status("t", 4, 11))
    with pytest.raises(CommitError, match="ENDORSEMENT_POLICY_FAILURE") as info:
        raise_unless_valid(Status("t", 5, 10))
    assert not isinstance(info.value, MVCCReadConflictError) and info.value.tx_id == "t"


def test_file_checkpointer_survives_reopen_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "cp" / "events.json"
    checkpointer = FileCheckpointer(path)
    assert checkpointer.position == Position()
    checkpointer.checkpoint_transaction(7, "tx-a")
    assert FileCheckpointer(path).position == Position(7, "tx-a")
    checkpointer.checkpoint_block(7)
    assert FileCheckpointer(path).position == Position(8, None)
    assert os.listdir(path.parent) == ["events.json"]


def test_corrupt_checkpoint_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_text("{not json")
    with pytest.raises(GatewayError, match="cp.json is corrupt"):
        FileCheckpointer(path)


def test_in_memory_checkpointer() -> None:
    checkpointer = InMemoryCheckpointer()
    checkpointer.checkpoint_transaction(2, "x")
    assert checkpointer.position == Position(2, "x")
    checkpointer.checkpoint_block(2)
    assert checkpointer.position == Position(3, None)


def test_profile_errors_name_the_problem(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(IdentityError, match="cannot read connection profile"):
        load_profile(tmp_path / "missing.json")
    cert, pem_key, tls = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "tls.pem"
    cert.write_bytes(_cert_pem(key))
    tls.write_bytes(_cert_pem(key))
    pem_key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    profile = tmp_path / "connection.json"
    doc = {"mspid": "DC1MSP", "peer": {"endpoint": "127.0.0.1:1", "tls_ca_cert": str(tls), "host_override": "p"},
           "identities": {"user": {"cert": str(cert), "key": str(pem_key)}}}
    profile.write_text(json.dumps(doc))
    loaded = load_profile(profile)
    assert loaded.identity == Identity("DC1MSP", cert.read_bytes()) and loaded.peer.host_override == "p"
    with pytest.raises(IdentityError, match="lacks identity 'admin'"):
        load_profile(profile, "admin")
    cert.write_text("garbage")
    with pytest.raises(IdentityError, match="not a PEM X.509 certificate"):
        load_profile(profile)


class _Rpc(grpc.RpcError):
    """A gRPC failure as the channel raises it, with only a status code."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


def test_retry_repeats_only_transient_failures() -> None:
    calls: list[grpc.StatusCode] = []

    def failing_with(codes: list[grpc.StatusCode]) -> Callable[[], str]:
        def call() -> str:
            if codes:
                calls.append(codes[0])
                raise _Rpc(codes.pop(0))
            return "ok"
        return call

    assert retrying(failing_with([grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])) == "ok"
    assert calls == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
    calls.clear()
    with pytest.raises(_Rpc):
        retrying(failing_with([grpc.StatusCode.ABORTED, grpc.StatusCode.ABORTED]))
    assert calls == [grpc.StatusCode.ABORTED]  # not transient: never repeated


def test_connect_to_closed_port_says_unreachable(key: ec.EllipticCurvePrivateKey) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port} is unreachable"):
        Gateway.connect(f"127.0.0.1:{port}", _cert_pem(key), Identity("DC1MSP", _cert_pem(key)), ECDSASigner(key),
                        Timeouts(connect=0.3))
