"""A site trains its own text extractor from its manifest and the public corpus only: no label is read, the
bundle records where it came from, the same inputs are not trained twice, and the site's data can then be
published with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmfuse.cli import app
from swarmfuse.client.site import training
from swarmfuse.client.site.manifest import load_manifest
from swarmfuse.extractors.bundle import ExtractorBundle, load_bundle
from swarmfuse.extractors.text import extractor as text_extractor
from swarmfuse.extractors.text.extractor import TextConfig
from swarmfuse.extractors.text.lm import LMConfig

TINY = TextConfig(max_corpus_tokens=3000, vocab_size=2000, min_freq=1, emb_size=16, hidden_size=32, layers=2,
                  lm=LMConfig(epochs=1, batch_size=8, bptt=10, eval_every=1000))
TEXTS = ["a red apple on the table", "the quick brown fox", "rain over the hills", "a cup of hot coffee",
         "children playing football", "an old map of the city"]


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "texts.csv"
    path.write_text("entity_id,text\n" + "".join(f"e{i},{text}\n" for i, text in enumerate(TEXTS)), encoding="utf-8")
    return path


def test_a_site_trains_its_text_extractor_without_labels(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checked = load_manifest(manifest, "text")
    seen: list[object] = []

    original = text_extractor.train_label_free_text_extractor

    def spy(texts: list[str], corpus: object, config: TextConfig):  # type: ignore[no-untyped-def]
        seen.append((list(texts), config.labels))
        return original(texts, corpus, config)  # type: ignore[arg-type]

    monkeypatch.setattr(text_extractor, "train_label_free_text_extractor", spy)
    bundle_dir = training.label_free_text_bundle(checked, seed=7, config=TINY)
    bundle = ExtractorBundle.read(bundle_dir)
    assert bundle.modality == "text" and "no labels" in bundle.source and bundle.source.startswith("site-text-")
    if seen:  # trained now (not cached by an earlier run): it was given the texts alone, labels off
        assert seen == [([row.value for row in checked.rows], False)]
    features = load_bundle(bundle_dir).extract(TEXTS[:3])
    assert features.shape == (3, bundle.feature_dim)

    def no_training(*args: object) -> None:
        raise AssertionError("the same manifest, recipe and seed must not be trained again")

    monkeypatch.setattr(text_extractor, "train_label_free_text_extractor", no_training)
    assert training.label_free_text_bundle(checked, seed=7, config=TINY) == bundle_dir


def test_bad_input_is_named(manifest: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text("entity_id,text\ne1,alone\n", encoding="utf-8")
    with pytest.raises(training.SiteError, match="at least 2"):
        training.label_free_text_bundle(load_manifest(one, "text"), config=TINY)
    result = CliRunner().invoke(app, ["site", "extractor", "train", str(manifest), "--modality", "image", "--org",
                                      "DC2", "--task", "t", "--home", str(tmp_path / "home")])
    assert result.exit_code == 1 and "only text extractors are trained" in result.output
