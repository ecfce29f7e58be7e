"""Split learning simulated in one process: the leader and every feature site of a round, no network, no ledger.

The same exchange a round with split epochs runs (:class:`~swarmfuse.extractors.split.leader.SplitLeader` on the
label holder's side, one :class:`~swarmfuse.extractors.split.site.TrainableExtractor` per feature site), epoch by
epoch, on the round's aligned rows; what would be sent over the network is passed in memory. For evaluations and
benchmarks of the extractor regimes, never for a round between organisations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmfuse.extractors.split.config import SplitConfig
from swarmfuse.extractors.split.leader import SplitLeader
from swarmfuse.extractors.split.site import TrainableExtractor


@dataclass(frozen=True)
class SimulatedSite:
    """One feature site: its extractor bundle, its values of the aligned rows (in row order: texts, or image paths
    relative to ``base``) and, when not its modality's default, its split-learning configuration."""

    bundle: Path
    values: Sequence[str]
    base: Path | None = None
    config: SplitConfig | None = None


def simulate_split_learning(sites: Sequence[SimulatedSite], labels: np.ndarray, train: np.ndarray, n_classes: int,
                            epochs: int, seed: int = 0,
                            leader_config: SplitConfig = SplitConfig()) -> list[TrainableExtractor]:
    """``epochs`` epochs of split learning between a leader holding ``labels`` (class indices of every aligned row;
    only the ``train`` rows are learnt from) and ``sites``; the sites' extractors after the last epoch, in the order
    of ``sites`` (:meth:`~swarmfuse.extractors.split.site.TrainableExtractor.features`, ``export``)."""
    if epochs < 1:
        raise ValueError(f"split learning needs at least one epoch, not {epochs}")
    if not sites:
        raise ValueError("split learning needs at least one feature site")
    labels, train = np.asarray(labels), np.asarray(train, dtype=bool)
    if len(labels) != len(train) or any(len(site.values) != len(labels) for site in sites):
        raise ValueError(f"{len(labels)} labels, {len(train)} training flags and "
                         f"{[len(site.values) for site in sites]} site rows: every side needs one per aligned row")
    trainable = [TrainableExtractor(site.bundle, site.values, site.base, seed=seed, config=site.config)
                 for site in sites]
    leader = SplitLeader([site.bundle.feature_dim for site in trainable], n_classes, leader_config, seed=seed)
    for epoch in range(1, epochs + 1):
        gradients = leader.epoch([site.features() for site in trainable], labels, train)
        for site, gradient in zip(trainable, gradients, strict=True):
            site.step(gradient, epoch=epoch)
    return trainable
