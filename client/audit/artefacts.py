"""A site's artefacts checked against the ledger: each file's SHA-256 and size against the on-chain record
it stands for, an exchange record (``Audit:Exchanges`` of its round) or the round's model hash (its
``Rounds`` record, set by ``Rounds:MarkFused``).

A site folder (``<home>/sites/<Org>``, as ``client/site`` lays it out) holds per round ``rounds/<round>/``:

- ``features.npy`` / ``labels.npz``: the site's own shard of that kind, recorded as the exchange from the site
  to the round's leader (the leader's own shard is never sent, so it has no record);
- ``in/<sender MSP ID>-<kind>-<first 16 hex digits of the recorded SHA-256>``: a file the site received (the leader:
  shards and split-learning features; a feature site: its split-learning gradients);
- ``split/features.<e>.npy``: a feature site's features of split-learning epoch ``e``, recorded as the exchange to
  the leader; ``split/gradients.<e>.<MSP ID>.npy``: the gradients the leader sent that site in epoch ``e``;
- ``model.npz``: the fused model (the leader's, or the copy a participant downloaded);
- ``extractor/``: the bundle split learning fine-tuned at the site (``bundle.json`` and its ONNX file), checked
  against the extractor SHA-256 the site's final ``features`` exchange names (a leader's own: against the one it
  recorded itself, ``Rounds:RecordLeaderExtractor``).

Other files (alignment state, metrics, timings, unfinished ``.part`` uploads) are not recorded on-chain and
are not checked. Without the folder's org (``owner``) an own shard that matches no record fails, since the
leader's own unsent shard cannot be told from a changed one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from swarmfuse.client.audit.queries import ExchangeRecord, RoundAudit
from swarmfuse.client.audit.report import Category, Check, Status
from swarmfuse.extractors.data.cache import sha256_file

SHARD_FILES = {"features.npy": "features", "labels.npz": "labels"}
MODEL_FILE = "model.npz"
INBOX = "in"
SPLIT = "split"
EXTRACTOR = "extractor"
BUNDLE_JSON = "bundle.json"


def exchange_name(record: ExchangeRecord) -> str:
    """How a report names an exchange record: ``exchange <round> <sender>-><receiver> <kind>``."""
    return f"exchange {record.round_id} {record.sender}->{record.receiver} {record.kind}"


def model_name(round_id: str) -> str:
    return f"model {round_id}"


def artefact_checks(folder: Path, rounds: Mapping[str, RoundAudit], owner: str | None = None) -> list[Check]:
    """One check per artefact of the site folder ``folder`` against ``rounds`` (every round on the ledger,
    by ID); ``owner`` is the MSP ID of the folder's org when known."""
    checks: list[Check] = []
    round_dirs = sorted(p for p in (folder / "rounds").glob("*") if p.is_dir())
    if not round_dirs:
        return [Check(category=Category.ARTEFACTS, name="artefacts", subject=f"folder {folder}", status=Status.SKIP,
                      detail="no rounds/<round> folders: nothing to check (is it a site folder?)")]
    for round_dir in round_dirs:
        audit = rounds.get(round_dir.name)
        for path in _artefacts(round_dir):
            subject = f"file {path.relative_to(folder)}"
            if audit is None:
                checks.append(Check(category=Category.ARTEFACTS, name="artefact", subject=subject, status=Status.FAIL,
                                    detail=f"round {round_dir.name} is not on the ledger"))
            elif path.name == MODEL_FILE and path.parent == round_dir:
                checks.append(_model_check(path, subject, audit))
            else:
                checks.append(_exchange_check(path, subject, round_dir, audit, owner))
        bundle = round_dir / EXTRACTOR
        if audit is not None and (bundle / BUNDLE_JSON).is_file():
            checks.append(_extractor_check(bundle, f"folder {bundle.relative_to(folder)}", audit, owner))
    return checks


