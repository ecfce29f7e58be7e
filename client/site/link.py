"""How an agent calls other sites: HTTPS with its client certificate, each site pinned to what its org
published on-chain.

A site is trusted only with the TLS server certificate whose SHA-256 its org published in its member profile,
and only if that certificate was issued by the org's TLS CA: the first contact reads the certificate the
endpoint presents (a bare handshake, nothing sent), checks both, and from then on the connections to that
site trust exactly that certificate, so a handshake with anything else (another member that took the port
while the site was down, another certificate of the same org) fails before a byte of a request is sent.

Transfers stream; a download goes to a ``.part`` file renamed into place only when complete, so a
partial file is never used; an interrupted transfer is retried from the start (bounded attempts).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from swarmfuse.client.site.tls import OrgResolver, SiteTls
from swarmfuse.errors import SwarmfuseError
from swarmfuse.files import open_private
from swarmfuse.retry import policy

if TYPE_CHECKING:
    from tenacity import Retrying

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


class PeerError(SwarmfuseError, RuntimeError):
    """Another site refused a request or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class Peer:
    """Another site as the ledger names it: its org, its agent's URL, and the SHA-256 (hex) of the TLS server
    certificate its org published on-chain."""

    mspid: str
    url: str
    tls_fingerprint: str


class HttpPeerLink:
    """The off-chain calls of :class:`~swarmfuse.client.site.agent.SiteAgent` over mutual TLS, pinned (see the
    module)."""

    def __init__(self, tls: SiteTls, resolver: OrgResolver, timeout: float = 60.0, attempts: int = 4,
                 transport: httpx.BaseTransport | None = None) -> None:
        """``resolver`` tells which task org's TLS CA issued a certificate; ``attempts`` per call on transport
        errors; ``transport`` replaces httpx's own, and with it TLS and the pinning (a test double)."""
        self._tls, self._resolver, self._timeout, self._attempts = tls, resolver, timeout, attempts
        self._transport = transport
        self._clients: dict[Peer, httpx.Client] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def _client(self, peer: Peer) -> httpx.Client:
        """The connection pool to ``peer``, trusting exactly the certificate its org published."""
        with self._lock:
            found = self._clients.get(peer)
        if found is not None:
            return found
        if self._transport is not None:
            client = httpx.Client(timeout=self._timeout, transport=self._transport)
        else:
            client = httpx.Client(verify=self._pinned(peer), timeout=self._timeout)
        with self._lock:
            return self._clients.setdefault(peer, client)

    def _pinned(self, peer: Peer) -> ssl.SSLContext:
        der = self._presented(peer)
        digest = hashlib.sha256(der).hexdigest()
        if digest != peer.tls_fingerprint:
            raise PeerError(f"{peer.url} presents a TLS certificate with SHA-256 {digest}, not the one {peer.mspid} "
                            f"published on-chain ({peer.tls_fingerprint}): refused")
        issuer = self._resolver.org_of(der)
        if issuer != peer.mspid:
            raise PeerError(f"{peer.url} presents a TLS certificate not issued by {peer.mspid}'s TLS CA "
                            f"({'by ' + issuer + ' instead' if issuer else 'by no task org'}): refused")
        pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()
        context = ssl.create_default_context(cadata=pem)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the pinned certificate alone is the trust anchor
        context.load_cert_chain(str(self._tls.client_cert), str(self._tls.client_key))
        return context

    def _presented(self, peer: Peer) -> bytes:
        """The DER certificate ``peer``'s endpoint presents in a handshake (verified by the caller; nothing sent)."""
        url = httpx.URL(peer.url)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.load_cert_chain(str(self._tls.client_cert), str(self._tls.client_key))
        try:
            with socket.create_connection((url.host, url.port or 443), timeout=self._timeout) as raw, \
                    context.wrap_socket(raw, server_hostname=url.host) as tls:
                der = tls.getpeercert(binary_form=True)
        except OSError as exc:
            raise PeerError(f"{peer.mspid} at {peer.url} cannot be reached: {exc}") from exc
        if not der:
            raise PeerError(f"{peer.url} presented no TLS certificate")
        return der

    def _retrying(self) -> Retrying:
        return policy(httpx.TransportError, attempts=self._attempts, first_wait=0.5, max_wait=5.0)

    def _call(self, method: str, peer: Peer, path: str, body: Callable[[], Iterator[bytes]] | None = None,
              **kwargs: Any) -> httpx.Response:
        """One request, retried on transport errors; ``body`` makes the streamed content anew for each attempt
        (a stream half-sent by a failed attempt cannot be sent again)."""
        url = f"{peer.url}{path}"
        client = self._client(peer)
        try:
            for attempt in self._retrying():
                with attempt:
                    if body is not None:
                        kwargs["content"] = body()
                    response = client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise PeerError(f"{method} {url}: {exc}") from exc
        if response.status_code >= 400:
            raise PeerError(f"{method} {url} refused ({response.status_code}): {_detail(response)}")
        return response

    def psi(self, peer: Peer, round_id: str, blinded: list[str]) -> dict[str, Any]:
        return self._call("POST", peer, f"/rounds/{round_id}/psi", json={"points": blinded}).json()

    def psi_confirm(self, peer: Peer, round_id: str, answer: list[str]) -> None:
        self._call("POST", peer, f"/rounds/{round_id}/psi/confirm", json={"points": answer})

    def alignment(self, peer: Peer, round_id: str) -> dict[str, Any]:
        return self._call("GET", peer, f"/rounds/{round_id}/alignment").json()

    def features(self, peer: Peer, round_id: str, request_id: str, salt: bytes, ids: list[str]) -> Any:
        """Another participant's features of ``ids`` (float32 ``[n, d]``) for recorded scoring request
        ``request_id`` (``salt`` opens its commitment)."""
        import numpy as np

        body = {"request_id": request_id, "salt": salt.hex(), "ids": ids}
        reply = self._call("POST", peer, f"/rounds/{round_id}/features", json=body).json()
        return np.frombuffer(base64.b64decode(reply["float32"]), dtype=np.float32).reshape(reply["shape"])

    def status(self, peer: Peer) -> dict[str, Any]:
        return self._call("GET", peer, "/status").json()

    def upload(self, peer: Peer, round_id: str, kind: str, path: Path) -> None:
        """Stream ``path`` to the receiver, which keeps it only if it matches the on-chain record (a retry sends
        the file again from its first byte)."""
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        self._call("PUT", peer, f"/rounds/{round_id}/artefacts/{kind}", body=chunks,
                   headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
        logger.info("round %s: sent %s (%d bytes) to %s", round_id, kind, size, peer.mspid)

    def download(self, peer: Peer, round_id: str, kind: str, dest: Path, max_bytes: int) -> Path:
        """Fetch a round's file into ``dest`` (via ``dest.part``, renamed only once complete); a file growing past
        ``max_bytes`` is abandoned as it arrives, never written beyond that."""
        url = f"{peer.url}/rounds/{round_id}/artefacts/{kind}"
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        client = self._client(peer)
        try:
            for attempt in self._retrying():
                with attempt, client.stream("GET", url) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise PeerError(f"GET {url} refused ({response.status_code}): {_detail(response)}")
                    size = 0
                    with open_private(part) as handle:
                        for chunk in response.iter_bytes(CHUNK):
                            size += len(chunk)
                            if size > max_bytes:
                                raise PeerError(f"GET {url}: the file passes {max_bytes} bytes; abandoned")
                            handle.write(chunk)
                        handle.flush()
                        os.fsync(handle.fileno())
        except (httpx.TransportError, PeerError) as exc:
            part.unlink(missing_ok=True)
            if isinstance(exc, PeerError):
                raise
            raise PeerError(f"GET {url}: {exc}") from exc
        part.replace(dest)
        return dest


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:500]
