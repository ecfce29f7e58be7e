"""How an agent calls other sites: HTTPS with its client certificate, trusting the task orgs' TLS CAs.

Transfers stream; a download goes to a ``.part`` file renamed into place only when complete, so a
partial file is never used; an interrupted transfer is retried from the start (bounded attempts).
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from swarmfuse.client.site.identity import SiteTls
from swarmfuse.files import open_private

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


class PeerError(RuntimeError):
    """Another site refused a request or could not be reached; the message says which and why."""


class HttpPeerLink:
    """The off-chain calls of :class:`~swarmfuse.client.site.agent.SiteAgent` over mutual TLS."""

    def __init__(self, tls: SiteTls, timeout: float = 60.0, attempts: int = 4,
                 transport: httpx.BaseTransport | None = None) -> None:
        """``attempts`` per call on transport errors; ``transport`` replaces httpx's own (a proxy, a test double)."""
        context = ssl.create_default_context(cafile=str(tls.trust))
        context.load_cert_chain(str(tls.client_cert), str(tls.client_key))
        self._client = httpx.Client(verify=context, timeout=timeout, transport=transport)
        self._attempts = attempts

    def close(self) -> None:
        self._client.close()

    def _retrying(self) -> Retrying:
        return Retrying(retry=retry_if_exception_type(httpx.TransportError), stop=stop_after_attempt(self._attempts),
                        wait=wait_exponential(multiplier=0.5, max=5.0), reraise=True)

    def _call(self, method: str, url: str, body: Callable[[], Iterator[bytes]] | None = None,
              **kwargs: Any) -> httpx.Response:
        """One request, retried on transport errors; ``body`` makes the streamed content anew for each attempt
        (a stream half-sent by a failed attempt cannot be sent again)."""
        try:
            for attempt in self._retrying():
                with attempt:
                    if body is not None:
                        kwargs["content"] = body()
                    response = self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise PeerError(f"{method} {url}: {exc}") from exc
        if response.status_code >= 400:
            raise PeerError(f"{method} {url} refused ({response.status_code}): {_detail(response)}")
        return response

    def psi(self, endpoint: str, round_id: str, blinded: list[str]) -> dict[str, Any]:
        return self._call("POST", f"{endpoint}/rounds/{round_id}/psi", json={"points": blinded}).json()

    def psi_confirm(self, endpoint: str, round_id: str, answer: list[str]) -> None:
        self._call("POST", f"{endpoint}/rounds/{round_id}/psi/confirm", json={"points": answer})

    def alignment(self, endpoint: str, round_id: str) -> dict[str, Any]:
        return self._call("GET", f"{endpoint}/rounds/{round_id}/alignment").json()

    def features(self, endpoint: str, round_id: str, ids: list[str]) -> Any:
        """Another participant's features of ``ids`` (float32 ``[n, d]``), for scoring with the round's model."""
        import numpy as np

        reply = self._call("POST", f"{endpoint}/rounds/{round_id}/features", json={"ids": ids}).json()
        return np.frombuffer(base64.b64decode(reply["float32"]), dtype=np.float32).reshape(reply["shape"])

    def status(self, endpoint: str) -> dict[str, Any]:
        return self._call("GET", f"{endpoint}/status").json()

    def upload(self, endpoint: str, round_id: str, kind: str, path: Path) -> None:
        """Stream ``path`` to the receiver, which keeps it only if it matches the on-chain record (a retry sends
        the file again from its first byte)."""
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        self._call("PUT", f"{endpoint}/rounds/{round_id}/artefacts/{kind}", body=chunks,
                   headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
        logger.info("round %s: sent %s (%d bytes) to %s", round_id, kind, size, endpoint)

    def download(self, endpoint: str, round_id: str, kind: str, dest: Path, max_bytes: int) -> Path:
        """Fetch a round's file into ``dest`` (via ``dest.part``, renamed only once complete); a file growing past
        ``max_bytes`` is abandoned as it arrives, never written beyond that."""
        url = f"{endpoint}/rounds/{round_id}/artefacts/{kind}"
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            for attempt in self._retrying():
                with attempt, self._client.stream("GET", url) as response:
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
