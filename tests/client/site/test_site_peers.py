"""The off-chain link between sites: an upload interrupted mid-stream is sent again whole, a download is bounded
as it arrives (fast, no network)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmfuse.client.site.link import CHUNK, HttpPeerLink, Peer, PeerError
from swarmfuse.client.site.tls import OrgResolver, SiteTls

LEADER = Peer("DC1MSP", "https://leader.example", "ab" * 32)
NOBODY = OrgResolver({})  # a test transport has no TLS, so nothing is pinned


def _tls(folder: Path) -> SiteTls:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "site")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return SiteTls(folder / "cert.pem", folder / "key.pem", folder / "cert.pem", folder / "key.pem", folder / "cert.pem")


def test_an_upload_cut_off_mid_stream_is_sent_again_from_its_first_byte(tmp_path: Path) -> None:
    data = bytes(range(256)) * (3 * CHUNK // 256 + 7)  # several chunks
    path = tmp_path / "features.npy"
    path.write_bytes(data)
    received: list[bytes] = []

    def peer(request: httpx.Request) -> httpx.Response:
        if not received:  # the first attempt: the body is read, then the connection drops
            received.append(request.read())
            raise httpx.RemoteProtocolError("connection reset", request=request)
        received.append(request.read())
        return httpx.Response(200, json={})

    link = HttpPeerLink(_tls(tmp_path), NOBODY, attempts=3, transport=httpx.MockTransport(peer))
    link.upload(LEADER, "r1", "features", path)
    assert len(received) == 2
    assert received[1] == data  # the whole file, not what was left of a spent stream


def test_an_upload_the_peer_never_takes_fails_with_a_peer_error(tmp_path: Path) -> None:
    path = tmp_path / "labels.npz"
    path.write_bytes(b"x" * 10)

    def peer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    link = HttpPeerLink(_tls(tmp_path), NOBODY, attempts=2, transport=httpx.MockTransport(peer))
    with pytest.raises(PeerError, match="PUT https://leader.example/rounds/r1/artefacts/labels: refused"):
        link.upload(LEADER, "r1", "labels", path)


def test_a_download_growing_past_its_bound_is_abandoned_as_it_arrives(tmp_path: Path) -> None:
    served: list[int] = []

    def endless() -> Iterator[bytes]:
        for _ in range(1000):  # a leader that never stops sending
            served.append(CHUNK)
            yield b"m" * CHUNK

    def peer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    link = HttpPeerLink(_tls(tmp_path), NOBODY, attempts=1, transport=httpx.MockTransport(peer))
    dest = tmp_path / "model.npz"
    with pytest.raises(PeerError, match=f"passes {3 * CHUNK} bytes; abandoned"):
        link.download(LEADER, "r1", "model", dest, max_bytes=3 * CHUNK)
    assert len(served) <= 5 and not dest.exists() and not dest.with_name("model.npz.part").exists()
    small = HttpPeerLink(_tls(tmp_path), NOBODY, transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"ok")))
    assert small.download(LEADER, "r1", "model", dest, max_bytes=2).read_bytes() == b"ok"
