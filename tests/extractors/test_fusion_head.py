"""Fusion head, methods and report on small synthetic features (fast; the real-data check is in test_fusion_real)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from swarmfuse.extractors.fusion import (
    METHODS,
    FeatureSet,
    FusionHead,
    HeadConfig,
    run_methods,
    train_head,
    write_report,
)

FAST = HeadConfig(hidden=32, epochs=30, patience=5)


def synthetic(n: int = 300, seed: int = 0) -> FeatureSet:
    """Two views that each see half of the class signal: only together do they identify the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    bit_a, bit_b = labels % 2, labels // 2
    text = rng.normal(size=(n, 6)) + 2.5 * bit_a[:, None]
    image = rng.normal(size=(n, 5)) + 2.5 * bit_b[:, None]
    splits = np.array(["train"] * (n // 2) + ["val"] * (n // 4) + ["test"] * (n - n // 2 - n // 4))
    return FeatureSet(np.array([f"e{i}" for i in range(n)]), labels, splits, text.astype(np.float32),
                      image.astype(np.float32), text.astype(np.float32), image.astype(np.float32),
                      ("a", "b", "c", "d"))


def test_head_learns_and_round_trips_through_a_portable_file(tmp_path):
    fs = synthetic()
    x = np.concatenate([fs.text, fs.image], axis=1)
    tr, va, te = fs.mask("train"), fs.mask("val"), fs.mask("test")
    head = train_head(x[tr], fs.labels[tr], x[va], fs.labels[va], 4, seed=0, config=FAST)
    accuracy = (head.predict_proba(x[te]).argmax(1) == fs.labels[te]).mean()
    assert accuracy > 0.8
    sha = head.save(tmp_path / "head.npz")
    assert sha == hashlib.sha256((tmp_path / "head.npz").read_bytes()).hexdigest()
    with np.load(tmp_path / "head.npz", allow_pickle=False) as data:  # no pickled objects inside
        assert "net.0.weight" in data.files
    again = FusionHead.load(tmp_path / "head.npz")
    assert np.array_equal(again.predict_proba(x[te]), head.predict_proba(x[te]))


def test_fusion_needs_both_views_on_complementary_data():
    fs = synthetic()
    run = run_methods(fs, seed=1, config=FAST)
    y = fs.labels[fs.mask("test")]
    acc = {m: (p.argmax(1) == y).mean() for m, p in run.probabilities.items()}
    assert set(acc) == set(METHODS)
    assert acc["intermediate"] > max(acc["text_only"], acc["image_only"]) + 0.2
    assert np.allclose(run.probabilities["late"],
                       (run.probabilities["text_only"] + run.probabilities["image_only"]) / 2)


def test_report_has_scores_over_seeds_and_figures(tmp_path):
    fs = synthetic()
    runs = [run_methods(fs, seed, FAST) for seed in (0, 1)]
    scores = write_report(fs, runs, tmp_path, {"note": "synthetic"})
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["seeds"] == [0, 1] and set(doc["methods"]) == set(METHODS)
    inter = scores["intermediate"]
    assert inter.accuracy_mean == pytest.approx(np.mean(inter.per_seed_accuracy))
    assert inter.accuracy_std == pytest.approx(np.std(inter.per_seed_accuracy))
    for png in ("methods.png", "confusion_intermediate.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    assert doc["fusion_head"]["sha256"] == hashlib.sha256((tmp_path / "fusion_head.npz").read_bytes()).hexdigest()
    assert "| intermediate |" in (tmp_path / "report.md").read_text()
    margin = doc["over_best_single_modality"]["intermediate"]
    best = np.maximum(scores["text_only"].per_seed_accuracy, scores["image_only"].per_seed_accuracy)
    assert margin["per_seed"] == pytest.approx(list(np.array(inter.per_seed_accuracy) - best))
    assert margin["wins"] and margin["min"] == pytest.approx(min(margin["per_seed"]))


def test_feature_set_rejects_misaligned_arrays():
    fs = synthetic(20)
    with pytest.raises(ValueError, match="image has 19 rows"):
        FeatureSet(fs.ids, fs.labels, fs.splits, fs.text, fs.image[:19], fs.raw_text, fs.raw_image, fs.classes)
