"""Fusion on the real emoji data: what the fusion report claims holds by a stated margin; the CLI report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from swarmfuse.cli import app
from swarmfuse.extractors.fusion import run_methods
from swarmfuse.extractors.fusion.evaluate import evaluate_fusion
from swarmfuse.extractors.pipeline import ImageConfig, PipelineConfig, build_features

pytestmark = pytest.mark.slow
SEEDS = (0, 1, 2)
# Measured over fusion-head seeds 0, 1, 2 with the default extractors (ResNet50: 10 epochs on four artists' images
# with augmentation and distillation, then 2 epochs of fine-tuning with quantisation noise; AWD-LSTM fine-tuned
# with label smoothing 0.2), both trained with the labels (the reference regime), and the default head (weight decay
# 3e-2); test split, 285 entities (one entity = 0.35 points). Training is reproducible on one machine but not across
# CPUs (extractors.reproducible), so the bounds sit below the worst of these fresh trainings:
#   Intel Xeon, AVX-512 (2026-12-07, cold caches, text seeds 0/1/2 with image seed 0): text_only 0.777/0.771/0.777,
#   image_only 0.735 (0.730/0.737/0.737); intermediate margin over the better single modality per head seed
#   +3.2/+3.9/+3.2 (mean +3.4), +6.3/+6.3/+5.3 (+6.0), +6.3/+6.0/+6.0 (+6.1); the smallest per-seed margin of any
#   method +3.2 (intermediate, text seed 0; late +3.5).
#   AMD EPYC, AVX2 (2026-12-05, text seeds 0/1/2): image_only 0.727 (0.719/0.726/0.737); intermediate mean margin
#   +5.5/+5.4/+5.7; the smallest per-seed margin of any method +3.9.
# So every method must win on every seed by 2.5 points and intermediate fusion by 2.5 on average: two test entities
# below the worst training seen (the +5 points of issue 13 held on one machine's training, not on every one).
WINNERS = {"early", "late", "intermediate", "hybrid"}
FUSION_MARGIN = 0.025  # every method the report marks as winning, on every seed, over the better single modality
INTERMEDIATE_MEAN_MARGIN = 0.025  # intermediate fusion (the published model) over it, averaged over the seeds
IMAGE_ONLY_MEAN = 0.72  # issue 13's bar for the ResNet50 image-only accuracy over the three seeds (worst mean 0.727)
IMAGE_ONLY_FLOOR = 0.70  # and on each seed (0.719 at the lowest)
# With the pretrained EfficientNet-Lite0 image extractor (seed 0): text_only 0.789, image_only 0.761,
# intermediate 0.839, late 0.863: the seed scheme's intermediate fusion beats each modality.
PRETRAINED_INTERMEDIATE_OVER_TEXT = 0.04
PRETRAINED_INTERMEDIATE_OVER_IMAGE = 0.06


@pytest.fixture(scope="module")
def features():
    return build_features(PipelineConfig()).features


@pytest.fixture(scope="module")
def report(features, tmp_path_factory):
    """The fusion report of the default pipeline over three seeds (report.json)."""
    out = tmp_path_factory.mktemp("fusion-report")
    evaluate_fusion(out, SEEDS, PipelineConfig())
    return json.loads((out / "report.json").read_text())


def test_resnet50_image_only_accuracy_on_every_seed(report):
    image = report["methods"]["image_only"]
    assert len(image["per_seed_accuracy"]) == len(SEEDS)
    assert min(image["per_seed_accuracy"]) >= IMAGE_ONLY_FLOOR, image
    assert image["accuracy_mean"] >= IMAGE_ONLY_MEAN, image


def test_fusion_beats_each_single_modality(report):
    claims = report["over_best_single_modality"]
    methods = report["methods"]
    best = np.maximum(methods["text_only"]["per_seed_accuracy"], methods["image_only"]["per_seed_accuracy"])
    for method, claim in claims.items():  # the report's margins are what the accuracies say
        assert claim["per_seed"] == pytest.approx(list(np.array(methods[method]["per_seed_accuracy"]) - best))
        assert claim["wins"] == (min(claim["per_seed"]) > 0)
    won = {m for m, claim in claims.items() if claim["wins"]}
    assert won == WINNERS, claims
    for method in won:
        assert min(claims[method]["per_seed"]) >= FUSION_MARGIN, (method, claims[method])
    assert np.mean(claims["intermediate"]["per_seed"]) >= INTERMEDIATE_MEAN_MARGIN, claims["intermediate"]


def test_intermediate_fusion_beats_each_modality_with_a_pretrained_image_extractor():
    features = build_features(PipelineConfig(image=ImageConfig(backbone="efficientnet_lite0"))).features
    assert features.image.shape[1] == 1280
    run = run_methods(features, seed=0)
    y = features.labels[features.mask("test")]
    acc = {m: float((p.argmax(1) == y).mean()) for m, p in run.probabilities.items()}
    assert acc["intermediate"] >= acc["text_only"] + PRETRAINED_INTERMEDIATE_OVER_TEXT, acc
    assert acc["intermediate"] >= acc["image_only"] + PRETRAINED_INTERMEDIATE_OVER_IMAGE, acc


def test_fuse_report_cli_writes_the_report(features, tmp_path):
    out = tmp_path / "report"
    done = CliRunner().invoke(app, ["fuse", "report", str(out), "--seeds", "0"])
    assert done.exit_code == 0, done.output
    doc = json.loads((out / "report.json").read_text())
    assert doc["seeds"] == [0]
    assert doc["context"]["pipeline"]["feature_dims"]["image"] == 2048
    assert doc["context"]["pipeline"]["image"]["recipe"]["distill"] is True  # the default recipe
    assert set(doc["over_best_single_modality"]) == {"early", "late", "intermediate", "hybrid"}
    text = (out / "report.md").read_text()
    assert "Fusion over the best single modality" in text
    # The image extractor's step table, or a sentence saying why it is not there.
    assert "## Image extractor: what each training step adds" in text
    assert (doc["image_steps"] is not None) != bool(doc["image_steps_note"]), doc["image_steps_note"]
    for png in ("methods.png", "confusion_intermediate.png"):
        assert (out / png).stat().st_size > 1000
    assert np.isfinite([m["accuracy_mean"] for m in doc["methods"].values()]).all()


def test_fuse_report_cli_rejects_bad_input_cleanly(tmp_path):
    runner = CliRunner()
    bad_seeds = runner.invoke(app, ["fuse", "report", str(tmp_path), "--seeds", "a,b"])
    assert bad_seeds.exit_code != 0 and "seeds must be comma-separated integers" in bad_seeds.output
    missing = runner.invoke(app, ["fuse", "report", str(tmp_path), "--weights", str(tmp_path / "nope.pth")])
    message = " ".join(missing.output.split())  # rich wraps long lines
    assert missing.exit_code == 1 and "nope.pth does not exist" in message and missing.exception.__class__ is SystemExit
    backbone = runner.invoke(app, ["fuse", "report", str(tmp_path), "--image-backbone", "vgg"])
    assert backbone.exit_code == 1 and "unknown image backbone 'vgg'" in " ".join(backbone.output.split())
