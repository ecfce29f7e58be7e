"""The files a round moves between sites, and the leader's fusion step.

- features: ``.npy`` float32 ``[n, d]``, one row per aligned entity in ID order, from the site's
  ONNX extractor (under agreed DP terms the release of :mod:`swarmfuse.client.privacy.release`, ``[n, k]``,
  with ``features.npy.privacy.json`` saying how it was made);
- labels: ``.npz`` with ``labels`` (int64 ``[n]``), ``classes`` and ``split`` (train/val/test of
  each row, from the label holder's manifest);
- model: the fusion head's ``.npz`` (:meth:`swarmfuse.extractors.fusion.head.FusionHead.save`) with
  the layout of its input (which participant's features, in which order, how wide).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from swarmfuse.client.site.manifest import Manifest
from swarmfuse.files import write_atomic

from swarmfuse.chaincode.contracts.records import ContributionTable, PrivacyTerms, ReleasePrivacy, Round

if TYPE_CHECKING:
    from swarmfuse.chaincode.contracts.records import RewardRule
    from swarmfuse.client.site.agent import Holding, SiteAgent

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def _save(path: Path, write: Callable[[io.BytesIO], None]) -> None:
    buffer = io.BytesIO()
    write(buffer)
    write_atomic(path, buffer.getvalue())


def extract(holding: Holding, ids: Sequence[str]) -> np.ndarray:
    """Features of ``ids`` (in that order) from the site's extractor."""
    assert holding.source is not None
    manifest = holding.manifest
    values = [manifest.row(entity).value for entity in ids]
    features = np.asarray(holding.source.extract(values, manifest.path.parent), dtype=np.float32)
    if features.shape != (len(ids), holding.source.feature_dim):
        raise ValueError(f"extractor returned {features.shape}, expected ({len(ids)}, {holding.source.feature_dim})")
    return features


def write_features(path: Path, holding: Holding, ids: Sequence[str]) -> None:
    """Features of ``ids`` (in that order) from the site's extractor."""
    features = extract(holding, ids)
    _save(path, lambda buffer: np.save(buffer, features, allow_pickle=False))


def write_release(path: Path, holding: Holding, ids: Sequence[str], terms: PrivacyTerms, dataset_sha256: str,
                  cache: Path) -> ReleasePrivacy:
    """The DP release of the features of ``ids`` (:mod:`swarmfuse.client.privacy.release`) and how it was made (kept
    beside it as ``<path>.privacy.json``). A release of the same rows, extractor and terms made before is sent
    again from ``cache`` rather than drawn afresh: new noise on the same rows would spend budget again."""
    from swarmfuse.chaincode.contract.canonical import canonical_json
    from swarmfuse.client.privacy.release import release

    assert holding.source is not None
    key = hashlib.sha256(b"\n".join([*(i.encode() for i in ids), holding.source.sha256.encode(),
                                      canonical_json(terms), dataset_sha256.encode()])).hexdigest()
    cached, made = cache / f"{key}.npy", cache / f"{key}.privacy.json"
    if not (cached.exists() and made.exists()):
        result = release(extract(holding, ids), terms, holding.source.sha256, dataset_sha256)
        _save(cached, lambda buffer: np.save(buffer, result.features, allow_pickle=False))
        write_atomic(made, result.record.model_dump_json().encode())
    record = ReleasePrivacy.model_validate_json(made.read_bytes())
    write_atomic(privacy_path(path), made.read_bytes())
    write_atomic(path, cached.read_bytes())
    return record


def privacy_path(shard: Path) -> Path:
    """Where a DP release's record is kept beside its file."""
    return shard.with_name(shard.name + ".privacy.json")


def write_labels(path: Path, manifest: Manifest, ids: Sequence[str]) -> None:
    """Labels of ``ids`` as class indices, the class names, and each row's split (``train`` when not given)."""
    classes = sorted({row.value for row in manifest.rows})
    index = {name: i for i, name in enumerate(classes)}
    rows = [manifest.row(entity) for entity in ids]
    labels = np.array([index[row.value] for row in rows], dtype=np.int64)
    split = np.array([row.extra.get("split") or "train" for row in rows])
    _save(path, lambda buffer: np.savez(buffer, labels=labels, classes=np.array(classes), split=split))


