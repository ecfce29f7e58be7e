"""The Gateway client's mutual TLS, Deliver TLS binding hash, event start positions and offline-signed event
requests, against in-process gRPC servers that record what the client sends (no network needed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.orderer import ab_pb2
from tls_pki import Pki, Recorder, key_pem, serve

from swarmfuse.client.gateway import (
    ConnectError,
    DeliverError,
    Gateway,
    IdentityError,
    InMemoryCheckpointer,
    Position,
    Timeouts,
    TlsClientCert,
    load_profile,
    tls_cert_hash,
)
from swarmfuse.client.gateway.proposal import new_header
from swarmfuse.network.protocol.identity import digest

MAX_BLOCK = 2**64 - 1


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.new()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _connect(pki: Pki, port: int, tls_client: TlsClientCert | None = None, connect_s: float = 2.0) -> Gateway:
    identity, signer, _ = pki.identity()
    return Gateway.connect(f"127.0.0.1:{port}", pki.ca_pem, identity, signer, Timeouts(connect=connect_s),
                           tls_client=tls_client)


def _first_block(gateway: Gateway, **options: object) -> common_pb2.Block:
    with gateway.network("ch").block_events(**options) as blocks:  # type: ignore[arg-type]
        return next(iter(blocks))


class _OfflineOnly:
    """A signer that must never be asked: the request is signed offline through its digest."""

    def sign(self, digest: bytes) -> bytes:
        raise AssertionError("the gateway tried to sign online")


def _verifies(key: ec.EllipticCurvePrivateKey, signature: bytes, message: bytes) -> bool:
    try:
        key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


# --- mutual TLS and the Deliver TLS binding hash ------------------------------------------------------------

def test_client_certificate_is_presented_and_its_hash_claimed_in_deliver(pki: Pki, recorder: Recorder) -> None:
    server, port = serve(pki, recorder, require_client_auth=True)
    tls_client = pki.client()
    try:
        with _connect(pki, port, tls_client) as gateway:
            assert _first_block(gateway, start_block=0).header.number == 0
    finally:
        server.stop(0)
    [seen_cert] = recorder.client_certs
    assert seen_cert is not None and x509.load_pem_x509_certificate(seen_cert) == x509.load_pem_x509_certificate(
        tls_client.cert_pem)
    der = x509.load_pem_x509_certificate(tls_client.cert_pem).public_bytes(serialization.Encoding.DER)
    channel_header, _, _ = recorder.envelope_parts()
    assert channel_header.tls_cert_hash == hashlib.sha256(der).digest() == tls_client.cert_hash == tls_cert_hash(
        tls_client.cert_pem)
    assert channel_header.type == common_pb2.DELIVER_SEEK_INFO


def test_without_a_client_certificate_a_mutual_tls_peer_is_refused_and_no_hash_is_claimed(
        pki: Pki, recorder: Recorder) -> None:
    strict, strict_port = serve(pki, recorder, require_client_auth=True)
    try:
        with pytest.raises(ConnectError, match="requires a client TLS certificate"):
            _connect(pki, strict_port, connect_s=0.5)
    finally:
        strict.stop(0)
    relaxed, relaxed_port = serve(pki, recorder, require_client_auth=False)
    try:
        with _connect(pki, relaxed_port) as gateway:
            _first_block(gateway, start_block=0)
    finally:
        relaxed.stop(0)
    channel_header, _, _ = recorder.envelope_parts()
    assert channel_header.tls_cert_hash == b"" and recorder.client_certs == [None]


def test_client_certificate_from_another_ca_is_refused_by_a_mutual_tls_peer(pki: Pki, recorder: Recorder) -> None:
    server, port = serve(pki, recorder, require_client_auth=True)
    try:
        with pytest.raises(ConnectError, match="did not accept the client TLS certificate"):
            _connect(pki, port, Pki.new("tlsca.rogue").client(), connect_s=0.5)
    finally:
        server.stop(0)
    assert recorder.envelopes == []


def _write_pair(folder: Path, name: str, pair: TlsClientCert) -> dict[str, str]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    return {"cert": str(cert), "key": str(key)}


def test_profile_tls_client_per_identity_or_for_the_org(pki: Pki, recorder: Recorder, tmp_path: Path) -> None:
    identity, _, key = pki.identity()
    (tmp_path / "id.pem").write_bytes(identity.credentials)
    (tmp_path / "id.key").write_bytes(key_pem(key))
    (tmp_path / "ca.pem").write_bytes(pki.ca_pem)
    user_pair, org_pair = pki.client("user-tls"), pki.client("org-tls")
    doc = {
        "mspid": "UnitMSP", "peer": {"endpoint": "127.0.0.1:1", "tls_ca_cert": str(tmp_path / "ca.pem")},
        "identities": {
            "user": {"cert": str(tmp_path / "id.pem"), "key": str(tmp_path / "id.key"),
                     "tls_client": _write_pair(tmp_path, "user", user_pair)},
            "admin": {"cert": str(tmp_path / "id.pem"), "key": str(tmp_path / "id.key")},
            "plain": {"cert": str(tmp_path / "id.pem"), "key": str(tmp_path / "id.key")},
        },
        "tls_client": _write_pair(tmp_path, "org", org_pair),
    }
    profile = tmp_path / "connection.json"
    profile.write_text(json.dumps(doc))
    assert load_profile(profile, "user").tls_client == user_pair
    assert load_profile(profile, "admin").tls_client == org_pair  # the org-wide pair when the identity has none
    del doc["tls_client"]
    profile.write_text(json.dumps(doc))
    assert load_profile(profile, "plain").tls_client is None
    # A profile with a pair connects with it to a peer that requires one.
    server, port = serve(pki, recorder, require_client_auth=True)
    doc["peer"]["endpoint"] = f"127.0.0.1:{port}"  # type: ignore[index]
    profile.write_text(json.dumps(doc))
    try:
        with Gateway.from_profile(profile, user="user", timeouts=Timeouts(connect=2.0)) as gateway:
            _first_block(gateway, start_block=0)
    finally:
        server.stop(0)
    assert recorder.envelope_parts()[0].tls_cert_hash == user_pair.cert_hash
    (tmp_path / "user.key").write_text("not a key")
    with pytest.raises(IdentityError, match="user.key is not an unencrypted PEM private key"):
        load_profile(profile, "user")
    (tmp_path / "user.crt").unlink()
    with pytest.raises(IdentityError, match="cannot read client TLS certificate"):
        load_profile(profile, "user")


# --- start positions ---------------------------------------------------------------------------------------

def _seek(recorder: Recorder) -> ab_pb2.SeekInfo:
    return ab_pb2.SeekInfo.FromString(recorder.envelope_parts()[2])


def test_block_events_start_at_the_next_commit_unless_a_start_is_given(pki: Pki, recorder: Recorder) -> None:
    server, port = serve(pki, recorder, require_client_auth=False)
    try:
        with _connect(pki, port) as gateway:
            _first_block(gateway)
            default = _seek(recorder)
            assert default.start.WhichOneof("Type") == "next_commit"
            assert default.stop.specified.number == MAX_BLOCK
            assert default.behavior == ab_pb2.SeekInfo.BLOCK_UNTIL_READY
            _first_block(gateway, start_block=5)
            assert _seek(recorder).start.specified.number == 5
            _first_block(gateway, start_block=5, checkpointer=_at(Position(7)))
            assert _seek(recorder).start.specified.number == 7  # the checkpoint wins over start_block
            _first_block(gateway, filtered=True)
            assert _seek(recorder).start.WhichOneof("Type") == "next_commit"
    finally:
        server.stop(0)


def _at(position: Position) -> InMemoryCheckpointer:
    checkpointer = InMemoryCheckpointer()
    if position.transaction_id is None:
        checkpointer.checkpoint_block(position.block_number - 1)  # type: ignore[operator]
    else:
        checkpointer.checkpoint_transaction(position.block_number, position.transaction_id)  # type: ignore[arg-type]
    assert checkpointer.position == position
    return checkpointer


def test_newest_block_asks_for_newest_to_newest(pki: Pki, recorder: Recorder) -> None:
    recorder.blocks = [common_pb2.Block(header=common_pb2.BlockHeader(number=41))]
    server, port = serve(pki, recorder, require_client_auth=False)
    try:
        with _connect(pki, port) as gateway:
            assert gateway.network("ch").newest_block().header.number == 41
            seek = _seek(recorder)
            assert (seek.start.WhichOneof("Type"), seek.stop.WhichOneof("Type")) == ("newest", "newest")
            recorder.blocks = []
            with pytest.raises(DeliverError, match="ended: SUCCESS"):
                gateway.network("ch").newest_block()
    finally:
        server.stop(0)


# --- offline signing of event requests ---------------------------------------------------------------------

def test_chaincode_events_request_is_signed_offline(pki: Pki, recorder: Recorder) -> None:
    identity, signer, key = pki.identity()
    server, port = serve(pki, recorder, require_client_auth=False, deliver=False, gateway=True)
    try:
        with Gateway.connect(f"127.0.0.1:{port}", pki.ca_pem, identity, _OfflineOnly(), Timeouts(connect=2.0)) as gateway:
            network = gateway.network("task1")
            unsigned = network.new_chaincode_events_request("swarmfuse", start_block=4)
            assert (unsigned.channel, unsigned.chaincode) == ("task1", "swarmfuse")
            request = network.load_chaincode_events_request(unsigned.to_bytes())  # shipped to the signer and back
            assert request.digest() == unsigned.digest()
            request.set_signature(signer.sign(request.digest()))
            with request.events() as events:
                event = next(iter(events))
            assert (event.block_number, event.transaction_id, event.event_name) == (9, "tx-9", "Put")
            with pytest.raises(AssertionError, match="sign online"):
                network.chaincode_events("swarmfuse")  # nothing signed offline: the (offline-only) signer is asked
    finally:
        server.stop(0)
    [sent] = recorder.events_requests
    assert sent.SerializeToString() == request.to_bytes()
    inner = gw.ChaincodeEventsRequest.FromString(sent.request)
    assert (inner.channel_id, inner.chaincode_id, inner.identity) == ("task1", "swarmfuse", identity.serialize())
    assert inner.start_position.specified.number == 4
    assert request.digest() == digest(sent.request) and _verifies(key, sent.signature, sent.request)


def test_chaincode_events_request_positions(pki: Pki) -> None:
    identity, signer, _ = pki.identity()
    server, port = serve(pki, Recorder(), require_client_auth=False, deliver=False, gateway=True)
    try:
        with Gateway.connect(f"127.0.0.1:{port}", pki.ca_pem, identity, signer, Timeouts(connect=2.0)) as gateway:
            network = gateway.network("task1")

            def inner(**options: object) -> gw.ChaincodeEventsRequest:
                request = network.new_chaincode_events_request("swarmfuse", **options)  # type: ignore[arg-type]
                return gw.ChaincodeEventsRequest.FromString(gw.SignedChaincodeEventsRequest.FromString(
                    request.to_bytes()).request)

            assert inner().start_position.WhichOneof("Type") == "next_commit"
            resumed = inner(start_block=1, checkpointer=_at(Position(6, "tx-6")))
            assert (resumed.start_position.specified.number, resumed.after_transaction_id) == (6, "tx-6")
    finally:
        server.stop(0)


def test_block_events_request_is_signed_offline_and_can_be_crafted(pki: Pki, recorder: Recorder) -> None:
    identity, signer, key = pki.identity()
    server, port = serve(pki, recorder, require_client_auth=True)
    tls_client = pki.client()
    try:
        with Gateway.connect(f"127.0.0.1:{port}", pki.ca_pem, identity, _OfflineOnly(), Timeouts(connect=2.0),
                             tls_client=tls_client) as gateway:
            network = gateway.network("ch")
            request = network.load_block_events_request(network.new_block_events_request(start_block=2).to_bytes())
            request.set_signature(signer.sign(request.digest()))
            with request.events() as blocks:
                next(iter(blocks))
            # An envelope built elsewhere (here: claiming another certificate's hash) is sent as given.
            _, header = new_header(common_pb2.DELIVER_SEEK_INFO, "ch", identity.serialize(), tls_cert_hash=b"\x01" * 32)
            seek = ab_pb2.SeekInfo(start=ab_pb2.SeekPosition(oldest=ab_pb2.SeekOldest()),
                                   stop=ab_pb2.SeekPosition(oldest=ab_pb2.SeekOldest()))
            payload = common_pb2.Payload(header=common_pb2.Header.FromString(header), data=seek.SerializeToString())
            envelope = common_pb2.Envelope(payload=payload.SerializeToString())
            envelope.signature = signer.sign(digest(envelope.payload))
            with network.load_block_events_request(envelope.SerializeToString()).events() as blocks:
                next(iter(blocks))
    finally:
        server.stop(0)
    first, crafted = recorder.envelopes
    assert first.SerializeToString() == request.to_bytes() and _verifies(key, first.signature, first.payload)
    assert recorder.envelope_parts(0)[0].tls_cert_hash == tls_client.cert_hash
    assert crafted == envelope and recorder.envelope_parts(1)[0].tls_cert_hash == b"\x01" * 32
