"""What one epoch of split learning does, on both sides."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SplitConfig:
    """``step``: how far a site moves its features per epoch, in standard deviations of each feature (the
    gradient normalised to unit RMS); ``local_passes``, ``lr``, ``batch_size``: the site's Adam passes fitting its
    trainable top to those targets; ``aux_weight``: weight of each block's own auxiliary head in the loss whose
    gradient the leader sends (each site then learns what its own modality predicts, not only what the fused
    head lacks); ``head_lr``, ``head_weight_decay``: the leader's Adam on the heads.

    Chosen on the emoji data with label-free extractors (text-only accuracy of a head on the fine-tuned text
    features 0.47 -> 0.72 in 8 epochs, where training the same encoder directly on the labels reached 0.72 in 12).
    """

    step: float = 0.5
    local_passes: int = 3
    lr: float = 1e-3
    batch_size: int = 64
    aux_weight: float = 1.0
    head_lr: float = 1e-3
    head_weight_decay: float = 3e-2

    def __post_init__(self) -> None:
        if not self.step > 0 or self.local_passes < 1 or not self.lr > 0 or self.batch_size < 1 \
                or self.aux_weight < 0 or not self.head_lr > 0 or self.head_weight_decay < 0:
            raise ValueError(f"invalid split-learning configuration {self}")
