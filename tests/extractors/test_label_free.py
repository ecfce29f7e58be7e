"""Label-free extractors (a site that holds texts or images but no labels): they train without reading a label."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from swarmfuse.extractors.data import Corpus, fetch_emoji
from swarmfuse.extractors.data.emoji import Manifest
from swarmfuse.extractors.image import ImageRecipe, train_image_backbone
from swarmfuse.extractors.text.extractor import TextConfig, TextExtractor, train_label_free_text_extractor
from swarmfuse.extractors.text.lm import LMConfig


@pytest.fixture
def no_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any read of an entity's label fails the test."""
    def refuse(self: Manifest, entity: object) -> int:
        raise AssertionError("a label-free training read a label")

    monkeypatch.setattr(Manifest, "label", refuse)


def test_the_label_free_image_recipe_distils_every_image_and_reads_no_label(tmp_path: Path, no_labels: None) -> None:
    manifest = fetch_emoji()
    small = dataclasses.replace(manifest, entities=manifest.entities[::40])
    recipe = ImageRecipe(epochs=1, seed=1, batch_size=32, teacher_resolution=32, quant_noise_epochs=0, artists=False,
                         labels=False)
    model = train_image_backbone(small, tmp_path, resolution=16, recipe=recipe)
    assert not model.training
    log = json.loads((tmp_path / "image_train.json").read_text())
    assert log["pool"] == {"google/unlabelled": len(small.entities)}  # every split, no labels
    assert log["best_val_accuracy"] is None and log["epochs"][0]["val_accuracy"] is None
    assert log["epochs"][0]["ce_loss"] == 0 and log["epochs"][0]["distill_loss"] > 0


def test_a_label_free_recipe_needs_the_teacher() -> None:
    with pytest.raises(ValueError, match="needs distill"):
        ImageRecipe(labels=False, distill=False)


def test_the_label_free_text_extractor_takes_texts_alone_and_round_trips(tmp_path: Path) -> None:
    corpus_file = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "face", "flag", "food", "animal"]
    corpus_file.write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(60)))
    corpus = Corpus(corpus_file, "unused", 60)
    config = TextConfig(labels=False, max_corpus_tokens=600, vocab_size=50, min_freq=1, emb_size=8, hidden_size=16,
                        layers=2, lm=LMConfig(epochs=1, batch_size=4, bptt=8, eval_every=5))
    texts = ["grinning face. smile", "flag: France. FR", "red apple. fruit"]
    extractor = train_label_free_text_extractor(texts, corpus, config)
    assert extractor.classifier is None and extractor.report["texts"] == 3
    features = extractor.features(torch.from_numpy(extractor.encode(texts)))
    assert features.shape == (3, 2 * config.emb_size)
    extractor.save(tmp_path / "stage")
    assert not (tmp_path / "stage" / "classifier.pt").exists()
    loaded = TextExtractor.load(tmp_path / "stage", n_classes=9)
    assert loaded.classifier is None
    assert torch.equal(loaded.features(torch.from_numpy(loaded.encode(texts))), features.detach())
