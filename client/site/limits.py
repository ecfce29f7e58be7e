"""What any caller can make a site agent do before a handler runs, bounded (an ASGI middleware).

In this order, for every HTTP request: the caller's org is the task org whose TLS CA signed its client
certificate, else 403; each org has a token bucket of requests, else 429 with ``Retry-After``; a request body
is read up to ``max_body`` bytes before anything parses it, else 413 (``Content-Length`` is judged before a
byte is read). Streamed uploads (a round's artefacts) are left to their handler, which bounds them by the
size the sender recorded on-chain. The org is handed to the handlers in the ASGI scope (:func:`caller_org`).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

ORG_KEY = "swarmfuse.org"


class TokenBucket:
    """``rate`` requests a second per key, up to ``burst`` at once (thread-safe)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0 when granted, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - when) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


def caller_org(scope: Scope) -> str | None:
    """The org :class:`RequestBounds` identified for this request."""
    return scope.get(ORG_KEY)


class RequestBounds:
    """The middleware (see the module)."""

    def __init__(self, app: App, *, org_of: Callable[[bytes | None], str | None], max_body: int,
                 bucket: TokenBucket, streamed: Callable[[str, str], bool]) -> None:
        """``org_of`` maps a client certificate (DER) to its org; ``streamed(method, path)`` tells the uploads
        whose bodies the handler bounds itself."""
        self.app, self._org_of, self.max_body, self.bucket, self._streamed = app, org_of, max_body, bucket, streamed
        self._orgs: dict[bytes, str | None] = {}  # certificate -> org: a certificate is judged once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        der = scope.get("extensions", {}).get("tls", {}).get("client_cert_der")
        org = self._org(der)
        if org is None:
            await _refuse(send, 403, "the client certificate is not from a TLS CA of this task's orgs")
            return
        wait = self.bucket.take(org)
        if wait > 0:
            await _refuse(send, 429, f"{org} sends more than {self.bucket.rate:g} requests a second",
                          {"retry-after": str(math.ceil(wait))})
            return
        scope[ORG_KEY] = org
        if self._streamed(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await _refuse(send, 413, f"the request body of {declared} bytes exceeds {self.max_body} bytes")
            return
        body = await self._read(receive)
        if body is None:
            await _refuse(send, 413, f"the request body exceeds {self.max_body} bytes")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _org(self, der: bytes | None) -> str | None:
        if not der:
            return None
        if der not in self._orgs:
            if len(self._orgs) > 4096:
                self._orgs.clear()
            self._orgs[der] = self._org_of(der)
        return self._orgs[der]

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` as soon as it passes ``max_body``."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
