"""Fusion on the real emoji data: intermediate fusion beats each single modality; the CLI report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from swarmfuse.cli import app
from swarmfuse.extractors.fusion import run_methods
from swarmfuse.extractors.pipeline import ImageConfig, PipelineConfig, build_features

pytestmark = pytest.mark.slow
# Measured with seed 0 on this data (test split, 285 entities): text_only 0.789, image_only 0.572,
# early 0.839, late 0.793, intermediate 0.793, hybrid 0.796; on a fresh machine whose CPU training of the
# from-scratch ResNet50 came out differently: text_only 0.758, image_only 0.614, early 0.839, late 0.761
# (late over image: 0.147 to 0.221). The margins below sit inside those gaps.
EARLY_OVER_TEXT = 0.03
FUSION_OVER_IMAGE = 0.12
# With the pretrained EfficientNet-Lite0 image extractor (seed 0): text_only 0.789, image_only 0.758,
# intermediate 0.856, hybrid 0.860: the seed scheme's intermediate fusion beats each modality.
PRETRAINED_INTERMEDIATE_OVER_TEXT = 0.04
PRETRAINED_INTERMEDIATE_OVER_IMAGE = 0.06


@pytest.fixture(scope="module")
def features():
    return build_features(PipelineConfig()).features


def test_fusion_beats_each_single_modality(features):
    run = run_methods(features, seed=0)
    y = features.labels[features.mask("test")]
    acc = {m: float((p.argmax(1) == y).mean()) for m, p in run.probabilities.items()}
    assert acc["early"] >= acc["text_only"] + EARLY_OVER_TEXT, acc
    for fused in ("early", "late", "intermediate", "hybrid"):
        assert acc[fused] >= acc["image_only"] + FUSION_OVER_IMAGE, (fused, acc)
        assert acc[fused] >= acc["text_only"] - 0.01, (fused, acc)  # measured +0.4 to +0.7 points: not worse


def test_intermediate_fusion_beats_each_modality_with_a_pretrained_image_extractor():
    features = build_features(PipelineConfig(image=ImageConfig(backbone="efficientnet_lite0"))).features
    assert features.image.shape[1] == 1280
    run = run_methods(features, seed=0)
    y = features.labels[features.mask("test")]
    acc = {m: float((p.argmax(1) == y).mean()) for m, p in run.probabilities.items()}
    assert acc["intermediate"] >= acc["text_only"] + PRETRAINED_INTERMEDIATE_OVER_TEXT, acc
    assert acc["intermediate"] >= acc["image_only"] + PRETRAINED_INTERMEDIATE_OVER_IMAGE, acc


def test_fuse_evaluate_cli_writes_the_report(features, tmp_path):
    out = tmp_path / "report"
    done = CliRunner().invoke(app, ["fuse", "evaluate", str(out), "--seeds", "0"])
    assert done.exit_code == 0, done.output
    doc = json.loads((out / "report.json").read_text())
    assert doc["seeds"] == [0]
    assert doc["context"]["pipeline"]["feature_dims"]["image"] == 2048
    for png in ("methods.png", "confusion_intermediate.png"):
        assert (out / png).stat().st_size > 1000
    assert np.isfinite([m["accuracy_mean"] for m in doc["methods"].values()]).all()


def test_fuse_evaluate_cli_rejects_bad_input_cleanly(tmp_path):
    runner = CliRunner()
    bad_seeds = runner.invoke(app, ["fuse", "evaluate", str(tmp_path), "--seeds", "a,b"])
    assert bad_seeds.exit_code != 0 and "seeds must be comma-separated integers" in bad_seeds.output
    missing = runner.invoke(app, ["fuse", "evaluate", str(tmp_path), "--weights", str(tmp_path / "nope.pth")])
    message = " ".join(missing.output.split())  # rich wraps long lines
    assert missing.exit_code == 1 and "nope.pth does not exist" in message and missing.exception.__class__ is SystemExit
    backbone = runner.invoke(app, ["fuse", "evaluate", str(tmp_path), "--image-backbone", "vgg"])
    assert backbone.exit_code == 1 and "unknown image backbone 'vgg'" in " ".join(backbone.output.split())
