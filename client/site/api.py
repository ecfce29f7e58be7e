"""The site agent's HTTPS service (FastAPI, mutual TLS with the task orgs' TLS CAs).

Every caller is identified by its client certificate: the org whose TLS CA signed it; before any handler
runs, each org's request rate and every request body are bounded (:mod:`swarmfuse.client.site.limits`), and
uvicorn serves at most ``MAX_CONCURRENT`` requests at once (503 beyond). Off-chain round traffic (alignment
messages, feature and label files, the model) is accepted only from that round's participants; a file is kept
only when its SHA-256 and size match the sender's on-chain exchange record (each upload streams to a private
temp file of its own, one upload of a (round, sender, kind) at a time, renamed only once verified:
:mod:`swarmfuse.client.site.inbox`). Operator
endpoints (``/status``) answer the site's own org only. OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from uvicorn.protocols.http.h11_impl import H11Protocol

from swarmfuse.chaincode.contracts.records import FEATURES_KIND, GRADIENTS_KIND, Round, kind_epoch
from swarmfuse.client.site.agent import MODEL_KIND, SiteAgent
from swarmfuse.client.site.alignment import AlignmentError, LeaderSession
from swarmfuse.client.site.inbox import ArtefactRejected, Inbox
from swarmfuse.client.site.limits import RequestBounds, TokenBucket, caller_org
from swarmfuse.client.site.predict import reply_sha256, scoring_commitment
from swarmfuse.client.site.site import SiteError
from swarmfuse.client.site.tls import OrgResolver, SiteTls

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 << 20
"""A JSON request body (a PSI list of up to about a million blinded IDs); uploads are bounded by their record."""
REQUESTS_PER_S = 20.0
REQUEST_BURST = 200
MAX_CONCURRENT = 64
ROUND_CACHE_S = 1.0
KINDS = ("features", "labels")
"""What participants send the leader; in split learning the leader sends each feature site its ``gradients.<e>``."""
_UPLOAD = re.compile(r"/rounds/[^/]+/artefacts/[^/]+")


class Points(BaseModel):
    points: list[str]


class ScoringCall(BaseModel):
    """Features asked for a recorded scoring request: its ID, the salt that opens its commitment, the IDs."""

    request_id: str
    salt: str
    ids: list[str]


class _PeerCertProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol that hands the TLS client certificate to the app (ASGI ``tls`` extension)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        app = self.app

        async def with_peer(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                            send: Callable[[Any], Awaitable[None]]) -> None:
            if scope["type"] == "http":
                scope = {**scope, "extensions": {**scope.get("extensions", {}), "tls": {"client_cert_der": der}}}
            await app(scope, receive, send)

        self.app = with_peer  # type: ignore[assignment]


def create_app(agent: SiteAgent, resolver: OrgResolver, bucket: TokenBucket | None = None) -> FastAPI:
    """The agent's API; ``bucket`` bounds each org's request rate (default ``REQUESTS_PER_S``, ``REQUEST_BURST``)."""
    app = FastAPI(title=f"swarmfuse site agent {agent.site.org_name}", version="1",
                  description="Off-chain exchange of one data centre (mutual TLS), and its operator API.")
    app.add_middleware(RequestBounds, org_of=resolver.org_of, max_body=MAX_BODY_BYTES,
                       bucket=bucket or TokenBucket(REQUESTS_PER_S, REQUEST_BURST),
                       streamed=lambda method, path: method == "PUT" and _UPLOAD.fullmatch(path) is not None)
    leader_sessions: dict[str, LeaderSession] = {}
    inbox = Inbox(agent.store, agent.site.round_dir)

    def caller(request: Request) -> str:
        org = caller_org(request.scope)
        if org is None:  # RequestBounds identified every request it let through
            raise HTTPException(403, "the client certificate is not from a TLS CA of this task's orgs")
        return org

    rounds_seen: dict[str, tuple[float, Round]] = {}

    def current_round(round_id: str, need_model: bool = False) -> Round:
        """The round's record, re-read from the ledger at most once a second (a burst of requests shares it),
        or at once when the caller needs the published model and the kept record has none yet."""
        seen = rounds_seen.get(round_id)
        stale = seen is None or time.monotonic() - seen[0] > ROUND_CACHE_S
        if stale or (need_model and seen[1].model_sha256 is None):  # type: ignore[index]
            seen = rounds_seen[round_id] = (time.monotonic(), agent.ledger.round(round_id))
        return seen[1]

    def participant_round(request: Request, round_id: str, need_model: bool = False) -> tuple[str, Round]:
        org = caller(request)
        rnd = current_round(round_id, need_model)
        if org not in rnd.participants:
            raise HTTPException(403, f"{org} is not a participant of round {round_id}")
        return org, rnd

    def leader_session(rnd: Round) -> LeaderSession:
        if rnd.leader != agent.mspid:
            raise HTTPException(409, f"this site is not the leader of round {rnd.round_id}")
        if not agent.store.action_done(rnd.round_id, "join"):  # declined, or its agent has not joined yet
            raise HTTPException(409, f"this site has not joined round {rnd.round_id}")
        found = leader_sessions.get(rnd.round_id)
        if found is None:
            found = agent.leader_session(rnd)
            leader_sessions[rnd.round_id] = found
        return found

    @app.get("/status", summary="What this site holds and is doing (its own org only)")
    def status(request: Request) -> dict[str, Any]:
        if caller(request) != agent.mspid:
            raise HTTPException(403, "the operator API answers the site's own org only")
        return agent.status()

    @app.post("/rounds/{round_id}/psi", summary="Alignment step 2 (leader): reblind a participant's points")
    def psi(round_id: str, body: Points, request: Request) -> dict[str, list[str]]:
        org, rnd = participant_round(request, round_id)
        try:
            declared = agent.declared(rnd, org)
        except SiteError as exc:  # no summary on-chain: nothing to bound the list by
            raise HTTPException(409, str(exc)) from exc
        try:
            return leader_session(rnd).respond(org, body.points, declared)
        except AlignmentError as exc:
            raise HTTPException(422, str(exc)) from exc

    @app.post("/rounds/{round_id}/psi/confirm", summary="Alignment step 3 (leader): a participant's answer")
    def psi_confirm(round_id: str, body: Points, request: Request) -> dict[str, str]:
        org, rnd = participant_round(request, round_id)
        try:
            leader_session(rnd).confirm(org, body.points)
        except AlignmentError as exc:
            raise HTTPException(422, str(exc)) from exc
        agent.poke(round_id)
        return {"status": "ok"}

    @app.get("/rounds/{round_id}/alignment", summary="Alignment step 4 (leader): positions and salt")
    def alignment(round_id: str, request: Request) -> dict[str, Any]:
        org, rnd = participant_round(request, round_id)
        session = leader_session(rnd)
        if not agent.store.action_done(round_id, "alignment"):
            raise HTTPException(409, f"the alignment of round {round_id} is not recorded yet")
        aligned = agent.aligned(round_id)
        try:
            return {"salt": session.salt.hex(), "positions": session.positions_for(org, aligned)}
        except AlignmentError as exc:
            raise HTTPException(409, str(exc)) from exc

    @app.post("/rounds/{round_id}/features",
              summary="Features of the entities of a recorded scoring request, to score them with the round's model")
    def features(round_id: str, body: ScoringCall, request: Request) -> dict[str, Any]:
        org, rnd = participant_round(request, round_id, need_model=True)
        scoring = agent.ledger.scoring(round_id, body.request_id)
        if scoring is None:
            raise HTTPException(409, f"no scoring request {body.request_id!r} of round {round_id} is on the ledger")
        recorded = scoring.request
        if recorded.requester != org or agent.mspid not in recorded.targets:
            raise HTTPException(403, f"scoring request {body.request_id!r} is not {org}'s to {agent.mspid}")
        try:
            salt = bytes.fromhex(body.salt)
        except ValueError:
            raise HTTPException(422, "the salt is not hexadecimal") from None
        if len(set(body.ids)) != len(body.ids) or len(body.ids) != recorded.entity_count or \
                scoring_commitment(salt, body.ids) != recorded.ids_sha256:
            raise HTTPException(422, f"the IDs are not the {recorded.entity_count} the request committed to")
        modality = rnd.roles[agent.mspid][0]
        try:
            values = np.asarray(agent.features_for(round_id, modality, body.ids), dtype=np.float32)
        except SiteError as exc:
            raise HTTPException(404, str(exc)) from exc
        digest = reply_sha256(values)
        mine = [r for r in scoring.replies if r.sender == agent.mspid]
        if not mine:
            agent.ledger.reply_scoring(round_id, body.request_id, digest, values.nbytes, len(body.ids))
        elif mine[0].sha256 != digest:
            raise HTTPException(409, f"this site already replied to {body.request_id!r} with other features")
        return {"shape": list(values.shape), "float32": base64.b64encode(values.tobytes()).decode()}

    @app.put("/rounds/{round_id}/artefacts/{kind}",
             summary="Receive a participant's features or labels (leader), or the leader's gradients (split learning)")
    async def receive(round_id: str, kind: str, request: Request) -> dict[str, Any]:
        base, epoch = kind_epoch(kind)
        if (base not in KINDS) if epoch is None else (base not in (FEATURES_KIND, GRADIENTS_KIND)):
            raise HTTPException(404, f"no artefact kind {kind!r}; expected one of {', '.join(KINDS)}, features.<epoch> "
                                     "or gradients.<epoch>")
        org, rnd = await asyncio.to_thread(participant_round, request, round_id)
        if base == GRADIENTS_KIND:
            if org != rnd.leader:
                raise HTTPException(409, f"gradients of round {round_id} come from its leader {rnd.leader}")
        elif rnd.leader != agent.mspid:
            raise HTTPException(409, f"files of round {round_id} go to its leader {rnd.leader}")
        expected = await asyncio.to_thread(agent.ledger.exchange, round_id, org, agent.mspid, kind)
        if expected is None:
            raise HTTPException(409, f"no {kind} exchange from {org} to {agent.mspid} is recorded on-chain")
        try:
            await inbox.accept(expected, request.stream())
        except ArtefactRejected as exc:
            raise HTTPException(422, str(exc)) from exc
        agent.poke(round_id)
        return {"status": "verified", "sha256": expected.sha256, "bytes": expected.bytes}

    @app.get("/rounds/{round_id}/artefacts/model", summary="The fused model of a round (participants only)")
    def model(round_id: str, request: Request) -> FileResponse:
        _, rnd = participant_round(request, round_id, need_model=True)
        path = agent.model_path(round_id)
        if rnd.leader != agent.mspid or rnd.model_sha256 is None or not path.exists():
            raise HTTPException(404, f"this site has no published model of round {round_id}")
        return FileResponse(path, media_type="application/octet-stream", filename=f"{round_id}-{MODEL_KIND}.npz")

    return app


def serve(app: FastAPI, host: str, port: int, tls: SiteTls) -> uvicorn.Server:
    """A uvicorn server requiring client certificates from the task orgs' TLS CAs (call ``run`` on it)."""
    config = uvicorn.Config(
        app, host=host, port=port, ssl_certfile=str(tls.server_cert), ssl_keyfile=str(tls.server_key),
        ssl_ca_certs=str(tls.trust), ssl_cert_reqs=ssl.CERT_REQUIRED, http=_PeerCertProtocol, log_level="warning",
        limit_concurrency=MAX_CONCURRENT,
    )
    return uvicorn.Server(config)
