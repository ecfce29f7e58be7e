"""``audit verify``'s extractor checks: whose labels shaped each published summary's extractor, and which fine-tuned
extractor made each feature site's final features in a round with split learning.

From the replayed state, one check per (org, modality) summary that has an extractor: ``pass`` when its provenance
says no label of another party reached it (labels ``none`` or ``own``) or that label information reached it only
through split-learning gradients (``split-gradients``, the recorded exchanges of a round); ``info`` when it
declares no provenance (unknown: published before provenance existed); ``fail`` when it was trained with another
party's labels (``foreign``: the central reference, which the trust model forbids: a label holder's labels left it)
or the record cannot be read.

And one check per feature site of each round with split epochs: ``pass`` when its final ``features`` exchange names
the ONNX SHA-256 of the extractor that made them; ``fail`` when it names none, or when the round was fused without
them on record; ``info`` while they are not sent (open or aborted round). A leader that is a feature site never sends
its own features: it records its fine-tuned extractor itself (``Rounds:RecordLeaderExtractor``, which the chaincode
requires before the model): ``pass`` with that record, ``fail`` for a fused or closed round without it, ``info``
before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import ValidationError

from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.records import (
    FEATURES_KIND,
    LABEL_MODALITY,
    Exchange,
    ExtractorProvenance,
    LabelSource,
    LeaderExtractor,
    Round,
    RoundState,
    Summary,
)
from swarmfuse.client.audit.report import Category, Check, Status

NAME = "extractor provenance"
SPLIT_NAME = "split extractor"


def describe(found: ExtractorProvenance) -> str:
    """The provenance in one line, hashes shortened: recipe, data, corpus, teacher, weights, split round."""
    parts = [f"recipe {found.recipe}"]
    for label, value in (("data", found.data_sha256), ("corpus", found.corpus_sha256),
                         ("teacher", found.teacher_sha256), ("parent", found.parent_sha256)):
        if value is not None:
            parts.append(f"{label} {value[:16]}")
    parts.append(f"weights {found.weights_sha256[:16]}" if found.weights_sha256 else "random start")
    if found.split_round is not None:
        parts.append(f"split round {found.split_round}")
    return ", ".join(parts)


def provenance_checks(state: Mapping[str, bytes]) -> list[Check]:
    """One check per summary of an extractor (label summaries have none)."""
    checks = []
    for (org, modality), raw in sorted(keys.of_type(state, keys.SUMMARY).items()):
        subject = f"summary {org} {modality}"
        try:
            summary = Summary.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as exc:
            checks.append(Check(category=Category.STATE, name=NAME, subject=subject, status=Status.FAIL,
                                detail=f"the record cannot be read: {exc}"))
            continue
        if summary.labels is not None:  # the label holder's summary: its classes, no extractor
            continue
        found = summary.extractor_provenance
        extractor = f"extractor {summary.extractor} {summary.extractor_onnx_sha256[:16]}"
        if found is None:
            status, detail = Status.INFO, f"{extractor} declares no provenance (unknown)"
        elif found.labels == LabelSource.FOREIGN:
            status, detail = Status.FAIL, (f"{extractor} was trained with another party's labels (foreign): the "
                                           f"central reference, which the trust model forbids; {describe(found)}")
        elif found.labels == LabelSource.SPLIT_GRADIENTS:
            status, detail = Status.PASS, (f"{extractor}: label information only through the split-learning "
                                           f"gradients of round {found.split_round}; {describe(found)}")
        else:
            status, detail = Status.PASS, f"{extractor}: no foreign labels (labels {found.labels.value}); {describe(found)}"
        checks.append(Check(category=Category.STATE, name=NAME, subject=subject, status=status, detail=detail,
                            tx_id=summary.tx_id))
    return checks


def split_extractor_checks(state: Mapping[str, bytes]) -> list[Check]:
    """One check per feature site of each round with split epochs: its final features name their extractor."""
    checks = []
    finals: dict[tuple[str, str], list[tuple[str, bytes]]] = {}  # (round, sender) -> [(receiver, record)]
    for (round_id, sender, receiver, kind), raw in sorted(keys.of_type(state, keys.EXCHANGE).items()):
        if kind == FEATURES_KIND:
            finals.setdefault((round_id, sender), []).append((receiver, raw))
    own = keys.of_type(state, keys.LEADER_EXTRACTOR)  # (round, leader) -> the leader's record of its own
    for (round_id,), raw in sorted(keys.of_type(state, keys.ROUND).items()):
        try:
            document = json.loads(raw)
            if not isinstance(document, dict) or not document.get("split_epochs"):
                continue  # no split learning (other checks judge the record itself)
            rnd = Round.model_validate(document)
        except (ValueError, ValidationError) as exc:
            checks.append(Check(category=Category.STATE, name=SPLIT_NAME, subject=f"round {round_id}",
                                status=Status.FAIL, detail=f"the record cannot be read: {exc}"))
            continue
        for org in sorted(p for p in rnd.participants if set(rnd.roles[p]) != {LABEL_MODALITY}):
            sent = sorted(finals.get((round_id, org), []), key=lambda found: found[0] != rnd.leader)  # leader's first
            if org == rnd.leader and not sent:
                checks.append(_leader_extractor_check(rnd, own.get((round_id, org))))
            else:
                checks.append(_final_features_check(rnd, org, sent[0] if sent else None))
    return checks


def _final_features_check(rnd: Round, org: str, found: tuple[str, bytes] | None) -> Check:
    subject = f"round {rnd.round_id} {org} final features"
    if found is None:
        if rnd.state in (RoundState.FUSED, RoundState.CLOSED):
            status, detail = Status.FAIL, (f"round {rnd.round_id} is {rnd.state.value} but no final {FEATURES_KIND} "
                                           f"exchange from {org} is recorded")
        else:
            status, detail = Status.INFO, f"round {rnd.round_id} is {rnd.state.value}: {org} has sent no final features"
        return Check(category=Category.STATE, name=SPLIT_NAME, subject=subject, status=status, detail=detail)
    receiver, raw = found
    record = f"exchange {rnd.round_id} {org}->{receiver} {FEATURES_KIND}"
    try:
        exchange = Exchange.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        return Check(category=Category.STATE, name=SPLIT_NAME, subject=subject, status=Status.FAIL, record=record,
                     detail=f"the record cannot be read: {exc}")
    if exchange.extractor_onnx_sha256 is None:
        status, detail = Status.FAIL, (f"{record} (tx {exchange.tx_id}) names no extractor: which extractor split "
                                       f"learning fine-tuned at {org} is not on record")
    else:
        status, detail = Status.PASS, (f"made by extractor {exchange.extractor_onnx_sha256} after "
                                       f"{rnd.split_epochs} split-learning epochs ({record}, tx {exchange.tx_id})")
    return Check(category=Category.STATE, name=SPLIT_NAME, subject=subject, status=status, detail=detail,
                 record=record, tx_id=exchange.tx_id)


def _leader_extractor_check(rnd: Round, raw: bytes | None) -> Check:
    """The leader's own fine-tuned extractor, which it records itself (its features are fused, never sent)."""
    org = rnd.leader
    subject = f"round {rnd.round_id} {org} final features"
    record = f"leader extractor {rnd.round_id} {org}"
    if raw is None:
        if rnd.state in (RoundState.FUSED, RoundState.CLOSED):
            status, detail = Status.FAIL, (f"round {rnd.round_id} is {rnd.state.value} but its leader {org}, a feature "
                                           f"site, recorded no extractor: which one split learning fine-tuned at "
                                           f"{org} is not on record")
        else:
            status, detail = Status.INFO, (f"round {rnd.round_id} is {rnd.state.value}: its leader {org} has not "
                                           f"recorded its fine-tuned extractor")
        return Check(category=Category.STATE, name=SPLIT_NAME, subject=subject, status=status, detail=detail)
    try:
        found = LeaderExtractor.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        return Check(category=Category.STATE, name=SPLIT_NAME, subject=subject, status=Status.FAIL, record=record,
                     detail=f"the record cannot be read: {exc}")
    return Check(category=Category.STATE, name=SPLIT_NAME, subject=subject, status=Status.PASS, record=record,
                 tx_id=found.tx_id, detail=f"made by extractor {found.extractor_onnx_sha256} after {rnd.split_epochs} "
                                           f"split-learning epochs ({org} leads: it fuses its own features and "
                                           f"recorded the extractor itself, tx {found.tx_id})")
