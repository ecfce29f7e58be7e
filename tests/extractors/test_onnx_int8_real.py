"""INT8 extractors on the real emoji data: the accuracy cost stays within the documented bound."""

from __future__ import annotations

import pytest
from bench_drivers import bench_module

pytestmark = pytest.mark.slow

# Documented bound: test accuracy the fusion heads (trained on FP32 features; mean over seeds 0, 1, 2) lose when fed
# the INT8 extractors' features instead. ONNX Runtime's INT8 kernels differ by CPU (VNNI on AVX-512 machines), and so
# does the cost, measured with the default extractors after fresh trainings:
#   AMD EPYC, AVX2: image-only head 0.727 -> 0.727 (0.00 points), text-only 0.23, intermediate fusion 0.23;
#   Intel Xeon, AVX-512 VNNI: image-only 0.735 -> 0.723 (1.17 points), text-only 0.12, intermediate 0.35.
# The bound, 1.5 points, sits one test entity (0.35 points) above the worst. A linear probe
# (`scripts/bench/image_extractor/int8_cost.py` shows it too) is the noisier measure on the concatenated features.
MAX_COST = 0.015


@pytest.fixture(scope="module")
def costs():
    return bench_module("image_extractor", "int8_cost").measure_heads()


@pytest.mark.parametrize("features", ["image", "text", "concat"])
def test_int8_accuracy_cost_is_within_the_documented_bound(costs, features):
    cost = costs[features]
    assert cost.fp32_accuracy > 0.5  # heads that learned something, so the comparison means something
    assert cost.cost <= MAX_COST
