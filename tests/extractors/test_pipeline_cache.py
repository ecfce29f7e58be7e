"""The feature and bundle caches' keys: the extractors' stage names and their trained weights (fast)."""

from __future__ import annotations

import hashlib

from swarmfuse.extractors.bundle import bundle_cache_dir
from swarmfuse.extractors.data.cache import CACHE_ENV
from swarmfuse.extractors.pipeline import features_dir, weights_sha256


def test_features_are_keyed_by_the_extractors_weights_not_only_their_names(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    text, image, pretrained = tmp_path / "text-0123", tmp_path / "image-4567", tmp_path / "image-efficientnet_lite0-64px"
    for folder, name in ((text, "classifier.pt"), (image, "backbone.pt")):
        folder.mkdir()
        (folder / name).write_bytes(b"weights of the first training")
    first = features_dir(text, image)
    assert first.parent == tmp_path / "cache" / "pipeline" and first.name.startswith("features-")
    assert features_dir(text, image) == first
    (image / "backbone.pt").write_bytes(b"weights of a second training under the same name")
    retrained = features_dir(text, image)
    assert retrained != first
    (text / "classifier.pt").write_bytes(b"a retrained text classifier")
    assert features_dir(text, image) not in (first, retrained)
    assert features_dir(text, pretrained) != features_dir(text, image)  # a pretrained backbone stores no weights


def test_bundles_are_keyed_by_the_stage_and_its_weights(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    stage = tmp_path / "image-4567"
    assert weights_sha256(stage) is None  # not trained yet
    stage.mkdir()
    (stage / "backbone.pt").write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert weights_sha256(stage) == digest
    assert bundle_cache_dir(stage.name, digest).name == f"bundle3-image-4567-{digest[:16]}"
    assert bundle_cache_dir("image-efficientnet_lite0-64px", None).name == "bundle3-image-efficientnet_lite0-64px"


def test_trained_stages_are_keyed_by_their_training_code(tmp_path, monkeypatch):
    from swarmfuse.extractors import pipeline
    from swarmfuse.extractors.data import Manifest
    from swarmfuse.extractors.pipeline import ImageConfig, image_extractor_dir
    from swarmfuse.extractors.text import extractor
    from swarmfuse.extractors.text.extractor import TextConfig, text_extractor_dir

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "manifest.json").write_text("{}")
    manifest = Manifest(root=tmp_path, entities=(), groups=("objects",), sources={})
    text, image = text_extractor_dir(manifest, TextConfig()), image_extractor_dir(manifest, ImageConfig())
    monkeypatch.setattr(extractor, "training_code", lambda: "newer text training code")
    monkeypatch.setattr(pipeline, "training_code", lambda: "newer image training code")
    assert text_extractor_dir(manifest, TextConfig()) != text
    assert image_extractor_dir(manifest, ImageConfig()) != image
