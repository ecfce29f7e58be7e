"""The ResNet50 image extractor trained on the real emoji images (through the pipeline cache)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from swarmfuse.extractors.data import fetch_emoji
from swarmfuse.extractors.pipeline import ImageConfig, image_extractor

pytestmark = pytest.mark.slow


def test_training_learns_the_groups_well_above_the_majority_class():
    manifest = fetch_emoji()
    _, folder, report = image_extractor(manifest, ImageConfig())
    log = json.loads((folder / "image_train.json").read_text())
    val = manifest.split("val")
    majority = Counter(e.group for e in val).most_common(1)[0][1] / len(val)
    assert log["resolution"] == ImageConfig().resolution and len(log["epochs"]) == ImageConfig().epochs
    assert log["best_val_accuracy"] >= majority + 0.15
    assert report["train_seconds"] > 0
