"""``audit verify``'s extractor provenance check: whose labels shaped each published summary's extractor.

From the replayed state, one check per (org, modality) summary that has an extractor: ``pass`` when its provenance
says no label of another party reached it (labels ``none`` or ``own``) or that label information reached it only
through split-learning gradients (``split-gradients``, the recorded exchanges of a round); ``info`` when it
declares no provenance (unknown: published before provenance existed); ``fail`` when it was trained with another
party's labels (``foreign``: the central reference, which the trust model forbids: a label holder's labels left it)
or the record cannot be read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import ValidationError

from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.records import ExtractorProvenance, LabelSource, Summary
from swarmfuse.client.audit.report import Category, Check, Status

NAME = "extractor provenance"


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