def _extractor_check(bundle: Path, subject: str, audit: RoundAudit, owner: str | None) -> Check:
    """The fine-tuned bundle's ONNX file against the extractor SHA-256 its site's final features name."""
    round_id = audit.record.round_id
    try:
        onnx = bundle / str(json.loads((bundle / BUNDLE_JSON).read_text())["onnx_file"])
        digest = sha256_file(onnx)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Check(category=Category.ARTEFACTS, name="extractor", subject=subject, status=Status.FAIL,
                     detail=f"round {round_id}: the bundle's ONNX file cannot be read: {exc}")
    finals = [e for e in audit.exchanges if e.kind == "features" and (owner is None or e.sender == owner)]
    matching = [e for e in finals if e.extractor_onnx_sha256 == digest]
    if matching:
        record = matching[0]
        return Check(category=Category.ARTEFACTS, name="extractor", subject=subject, status=Status.PASS,
                     detail=f"ONNX SHA-256 {digest}, as the final features of {record.sender} name it (tx "
                            f"{record.tx_id})", record=exchange_name(record), tx_id=record.tx_id)
    if not finals and owner is not None and owner == audit.record.leader:  # its own: fused, never sent
        own = audit.leader_extractor
        if own is None:
            return Check(category=Category.ARTEFACTS, name="extractor", subject=subject, status=Status.INFO,
                         detail=f"round {round_id}: the leader's own features ({owner}) are never sent and it recorded "
                                f"no fine-tuned extractor (Rounds:RecordLeaderExtractor; ONNX SHA-256 {digest})")
        record = f"leader extractor {round_id} {own.org}"
        if own.extractor_onnx_sha256 == digest:
            return Check(category=Category.ARTEFACTS, name="extractor", subject=subject, status=Status.PASS,
                         detail=f"ONNX SHA-256 {digest}, as the leader {own.org} recorded it (tx {own.tx_id})",
                         record=record, tx_id=own.tx_id)
        return Check(category=Category.ARTEFACTS, name="extractor", subject=subject, status=Status.FAIL,
                     detail=f"round {round_id}: the leader {own.org} recorded extractor {own.extractor_onnx_sha256} "
                            f"(tx {own.tx_id}); the bundle's ONNX file has SHA-256 {digest}", record=record,
                     tx_id=own.tx_id)
    if not finals:
        return Check(category=Category.ARTEFACTS, name="extractor", subject=subject, status=Status.FAIL,
                     detail=f"round {round_id}: no final features exchange{f' from {owner}' if owner else ''} names "
                            f"an extractor; the bundle's ONNX SHA-256 is {digest}")
    record = finals[0]
    return Check(category=Category.ARTEFACTS, name="extractor", subject=subject, status=Status.FAIL,
                 detail=f"round {round_id}: {record.sender}'s final features name extractor "
                        f"{record.extractor_onnx_sha256 or 'none'} (tx {record.tx_id}); the bundle's ONNX file has "
                        f"SHA-256 {digest}", record=exchange_name(record), tx_id=record.tx_id)


def _artefacts(round_dir: Path) -> list[Path]:
    found = [round_dir / name for name in (*SHARD_FILES, MODEL_FILE) if (round_dir / name).is_file()]
    inbox = round_dir / INBOX
    if inbox.is_dir():
        found += sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.endswith(".part"))
    split = round_dir / SPLIT
    if split.is_dir():
        found += sorted(p for p in split.iterdir() if p.is_file() and _split_file(p) is not None)
    return found


def _split_file(path: Path) -> tuple[str, str | None] | None:
    """(kind, receiver) of a split-learning file the site sent (``features.<e>.npy``: to the leader, receiver
    ``None``; ``gradients.<e>.<MSP ID>.npy``), else None (the site's own training state)."""
    parts = path.name.split(".")
    if len(parts) == 3 and parts[0] == "features" and parts[1].isdigit() and parts[2] == "npy":
        return f"features.{parts[1]}", None
    if len(parts) == 4 and parts[0] == "gradients" and parts[1].isdigit() and parts[3] == "npy":
        return f"gradients.{parts[1]}", parts[2]
    return None


