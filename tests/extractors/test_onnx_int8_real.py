"""INT8 extractors on the real emoji data: the accuracy cost stays within the documented bound."""

from __future__ import annotations

import pytest

from swarmfuse.extractors.int8_cost import measure_heads

pytestmark = pytest.mark.slow

# Documented bound: test accuracy the fusion heads (trained on FP32 features; mean over seeds 0, 1, 2) lose when fed
# the INT8 extractors' features instead: one point. Measured with the default extractors: image-only head
# 0.727 -> 0.727 (0.00 points), text-only 0.792 -> 0.789 (0.23), intermediate fusion 0.847 -> 0.845 (0.23).
# A linear probe (`python -m swarmfuse.extractors.int8_cost` shows it too) loses 0.70 / 0.35 / 3.16 points: on
# the concatenated features it is the noisier measure (with the text extractor trained without label smoothing
# and the same INT8 image model it gained 1.05 points).
MAX_COST = 0.01


@pytest.fixture(scope="module")
def costs():
    return measure_heads()


@pytest.mark.parametrize("features", ["image", "text", "concat"])
def test_int8_accuracy_cost_is_within_the_documented_bound(costs, features):
    cost = costs[features]
    assert cost.fp32_accuracy > 0.5  # heads that learned something, so the comparison means something
    assert cost.cost <= MAX_COST
