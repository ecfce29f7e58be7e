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
    config = ImageConfig()
    _, folder, report = image_extractor(manifest, config)
    log = json.loads((folder / "image_train.json").read_text())
    val = manifest.split("val")
    majority = Counter(e.group for e in val).most_common(1)[0][1] / len(val)
    recipe = config.recipe
    assert log["resolution"] == config.resolution
    assert [e["quant_noise"] for e in log["epochs"]] == [False] * recipe.epochs + [True] * recipe.quant_noise_epochs
    assert log["recipe"]["artists"] and log["recipe"]["augment"] and log["recipe"]["distill"]
    assert log["best_val_accuracy"] >= majority + 0.4
    assert report["train_seconds"] > 0