def load_labels(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return data["labels"], [str(c) for c in data["classes"]], data["split"]


@dataclass(frozen=True)
class FusedRound:
    """What the leader publishes: the model file's bytes, its metrics and, under an agreement, the contribution
    table (``Rounds:MarkFused``'s arguments)."""

    model: bytes
    metrics: dict[str, Any]
    contributions: ContributionTable | None


def fuse_round(agent: SiteAgent, rnd: Round, inbound: dict[tuple[str, str], Path],
               reward: RewardRule | None) -> FusedRound:
    """Train the intermediate-fusion head on every participant's features (the leader's own included), with the
    agreement's first seed; under an agreement, score every coalition of feature blocks the round needs."""
    from swarmfuse.client.site.agent import FEATURES_KIND, LABELS, LABELS_KIND

    blocks: list[tuple[str, np.ndarray]] = []
    for mspid in sorted(rnd.participants):
        if rnd.roles[mspid][0] == LABELS:
            continue
        path = agent.shard(rnd, FEATURES_KIND) if mspid == agent.mspid else inbound[(mspid, FEATURES_KIND)]
        blocks.append((mspid, np.load(path, allow_pickle=False)))
    labels_path = agent.shard(rnd, LABELS_KIND) if rnd.label_holder == agent.mspid \
        else inbound[(rnd.label_holder, LABELS_KIND)]
    y, classes, split = load_labels(labels_path)
    n = len(y)
    for mspid, block in blocks:
        if block.shape[0] != n:
            raise ValueError(f"{mspid}'s features have {block.shape[0]} rows for {n} aligned entities")
    x = np.concatenate([block for _, block in blocks], axis=1)
    layout = [{"org": mspid, "modality": rnd.roles[mspid][0], "dim": int(block.shape[1])} for mspid, block in blocks]
    seed = reward.seeds[0] if reward is not None else 0
    model, metrics = train_fusion_head(x, y, split, classes, layout, rnd.round_id, seed)
    if reward is None:
        return FusedRound(model, metrics, None)
    from swarmfuse.client.site.contribution import contribution_table

    table = contribution_table(dict(blocks), y, head_splits(split, seed), len(classes), reward, rnd.round_id,
                               metrics)
    return FusedRound(model, metrics, table)


def head_splits(split: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Row masks the head trains, stops early and is scored on; without a validation split, a tenth of the
    training rows (drawn with ``seed``) stands in for it."""
    train, val, test = (split == "train"), (split == "val"), (split == "test")
    if not train.any():
        raise ValueError("no aligned entity is in the training split")
    if not val.any():
        rng = np.random.default_rng(seed)
        picked = rng.choice(np.flatnonzero(train), size=max(1, int(train.sum()) // 10), replace=False)
        train[picked], val[picked] = False, True
    return {"train": train, "val": val, "test": test}


def train_fusion_head(x: np.ndarray, y: np.ndarray, split: np.ndarray, classes: list[str],
                      layout: list[dict[str, Any]], round_id: str, seed: int = 0) -> tuple[bytes, dict[str, Any]]:
    """The intermediate-fusion head (an MLP over the concatenated features); its ``.npz`` and metrics."""
    from swarmfuse.client.site.contribution import published_scores
    from swarmfuse.extractors.fusion.head import train_head

    rows = head_splits(split, seed)
    train, val, test = rows["train"], rows["val"], rows["test"]
    start = time.perf_counter()
    head = train_head(x[train], y[train], x[val], y[val], len(classes), seed)
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"n_train": int(train.sum()), "n_val": int(val.sum()), "n_test": int(test.sum()),
                               "train_seconds": round(seconds, 3), "method": "intermediate", "seed": seed}
    if test.any():  # scored as the central baselines are (swarmfuse.extractors.fusion.report)
        metrics |= published_scores(y[test], head.predict_proba(x[test]).argmax(1))
    with tempfile.TemporaryDirectory(prefix="swarmfuse-head-") as scratch:
        head.save(Path(scratch) / "head.npz")
        data = (Path(scratch) / "head.npz").read_bytes()
    meta = {"layout": layout, "classes": classes}
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        merged = {name: arrays[name] for name in arrays.files}
    buffer = io.BytesIO()
    np.savez(buffer, __layout__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **merged)
    logger.info("round %s: fused head trained on %d rows in %.1fs: %s", round_id, metrics["n_train"], seconds, metrics)
    return buffer.getvalue(), metrics