def _model_check(path: Path, subject: str, audit: RoundAudit) -> Check:
    record = audit.record
    name = model_name(record.round_id)
    digest = sha256_file(path)
    if record.model_sha256 is None:
        return Check(category=Category.ARTEFACTS, name="model", subject=subject, status=Status.FAIL, record=name,
                     detail=f"round {record.round_id} ({record.state}) has no model recorded; the file has SHA-256 "
                            f"{digest}")
    fused = next((h.tx_id for h in audit.history
                  if h.value is not None and h.value.model_sha256 == record.model_sha256), None)
    size = path.stat().st_size
    ok = digest == record.model_sha256 and record.model_bytes in (None, size)  # rounds fused before sizes were kept
    detail = (f"SHA-256 {digest} as recorded for round {record.round_id} by its leader {record.leader}" if ok else
              f"round {record.round_id}: its leader {record.leader} recorded model SHA-256 {record.model_sha256} "
              f"({record.model_bytes} bytes); the file has SHA-256 {digest} ({size} bytes)")
    return Check(category=Category.ARTEFACTS, name="model", subject=subject, status=Status.PASS if ok else Status.FAIL,
                 detail=detail + (f" (tx {fused})" if fused else ""), record=name, tx_id=fused)


def _exchange_check(path: Path, subject: str, round_dir: Path, audit: RoundAudit, owner: str | None) -> Check:
    digest, size = sha256_file(path), path.stat().st_size
    own = path.parent in (round_dir, round_dir / SPLIT)
    if own:  # the site's own shard, or a split-learning file it made
        split = _split_file(path) if path.parent.name == SPLIT else None
        kind, receiver = split if split is not None else (SHARD_FILES[path.name], None)
        candidates = [e for e in audit.exchanges if e.kind == kind and (owner is None or e.sender == owner)
                      and receiver in (None, e.receiver)]
        unrecorded = (f"the leader's own {kind} ({owner}): never sent, so never recorded"
                      if owner == audit.record.leader else f"no {kind} exchange from {owner} is recorded")
    else:  # received by the leader: <sender>-<kind>-<sha prefix>
        sender, kind, prefix = (path.name.rsplit("-", 2) + ["", ""])[:3]
        candidates = sorted((e for e in audit.exchanges if (e.sender, e.kind) == (sender, kind)),
                            key=lambda e: not e.sha256.startswith(prefix))
        unrecorded = f"no {kind} exchange from {sender} is recorded"
    matching = [e for e in candidates if (e.sha256, e.bytes) == (digest, size)]
    if matching:
        record = matching[0]
        return Check(category=Category.ARTEFACTS, name="exchange", subject=subject, status=Status.PASS,
                     detail=f"SHA-256 {digest} and {size} bytes as recorded by tx {record.tx_id}",
                     record=exchange_name(record), tx_id=record.tx_id)
    if not candidates:  # only a site's own shard may lack a record (it was never sent)
        if own and owner is None:
            unrecorded = f"matches no recorded {kind} exchange (SHA-256 {digest}, {size} bytes)"
        return Check(category=Category.ARTEFACTS, name="exchange", subject=subject,
                     status=Status.INFO if own and owner is not None else Status.FAIL,
                     detail=f"round {audit.record.round_id}: {unrecorded}")
    record = candidates[0]
    others = "" if len(candidates) == 1 else " (nor any other: " + ", ".join(
        exchange_name(e) for e in candidates[1:]) + ")"
    return Check(category=Category.ARTEFACTS, name="exchange", subject=subject, status=Status.FAIL,
                 detail=f"round {record.round_id}, {record.sender} -> {record.receiver}, {record.kind}: recorded "
                        f"SHA-256 {record.sha256}, {record.bytes} bytes (tx {record.tx_id}); the file has SHA-256 "
                        f"{digest}, {size} bytes{others}",
                 record=exchange_name(record), tx_id=record.tx_id)
