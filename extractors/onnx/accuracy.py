"""Accuracy cost of INT8 features: a linear probe trained on FP32 features, scored on FP32 and INT8 features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AccuracyCost:
    """Test accuracy of one probe on FP32 and on INT8 features; ``cost`` is the drop in accuracy points."""

    fp32_accuracy: float
    int8_accuracy: float

    @property
    def cost(self) -> float:
        return self.fp32_accuracy - self.int8_accuracy


def probe_accuracy_cost(fp32: np.ndarray, int8: np.ndarray, labels: np.ndarray, train: np.ndarray,
                        test: np.ndarray, seed: int = 0) -> AccuracyCost:
    """Fit a standardised logistic regression on ``fp32[train]``; score it on the test rows of both feature sets."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if fp32.shape != int8.shape:
        raise ValueError(f"FP32 features {fp32.shape} and INT8 features {int8.shape} differ in shape")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5, random_state=seed))
    probe.fit(fp32[train], labels[train])
    return AccuracyCost(float(probe.score(fp32[test], labels[test])), float(probe.score(int8[test], labels[test])))
