"""The leader's contribution table: the fusion head trained and scored on each coalition of feature blocks.

The chaincode decides which coalitions a round needs (:func:`~swarmfuse.chaincode.contracts.contribution.
required_coalitions`) and derives the values; the leader only scores them, each with every seed the agreement
names, on the same rows as the published model. The empty coalition predicts the training rows' majority
class; the full coalition's first score is the published model's own metric, not a retraining.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from swarmfuse.chaincode.contracts.contribution import required_coalitions
from swarmfuse.chaincode.contracts.records import CoalitionScore, ContributionTable, RewardRule
from swarmfuse.client.site.site import SiteError

logger = logging.getLogger(__name__)

DIGITS = 4
"""Decimals of every published score (the table's and the metrics')."""


def published_scores(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The metrics a round publishes for a head, on the test rows, rounded as the table records them."""
    from sklearn.metrics import accuracy_score, f1_score

    return {"test_accuracy": round(float(accuracy_score(y_true, predicted)), DIGITS),
            "test_macro_f1": round(float(f1_score(y_true, predicted, average="macro", zero_division=0)), DIGITS)}


def contribution_table(blocks: dict[str, np.ndarray], y: np.ndarray, rows: dict[str, np.ndarray], n_classes: int,
                       reward: RewardRule, round_id: str, published: dict[str, Any]) -> ContributionTable:
    """``Rounds:MarkFused``'s table for ``blocks`` (features per sender MSP ID), scored by ``reward.metric``."""
    from swarmfuse.extractors.fusion.head import train_head

    if reward.metric not in published:
        raise SiteError(f"round {round_id}: the agreement values contributions by {reward.metric!r}, which a round "
                        f"does not publish (it publishes {', '.join(sorted(published))})")
    train, val, test = rows["train"], rows["val"], rows["test"]
    start = time.perf_counter()
    majority = np.bincount(y[train], minlength=n_classes).argmax()
    nobody = published_scores(y[test], np.full(int(test.sum()), majority))[reward.metric]
    coalitions = []
    for coalition in required_coalitions(list(blocks), round_id):
        members = sorted(coalition)
        x = np.concatenate([blocks[org] for org in members], axis=1) if members else None
        scores = []
        for i, seed in enumerate(reward.seeds):
            if x is None:
                score = nobody
            elif len(members) == len(blocks) and i == 0:
                score = published[reward.metric]
            else:
                head = train_head(x[train], y[train], x[val], y[val], n_classes, seed)
                score = published_scores(y[test], head.predict_proba(x[test]).argmax(1))[reward.metric]
            scores.append(repr(float(score)))
        coalitions.append(CoalitionScore(members=members, scores=scores))
    table = ContributionTable(metric=reward.metric, seeds=list(reward.seeds), coalitions=coalitions)
    logger.info("round %s: %d coalitions scored with %d seed(s) in %.1fs", round_id, len(coalitions),
                len(reward.seeds), time.perf_counter() - start)
    return table
