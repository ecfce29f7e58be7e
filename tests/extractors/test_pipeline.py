"""The feature pipeline on the real data: ONNX Runtime features, parity with torch, caching by config hash."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from swarmfuse.extractors.data import fetch_emoji
from swarmfuse.extractors.image import preprocess_images
from swarmfuse.extractors.pipeline import ImageConfig, PipelineConfig, build_features, image_extractor
from swarmfuse.extractors.text import TextConfig, cached_text_extractor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result():
    return build_features(PipelineConfig())


def test_every_entity_gets_both_feature_vectors(result):
    fs, manifest = result.features, fetch_emoji()
    assert list(fs.ids) == [e.id for e in manifest.entities]
    assert fs.text.shape == (len(manifest.entities), 2 * TextConfig().emb_size)
    assert fs.image.shape == (len(manifest.entities), 2048)
    assert np.isfinite(fs.text).all() and np.isfinite(fs.image).all()
    assert result.summary["feature_dims"] == {"text": fs.text.shape[1], "image": 2048}


def test_onnx_files_are_identified_by_their_sha256(result):
    for name in ("text", "image"):
        data = (result.folder / f"{name}.onnx").read_bytes()
        assert result.summary[f"{name}_onnx_sha256"] == hashlib.sha256(data).hexdigest()
    providers = result.summary["provider"]
    assert set(providers.values()) <= {"CPUExecutionProvider", "CUDAExecutionProvider"}


def test_onnx_runtime_features_match_torch_on_real_inputs(result):
    manifest = fetch_emoji()
    entities = manifest.entities[:64]
    rows = np.arange(64)
    text, _ = cached_text_extractor(manifest, TextConfig())
    image, _, _ = image_extractor(manifest, ImageConfig())
    with torch.no_grad():
        t = text.features.eval()(torch.from_numpy(text.encode([e.text for e in entities]))).numpy()
        pixels = preprocess_images([manifest.image_path(e) for e in entities], ImageConfig().resolution)
        i = image.eval()(torch.from_numpy(pixels)).numpy()
    assert np.abs(t - result.features.text[rows]).max() <= 1e-4
    assert np.abs(i - result.features.image[rows]).max() <= 1e-4


def test_second_build_comes_from_the_cache(result):
    again = build_features(PipelineConfig())
    assert again.folder == result.folder
    assert np.array_equal(again.features.text, result.features.text)
    assert again.summary == result.summary


def test_early_fusion_inputs_use_only_training_vocabulary(result):
    fs = result.features
    train = fs.mask("train")
    assert (fs.raw_text[train].sum(axis=0) > 0).all()  # every column occurs in training texts
    assert fs.raw_image.shape[1] == 3 * 16 * 16
