"""``Audit``: paginated, read-only views of everything the task recorded."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from pydantic import BaseModel

from swarmfuse.chaincode.contract import BadRequest, Context, transaction
from swarmfuse.chaincode.contract.canonical import to_plain
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.consortium import READERS, ConsortiumContract, load_standings
from swarmfuse.chaincode.contracts.fields import Identifier, Modality, MspId, PageSize
from swarmfuse.chaincode.contracts.records import (
    Acknowledgement,
    Activity,
    Exchange,
    Member,
    Registration,
    Round,
    Summary,
)
from swarmfuse.chaincode.contracts.rounds import round_view

FORBIDDEN = "Forbidden: caller is not registered nor an auditor"
BAD_PAGE = "BadRequest: page size outside 1..100 or malformed bookmark"


class Page(BaseModel):
    """One page of results; pass ``bookmark`` back for the next page (empty after the last)."""

    items: list[Any]
    bookmark: str


class StateEntry(BaseModel):
    """One key of the namespace and the SHA-256 (hex) of the value stored under it."""

    key: str
    sha256: str


class HistoryEntry(BaseModel):
    tx_id: str
    timestamp: str
    is_delete: bool
    value: Any


def _encode_bookmark(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode() if raw else ""


def _decode_bookmark(bookmark: str) -> str:
    try:
        return base64.b64decode(bookmark.encode(), altchars=b"-_", validate=True).decode() if bookmark else ""
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"malformed bookmark {bookmark!r}") from exc


def _scan_page(
    ctx: Context, object_type: str, attributes: list[str], model: type[BaseModel], page_size: int, bookmark: str
) -> Page:
    start = _decode_bookmark(bookmark)
    prefix = ctx.key(object_type, *attributes)
    if start and not start.startswith(prefix):
        raise BadRequest("the bookmark belongs to another query")
    page = ctx.stub.get_state_by_partial_composite_key_with_pagination(object_type, attributes, page_size, start)
    items = [to_plain(model.model_validate_json(kv.value)) for kv in page.items]
    return Page(items=items, bookmark=_encode_bookmark(page.bookmark))


def _history_page(ctx: Context, key: str, page_size: int, bookmark: str) -> Page:
    offset_text = _decode_bookmark(bookmark) or "0"
    if not offset_text.isdigit():
        raise BadRequest(f"malformed bookmark {bookmark!r}")
    offset = int(offset_text)
    entries = list(ctx.stub.get_history_for_key(key))
    chosen = entries[offset : offset + page_size]
    items = [
        HistoryEntry(
            tx_id=e.tx_id,
            timestamp=keys.timestamp_text(e.timestamp),
            is_delete=e.is_delete,
            value=None if e.is_delete else json.loads(e.value),
        ).model_dump(mode="json")
        for e in chosen
    ]
    following = offset + page_size
    return Page(items=items, bookmark=_encode_bookmark(str(following)) if following < len(entries) else "")


def _digest_position(bookmark: str) -> tuple[int, str]:
    """(scan phase, start key) of a :meth:`Audit.state_digest` bookmark: phase 0 is the plain keys, phase
    i ≥ 1 the composite keys of ``keys.OBJECT_TYPES[i - 1]``."""
    raw = _decode_bookmark(bookmark)
    if not raw:
        return 0, ""
    phase, sep, start = raw.partition(":")
    if not sep or not phase.isdigit() or int(phase) > len(keys.OBJECT_TYPES):
        raise BadRequest(f"malformed bookmark {bookmark!r}")
    return int(phase), start


def _state_digest_page(ctx: Context, page_size: int, bookmark: str) -> Page:
    phase, start = _digest_position(bookmark)
    items: list[Any] = []
    while phase <= len(keys.OBJECT_TYPES) and len(items) < page_size:
        wanted = page_size - len(items)
        if phase == 0:
            page = ctx.stub.get_state_by_range_with_pagination("", "", wanted, start)
        else:
            page = ctx.stub.get_state_by_partial_composite_key_with_pagination(
                keys.OBJECT_TYPES[phase - 1], [], wanted, start)
        items += [StateEntry(key=kv.key, sha256=hashlib.sha256(kv.value).hexdigest()).model_dump() for kv in page.items]
        if page.bookmark and page.items:
            start = page.bookmark
        else:
            phase, start = phase + 1, ""
    following = f"{phase}:{start}" if phase <= len(keys.OBJECT_TYPES) else ""
    return Page(items=items, bookmark=_encode_bookmark(following))


class Audit(ConsortiumContract):
    """Read-only queries for members, auditors and the audit page."""

    @transaction(evaluate=True, allow=READERS, errors=(FORBIDDEN, BAD_PAGE))
    def members(self, ctx: Context, page_size: PageSize, bookmark: str) -> Page:
        """Every registered org with its status."""
        page = _scan_page(ctx, keys.MEMBER, [], Registration, page_size, bookmark)
        registrations = [Registration.model_validate(item) for item in page.items]
        standings = load_standings(ctx, [r.org for r in registrations])
        members = [to_plain(Member.of(r, s)) for r, s in zip(registrations, standings, strict=True) if s is not None]
        return Page(items=members, bookmark=page.bookmark)

    @transaction(evaluate=True, allow=READERS, errors=(FORBIDDEN, BAD_PAGE))
    def summaries(self, ctx: Context, page_size: PageSize, bookmark: str) -> Page:
        """The latest summary of every (org, modality)."""
        return _scan_page(ctx, keys.SUMMARY, [], Summary, page_size, bookmark)

    @transaction(evaluate=True, allow=READERS, errors=(FORBIDDEN, BAD_PAGE))
    def summary_history(self, ctx: Context, org: MspId, modality: Modality, page_size: PageSize, bookmark: str) -> Page:
        """Every version of one summary, from the key history."""
        return _history_page(ctx, keys.summary_key(org, modality), page_size, bookmark)

    @transaction(evaluate=True, allow=READERS, errors=(FORBIDDEN, BAD_PAGE))
    def rounds(self, ctx: Context, page_size: PageSize, bookmark: str) -> Page:
        """Every round's current record (live rounds with their acknowledgements and abort votes so far)."""
        page = _scan_page(ctx, keys.ROUND, [], Round, page_size, bookmark)
        items = [to_plain(round_view(ctx, Round.model_validate(item))) for item in page.items]
        return Page(items=items, bookmark=page.bookmark)

    @transaction(evaluate=True, allow=READERS, errors=(FORBIDDEN, BAD_PAGE))
    def acknowledgements(self, ctx: Context, round_id: Identifier, page_size: PageSize, bookmark: str) -> Page:
        """The acknowledgements recorded in one round, one per participant."""
        return _scan_page(ctx, keys.ACK, [round_id], Acknowledgement, page_size, bookmark)

    @transaction(evaluate=True, allow=READERS, errors=(FORBIDDEN, BAD_PAGE))
    def round_history(self, ctx: Context, round_id: Identifier, page_size: PageSize, bookmark: str) -> Page:
        """Every state a round went through, with tx IDs and timestamps, from the key history."""
        return _history_page(ctx, keys.round_key(round_id), page_size, bookmark)

    @transaction(evaluate=True, allow=READERS, errors=(FORBIDDEN, BAD_PAGE))
    def exchanges(self, ctx: Context, round_id: Identifier, page_size: PageSize, bookmark: str) -> Page:
        """The off-chain exchanges recorded in one round."""
        return _scan_page(ctx, keys.EXCHANGE, [round_id], Exchange, page_size, bookmark)

    @transaction(evaluate=True, allow=READERS, errors=(FORBIDDEN, BAD_PAGE))
    def state_digest(self, ctx: Context, page_size: PageSize, bookmark: str) -> Page:
        """Every key of the chaincode's namespace with the SHA-256 of its stored value (plain keys, then the
        composite keys of each object type), for ``swarmfuse audit verify`` to compare with the values the
        ledger's valid transactions wrote. Items are ``{"key", "sha256"}``; composite keys keep their U+0000."""
        return _state_digest_page(ctx, page_size, bookmark)

    @transaction(evaluate=True, allow=READERS, errors=(FORBIDDEN, BAD_PAGE))
    def activity(self, ctx: Context, org: MspId, page_size: PageSize, bookmark: str) -> Page:
        """Every write transaction of one org in this task, in time order."""
        return _scan_page(ctx, keys.ACTIVITY, [org], Activity, page_size, bookmark)
