"""A site agent's bounds before any handler runs (``RequestBounds``): an unknown client certificate is refused
(403), each org's request rate is bounded (429 with Retry-After), and a request body is never read past its
limit (413 judged on Content-Length before a byte is read, and on the bytes of a chunked body), while a
streamed upload is left to its handler."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from swarmfuse.client.site.limits import App, Receive, RequestBounds, Scope, Send, TokenBucket, caller_org

CERTS = {b"dc1-cert": "DC1MSP", b"dc2-cert": "DC2MSP"}
MAX_BODY = 1024


class Points(BaseModel):
    points: list[str]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _app(bucket: TokenBucket, parsed: list[int]) -> FastAPI:
    app = FastAPI()

    @app.post("/psi")
    def psi(body: Points, request: Request) -> dict[str, Any]:
        parsed.append(len(body.points))
        return {"org": caller_org(request.scope), "points": len(body.points)}

    @app.put("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"bytes": sum([len(chunk) async for chunk in request.stream()])}

    app.add_middleware(RequestBounds, org_of=CERTS.get, max_body=MAX_BODY, bucket=bucket,
                       streamed=lambda method, path: (method, path) == ("PUT", "/upload"))
    return app


def _with_certificate(app: App) -> App:
    """What uvicorn's TLS protocol does in the agent: the client certificate in the ASGI ``tls`` extension,
    here taken from an ``x-test-cert`` header."""
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            der = dict(scope["headers"]).get(b"x-test-cert")
            scope = {**scope, "extensions": {"tls": {"client_cert_der": der}}}
        await app(scope, receive, send)
    return wrapped


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def parsed() -> list[int]:
    return []


@pytest.fixture
def client(clock: Clock, parsed: list[int]) -> TestClient:
    return TestClient(_with_certificate(_app(TokenBucket(2.0, 3, clock=clock), parsed)))  # type: ignore[arg-type]


def test_the_caller_is_its_certificates_org(client: TestClient) -> None:
    reply = client.post("/psi", json={"points": ["a"]}, headers={"x-test-cert": "dc2-cert"})
    assert reply.status_code == 200 and reply.json() == {"org": "DC2MSP", "points": 1}
    for headers in ({"x-test-cert": "outsider"}, {}):
        refused = client.post("/psi", json={"points": ["a"]}, headers=headers)
        assert refused.status_code == 403 and "TLS CA" in refused.json()["detail"]


def test_an_oversized_body_is_refused_before_it_is_parsed(client: TestClient, parsed: list[int],
                                                           clock: Clock) -> None:
    dc1 = {"x-test-cert": "dc1-cert"}
    big = {"points": ["ab" * 32] * 20}  # about 1.4 kB
    assert client.post("/psi", json=big, headers=dc1).status_code == 413
    chunked = client.post("/psi", content=iter([b'{"points": [', b'"x",' * 400, b'"x"]}']), headers=dc1)
    clock.now += 10  # the rate is not what this test is about
    assert chunked.status_code == 413 and "exceeds 1024 bytes" in chunked.json()["detail"]
    assert parsed == []
    assert client.post("/psi", json={"points": ["x"] * 100}, headers=dc1).json()["points"] == 100
    # an upload's body is its handler's to bound (by the size the sender recorded on-chain)
    assert client.put("/upload", content=b"z" * 5000, headers=dc1).json() == {"bytes": 5000}


def test_each_org_has_its_own_request_rate(client: TestClient, clock: Clock) -> None:
    dc1, dc2 = {"x-test-cert": "dc1-cert"}, {"x-test-cert": "dc2-cert"}
    assert [client.post("/psi", json={"points": []}, headers=dc1).status_code for _ in range(3)] == [200] * 3
    limited = client.post("/psi", json={"points": []}, headers=dc1)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert client.post("/psi", json={"points": []}, headers=dc2).status_code == 200  # another org: its own bucket
    clock.now += 0.5  # one token back at 2 a second
    assert client.post("/psi", json={"points": []}, headers=dc1).status_code == 200
    assert client.post("/psi", json={"points": []}, headers=dc1).status_code == 429


def test_a_token_bucket_needs_a_rate_and_a_burst() -> None:
    for rate, burst in ((0.0, 1), (1.0, 0)):
        with pytest.raises(ValueError, match="positive rate"):
            TokenBucket(rate, burst)
