"""The task's chaincode as one org sees it: typed calls through the org's Gateway connection.

Every submit waits for a valid commit; a refusal raises a :class:`~.refusals.LedgerRefused` of the
chaincode's status (:class:`~.refusals.LedgerConflict` for "already done" or "not now", ...), with the
chaincode's (or the gateway's) message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Self

from swarmfuse.chaincode.contracts.records import (
    Acknowledgement,
    Agreement,
    AgreementProposal,
    Alignment,
    ContributionTable,
    Exchange,
    ExchangeInput,
    Join,
    LeaderExtractor,
    Member,
    MemberView,
    ReleasePrivacy,
    Round,
    ScoringReply,
    ScoringRequest,
    ScoringView,
    Summary,
)
from swarmfuse.client.gateway import ChaincodeEvent, Checkpointer, Contract, Gateway, GatewayError
from swarmfuse.client.ledger.refusals import LedgerNotFound, refusal

logger = logging.getLogger(__name__)

CHAINCODE = "swarmfuse"
DEFAULT_MODEL_SPEC_SHA256 = hashlib.sha256(b"swarmfuse fusion head v1").hexdigest()
"""The model a round names when no agreement fixes one: the intermediate-fusion head of this version."""


class TaskLedger:
    """Transactions of the swarmfuse chaincode on one task channel, as one org."""

    def __init__(self, gateway: Gateway, task: str) -> None:
        self.gateway = gateway
        self.task = task
        self._network = gateway.network(task)
        self._contract: Contract = self._network.contract(CHAINCODE)
        self._timing_lock = threading.Lock()
        self.seconds = 0.0  # wall time spent waiting for the ledger (submits to commit, and queries)
        self.calls = 0

    def _timed(self, call: Callable[[], bytes]) -> bytes:
        start = time.perf_counter()
        try:
            return call()
        finally:
            with self._timing_lock:
                self.seconds += time.perf_counter() - start
                self.calls += 1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the Gateway connection (shared with whoever else holds it)."""
        self.gateway.close()

    @property
    def mspid(self) -> str:
        return self.gateway.identity.msp_id

    def submit(self, function: str, *args: str) -> Any:
        try:
            payload = self._timed(lambda: self._contract.submit_transaction(function, *args))
        except GatewayError as exc:
            raise refusal(function, exc) from exc
        return json.loads(payload) if payload else None

    def evaluate(self, function: str, *args: str) -> Any:
        try:
            payload = self._timed(lambda: self._contract.evaluate_transaction(function, *args))
        except GatewayError as exc:
            raise refusal(function, exc) from exc
        return json.loads(payload) if payload else None

    # --- the task, membership and summaries -----------------------------------------------------

    def deadline_window(self) -> timedelta:
        """The least time the task lets a deadline leave after an endorser's clock."""
        return timedelta(seconds=self.evaluate("Task:Get")["deadline_window_s"])

    def _found(self, function: str, *args: str) -> Any:
        """``evaluate``, with ``None`` for a record the chaincode does not have."""
        try:
            return self.evaluate(function, *args)
        except LedgerNotFound:
            return None

    def member(self, mspid: str) -> MemberView | None:
        found = self._found("Membership:Get", mspid)
        return MemberView.model_validate(found) if found is not None else None

    def summary(self, mspid: str, modality: str) -> Summary | None:
        """The latest data summary ``mspid`` published for ``modality``."""
        found = self._found("Summaries:Get", mspid, modality)
        return Summary.model_validate(found) if found is not None else None

    def register(self, profile: dict[str, Any]) -> Member:
        return Member.model_validate(self.submit("Membership:Register", _json(profile)))

    def publish_summary(self, summary: dict[str, Any]) -> Summary:
        return Summary.model_validate(self.submit("Summaries:Publish", _json(summary)))

    # --- the agreement --------------------------------------------------------------------------

    def agreement(self) -> Agreement | None:
        """The terms in force (``None`` while the founders agreed none)."""
        found = self._found("Agreement:Get")
        return Agreement.model_validate(found) if found is not None else None

    def propose_agreement(self, terms: dict[str, Any]) -> AgreementProposal:
        """Propose terms (a founder's own confirmation of them)."""
        return AgreementProposal.model_validate(self.submit("Agreement:Propose", _json(terms)))

    def confirm_agreement(self, agreement_sha256: str) -> AgreementProposal:
        return AgreementProposal.model_validate(self.submit("Agreement:Confirm", agreement_sha256))

    def agreement_proposal(self, agreement_sha256: str) -> AgreementProposal | None:
        found = self._found("Agreement:Proposal", agreement_sha256)
        return AgreementProposal.model_validate(found) if found is not None else None

    # --- rounds ---------------------------------------------------------------------------------

    def round_spec(self, roles: dict[str, list[str]], label_holder: str, deadline: datetime,
                   split_epochs: int = 0) -> dict[str, Any]:
        """A ``Rounds:Open`` spec for the participants in ``roles``, under the agreement in force: its hash, model
        and fusion method (without one: the intermediate head, and no agreement named); ``split_epochs`` of split
        learning of the feature sites' extractors first."""
        terms = self.agreement()
        spec: dict[str, Any] = {"participants": sorted(roles), "roles": roles, "label_holder": label_holder,
                                "method": "intermediate", "model_spec_sha256": DEFAULT_MODEL_SPEC_SHA256,
                                "deadline": deadline.isoformat()}
        if split_epochs:
            spec["split_epochs"] = split_epochs
        if terms is not None:
            spec |= {"agreement_sha256": terms.agreement_sha256, "model_spec_sha256": terms.model_spec_sha256,
                     "method": terms.fusion_method.value}
        return spec

    def open_round(self, round_id: str, spec: dict[str, Any]) -> Round:
        return Round.model_validate(self.submit("Rounds:Open", round_id, _json(spec)))

    def join(self, round_id: str) -> Join:
        """Consent to take part in the round (this org's own act)."""
        return Join.model_validate(self.submit("Rounds:Join", round_id))

    def round(self, round_id: str) -> Round:
        return Round.model_validate(self.evaluate("Rounds:Get", round_id))

    def rounds(self, page_size: int = 100) -> list[Round]:
        return [Round.model_validate(r) for r in self.pages("Audit:Rounds", page_size=page_size)]

    def record_alignment(self, round_id: str, entity_count: int, commitment: str) -> Alignment:
        return Alignment.model_validate(self.submit("Rounds:RecordAlignment", round_id, _json(
            {"entity_count": entity_count, "commitment_sha256": commitment})))

    def alignment(self, round_id: str) -> Alignment | None:
        found = self._found("Rounds:GetAlignment", round_id)
        return Alignment.model_validate(found) if found is not None else None

    def record_leader_extractor(self, round_id: str, extractor_sha256: str) -> LeaderExtractor:
        """As the leader of a split-learning round that is a feature site: record the ONNX SHA-256 of the extractor
        the round fine-tuned here (its features are fused, never sent)."""
        return LeaderExtractor.model_validate(self.submit("Rounds:RecordLeaderExtractor", round_id, extractor_sha256))

    def leader_extractor(self, round_id: str) -> LeaderExtractor | None:
        """The extractor the round's leader recorded as its own fine-tuned one (``None``: none yet)."""
        found = self._found("Rounds:GetLeaderExtractor", round_id)
        return LeaderExtractor.model_validate(found) if found is not None else None

    def record_exchange(self, round_id: str, receiver: str, kind: str, sha256: str, size: int,
                        entity_count: int, privacy: ReleasePrivacy | None = None,
                        extractor_sha256: str | None = None) -> Exchange:
        """Record a file this org sends (``privacy``: how a DP release was made, when it is one;
        ``extractor_sha256``: for features, the ONNX SHA-256 of the extractor that made them)."""
        exchange = ExchangeInput(receiver=receiver, kind=kind, sha256=sha256, bytes=size, entity_count=entity_count,
                                 privacy=privacy, extractor_onnx_sha256=extractor_sha256)
        return Exchange.model_validate(self.submit("Rounds:RecordExchange", round_id,
                                                   exchange.model_dump_json(exclude_none=True)))

    def exchanges(self, round_id: str) -> list[Exchange]:
        return [Exchange.model_validate(e) for e in self.pages("Audit:Exchanges", round_id)]

    def exchange(self, round_id: str, sender: str, receiver: str, kind: str) -> Exchange | None:
        for record in self.exchanges(round_id):
            if (record.sender, record.receiver, record.kind) == (sender, receiver, kind):
                return record
        return None

    def round_terms(self, rnd: Round) -> AgreementProposal | None:
        """The terms a round was opened under (``None``: under no agreement). A round naming terms the ledger does
        not hold is an error, never a round without terms: a site must not act as if no terms bound it."""
        if rnd.agreement_sha256 is None:
            return None
        terms = self.agreement_proposal(rnd.agreement_sha256)
        if terms is None:
            raise LedgerNotFound("Agreement:Proposal", f"round {rnd.round_id} names agreement "
                                 f"{rnd.agreement_sha256}, which the ledger does not hold")
        return terms

    def mark_fused(self, round_id: str, model_sha256: str, model_bytes: int, metrics: dict[str, Any],
                   deadline: datetime, contributions: ContributionTable | None) -> Round:
        """Publish the fused model and the contribution table; ``deadline`` ends the participants' window to
        acknowledge them."""
        table = contributions.model_dump_json() if contributions is not None else "null"
        return Round.model_validate(self.submit("Rounds:MarkFused", round_id, model_sha256, str(model_bytes),
                                                _json(metrics), json.dumps(deadline.isoformat()), table))

    def acknowledge(self, round_id: str, model_sha256: str, contribution_sha256: str | None) -> Acknowledgement:
        """Accept the model and the contribution table the round published (``None``: it published none)."""
        return Acknowledgement.model_validate(
            self.submit("Rounds:Acknowledge", round_id, model_sha256, contribution_sha256 or ""))

    def close(self, round_id: str) -> Round:
        return Round.model_validate(self.submit("Rounds:Close", round_id))

    def abort(self, round_id: str, reason: str) -> Round:
        """Vote to abort the round; the round as it stands after the vote."""
        return Round.model_validate(self.submit("Rounds:Abort", round_id, reason))

    # --- scoring --------------------------------------------------------------------------------

    def request_scoring(self, round_id: str, request_id: str, ids_sha256: str, count: int,
                        targets: Sequence[str]) -> ScoringRequest:
        return ScoringRequest.model_validate(self.submit("Scoring:Request", round_id, _json(
            {"request_id": request_id, "ids_sha256": ids_sha256, "entity_count": count, "targets": list(targets)})))

    def reply_scoring(self, round_id: str, request_id: str, sha256: str, size: int, count: int) -> ScoringReply:
        return ScoringReply.model_validate(self.submit("Scoring:Reply", round_id, request_id,
                                                       _json({"sha256": sha256, "bytes": size, "entity_count": count})))

    def scoring(self, round_id: str, request_id: str) -> ScoringView | None:
        """A scoring request with the replies recorded so far."""
        found = self._found("Scoring:Get", round_id, request_id)
        return ScoringView.model_validate(found) if found is not None else None

    # --- events ---------------------------------------------------------------------------------

    def events(self, checkpointer: Checkpointer, start_block: int | None = None) -> Iterator[ChaincodeEvent]:
        """The chaincode's events from the checkpoint (else ``start_block``); close the iterator to stop."""
        return self._network.chaincode_events(CHAINCODE, start_block=start_block, checkpointer=checkpointer)

    def pages(self, function: str, *args: str, page_size: int = 100) -> list[Any]:
        """Every item of a paginated query (``Audit:*``), following the bookmarks to the last page."""
        items: list[Any] = []
        bookmark = ""
        while True:
            page = self.evaluate(function, *args, str(page_size), bookmark)
            items += page["items"]
            bookmark = page.get("bookmark", "")
            if not bookmark or not page["items"]:
                return items


def _json(value: dict[str, Any] | Sequence[Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)

