"""Pinned peers: a site agent talks to another site only over the TLS certificate that site's org published
on-chain, issued by that org's TLS CA. Real HTTPS servers on 127.0.0.1: a member that took the port, another
certificate of the same org, and a certificate swapped in after the first contact are all refused before a
request reaches them."""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tls_pki import Pki

from swarmfuse.client.site.link import HttpPeerLink, Peer, PeerError
from swarmfuse.client.site.tls import OrgResolver, SiteTls


class Site:
    """An HTTPS server presenting one certificate, requiring client certificates of ``clients``; it records the
    paths it was asked for."""

    def __init__(self, folder: Path, pair: tuple[bytes, bytes], clients: Pki, port: int = 0) -> None:
        key, cert = folder / "key.pem", folder / "cert.pem"
        folder.mkdir(parents=True, exist_ok=True)
        key.write_bytes(pair[0])
        cert.write_bytes(pair[1])
        self.asked: list[str] = []
        asked = self.asked

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked.append(self.path)
                body = json.dumps({"ok": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=clients.ca_pem.decode())
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fingerprint(pair: tuple[bytes, bytes]) -> str:
    der = x509.load_pem_x509_certificate(pair[1]).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def orgs() -> dict[str, Pki]:
    return {name: Pki.new(f"tlsca.{name.lower()}") for name in ("DC1", "DC2", "DC3")}


@pytest.fixture
def link(orgs: dict[str, Pki], tmp_path: Path) -> Iterator[HttpPeerLink]:
    """DC3's link (its client pair from DC3's TLS CA)."""
    mine = orgs["DC3"].client("site.dc3")
    (tmp_path / "client.crt").write_bytes(mine.cert_pem)
    (tmp_path / "client.key").write_bytes(mine.key_pem)
    tls = SiteTls(tmp_path / "unused", tmp_path / "unused", tmp_path / "client.crt", tmp_path / "client.key",
                  tmp_path / "unused")
    resolver = OrgResolver({f"{name}MSP": pki.ca_cert for name, pki in orgs.items()})
    opened = HttpPeerLink(tls, resolver, timeout=5.0, attempts=2)
    yield opened
    opened.close()


def test_the_site_its_org_published_is_reached(orgs: dict[str, Pki], link: HttpPeerLink, tmp_path: Path) -> None:
    genuine = Site(tmp_path / "dc1", orgs["DC1"].server, orgs["DC3"])
    try:
        assert link.status(Peer("DC1MSP", genuine.url, fingerprint(orgs["DC1"].server))) == {"ok": True}
        assert genuine.asked == ["/status"]
    finally:
        genuine.stop()


def test_another_member_on_the_port_is_refused_before_it_hears_anything(orgs: dict[str, Pki], link: HttpPeerLink,
                                                                        tmp_path: Path) -> None:
    impostor = Site(tmp_path / "dc2", orgs["DC2"].server, orgs["DC3"])  # DC2 took DC1's port
    try:
        with pytest.raises(PeerError, match="not the one DC1MSP published on-chain"):
            link.status(Peer("DC1MSP", impostor.url, fingerprint(orgs["DC1"].server)))
        # even a record naming the impostor's own certificate: not issued by DC1's TLS CA
        with pytest.raises(PeerError, match="not issued by DC1MSP's TLS CA \\(by DC2MSP instead\\)"):
            link.status(Peer("DC1MSP", impostor.url, fingerprint(orgs["DC2"].server)))
        assert impostor.asked == []
    finally:
        impostor.stop()


def test_a_certificate_swapped_in_after_the_first_contact_fails_the_handshake(orgs: dict[str, Pki],
                                                                             link: HttpPeerLink,
                                                                             tmp_path: Path) -> None:
    published = orgs["DC1"].server
    genuine = Site(tmp_path / "dc1", published, orgs["DC3"])
    peer = Peer("DC1MSP", genuine.url, fingerprint(published))
    assert link.status(peer) == {"ok": True}
    genuine.stop()
    other_of_dc1 = Pki(orgs["DC1"].ca_cert, orgs["DC1"].ca_key).server  # same CA, another certificate
    swapped = Site(tmp_path / "swapped", other_of_dc1, orgs["DC3"], port=genuine.port)
    try:
        with pytest.raises(PeerError, match="certificate verify failed"):
            link.status(peer)
        assert swapped.asked == []
    finally:
        swapped.stop()


def test_a_site_that_is_down_is_named(orgs: dict[str, Pki], link: HttpPeerLink, tmp_path: Path) -> None:
    gone = Site(tmp_path / "dc1", orgs["DC1"].server, orgs["DC3"])
    gone.stop()
    with pytest.raises(PeerError, match="DC1MSP at .* cannot be reached"):
        link.status(Peer("DC1MSP", gone.url, fingerprint(orgs["DC1"].server)))
