"""The leader's fusion step: the intermediate-fusion head trained on every participant's features of the aligned
rows against the label holder's labels, its model file (the head's ``.npz`` with the layout of its input: which
participant's features, in which order, how wide) and metrics, and, under an agreement, the contribution table.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swarmfuse.chaincode.contracts.records import ContributionTable, RewardRule
from swarmfuse.client.site.contribution import contribution_table, published_scores
from swarmfuse.client.site.shards import load_labels
from swarmfuse.client.site.site import SiteError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusedRound:
    """What the leader publishes: the model file's bytes, its metrics and, under an agreement, the contribution
    table (``Rounds:MarkFused``'s arguments)."""

    model: bytes
    metrics: dict[str, Any]
    contributions: ContributionTable | None


@dataclass(frozen=True)
class FeatureBlock:
    """One participant's features of the round's aligned rows: who sent them, of which modality, where they are."""

    org: str
    modality: str
    path: Path


def fuse_round(round_id: str, blocks: Sequence[FeatureBlock], labels: Path, reward: RewardRule | None) -> FusedRound:
    """Train the intermediate-fusion head on the concatenated ``blocks`` (in the order given) against the labels
    file, with the agreement's first seed; under an agreement, score every coalition of blocks the round needs."""
    y, classes, split = load_labels(labels)
    arrays: list[tuple[str, np.ndarray]] = []
    for block in blocks:
        features = np.load(block.path, allow_pickle=False)
        if features.ndim != 2 or features.shape[0] != len(y):
            raise SiteError(f"round {round_id}: {block.org}'s features have shape {features.shape} for {len(y)} "
                            "aligned entities")
        arrays.append((block.org, features))
    x = np.concatenate([features for _, features in arrays], axis=1)
    layout = [{"org": block.org, "modality": block.modality, "dim": int(features.shape[1])}
              for block, (_, features) in zip(blocks, arrays, strict=True)]
    seed = reward.seeds[0] if reward is not None else 0
    model, metrics = train_fusion_head(x, y, split, classes, layout, round_id, seed)
    if reward is None:
        return FusedRound(model, metrics, None)
    table = contribution_table(dict(arrays), y, head_splits(split, seed), len(classes), reward, round_id, metrics)
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
