"""ONNX export and ONNX Runtime inference: dynamic batch, provider choice, parity on real inputs, INT8, errors."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from swarmfuse.extractors.data import fetch_emoji
from swarmfuse.extractors.image import build_resnet50_features, preprocess_images
from swarmfuse.extractors.onnx import FeatureExtractor, OnnxError, export_onnx, max_abs_diff, quantize_int8
from swarmfuse.extractors.onnx.accuracy import probe_accuracy_cost
from swarmfuse.extractors.text import AWDConfig, AWDLSTMEncoder, TextFeatures

AXES = {"x": {0: "batch"}, "y": {0: "batch"}}


@pytest.fixture(scope="module")
def real_pixels() -> np.ndarray:
    manifest = fetch_emoji()
    return preprocess_images([manifest.image_path(e) for e in manifest.entities[::40]], 64)  # ~48 emoji


@pytest.fixture(scope="module")
def resnet_onnx(tmp_path_factory, real_pixels):
    torch.manual_seed(0)
    model = build_resnet50_features(None).eval()
    path = tmp_path_factory.mktemp("onnx") / "resnet50.onnx"
    sha = export_onnx(model, (torch.from_numpy(real_pixels[:2]),), path, ["x"], ["y"], AXES)
    return model, path, sha


def test_export_returns_the_files_sha256_and_batch_axis_is_dynamic(resnet_onnx, real_pixels):
    _, path, sha = resnet_onnx
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    extractor = FeatureExtractor.from_onnx(path)
    for batch in (1, 5, len(real_pixels)):
        assert extractor.run(real_pixels[:batch]).shape == (batch, 2048)


def test_provider_is_chosen_automatically_and_reported(resnet_onnx):
    extractor = FeatureExtractor.from_onnx(resnet_onnx[1])
    expected = "CUDAExecutionProvider" if torch.cuda.is_available() else "CPUExecutionProvider"
    assert extractor.provider == expected
    assert FeatureExtractor.from_onnx(resnet_onnx[1], providers=["CPUExecutionProvider"]).provider == \
        "CPUExecutionProvider"


def test_resnet50_parity_with_torch_on_real_images(resnet_onnx, real_pixels):
    model, path, _ = resnet_onnx
    assert max_abs_diff(model, FeatureExtractor.from_onnx(path), real_pixels) <= 1e-4


def test_awd_lstm_parity_with_torch_on_token_ids(tmp_path):
    torch.manual_seed(0)
    model = TextFeatures(AWDLSTMEncoder(AWDConfig(vocab_size=500, emb_size=16, hidden_size=32, layers=3))).eval()
    ids = np.random.default_rng(0).integers(0, 500, size=(6, 12)).astype(np.int64)
    ids[0, 8:] = 0  # padding
    export_onnx(model, (torch.from_numpy(ids[:2]),), tmp_path / "awd.onnx", ["x"], ["y"], AXES)
    assert max_abs_diff(model, FeatureExtractor.from_onnx(tmp_path / "awd.onnx"), ids) <= 1e-4


def test_static_int8_is_smaller_and_close_to_fp32(resnet_onnx, real_pixels, tmp_path):
    _, path, _ = resnet_onnx
    sha = quantize_int8(path, tmp_path / "int8.onnx", [real_pixels[i : i + 8] for i in range(0, 32, 8)])
    assert sha == hashlib.sha256((tmp_path / "int8.onnx").read_bytes()).hexdigest()
    assert (tmp_path / "int8.onnx").stat().st_size < path.stat().st_size / 3
    fp32 = FeatureExtractor.from_onnx(path).run(real_pixels)
    int8 = FeatureExtractor.from_onnx(tmp_path / "int8.onnx").run(real_pixels)
    corr = np.corrcoef(fp32.ravel(), int8.ravel())[0, 1]
    assert corr > 0.9
    # Convolutions run in INT8; the pooled features are not rounded to 8 bits.
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    quantised_inputs = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert convs and all(n.input[0] in quantised_inputs and n.input[1] in quantised_inputs for n in convs)
    (pool,) = [n for n in graph.node if n.op_type == "GlobalAveragePool"]
    assert not [n for n in graph.node if n.op_type == "QuantizeLinear" and pool.output[0] in n.input]


class _TwoViews(nn.Module):
    """Pooled features of an image and of its mirror image, averaged: computation after the pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.trunk(x) + self.trunk(torch.flip(x, dims=(3,)))) / 2


def test_static_int8_keeps_everything_after_the_pooling_in_fp32(real_pixels, tmp_path):
    torch.manual_seed(0)
    model = _TwoViews().eval()
    export_onnx(model, (torch.from_numpy(real_pixels[:2]),), tmp_path / "two.onnx", ["x"], ["y"], AXES)
    quantize_int8(tmp_path / "two.onnx", tmp_path / "two8.onnx", [real_pixels[i : i + 8] for i in range(0, 32, 8)])
    graph = onnx.load(str(tmp_path / "two8.onnx")).graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)  # the convolutions are quantised
    pooled: set[str] = set()
    for node in graph.node:  # the pooled features, their flattening and the average of the two views
        if node.op_type == "GlobalAveragePool" or pooled.intersection(node.input):
            assert node.op_type != "QuantizeLinear", node
            pooled.update(node.output)
    assert graph.output[0].name in pooled


def test_dynamic_int8_keeps_an_lstm_close_to_fp32(tmp_path):
    torch.manual_seed(0)
    model = TextFeatures(AWDLSTMEncoder(AWDConfig(vocab_size=500, emb_size=32, hidden_size=64, layers=2))).eval()
    ids = np.random.default_rng(1).integers(1, 500, size=(16, 12)).astype(np.int64)
    export_onnx(model, (torch.from_numpy(ids[:2]),), tmp_path / "awd.onnx", ["x"], ["y"], AXES)
    quantize_int8(tmp_path / "awd.onnx", tmp_path / "awd8.onnx")
    fp32 = FeatureExtractor.from_onnx(tmp_path / "awd.onnx").run(ids)
    int8 = FeatureExtractor.from_onnx(tmp_path / "awd8.onnx").run(ids)
    assert not np.array_equal(fp32, int8)
    assert np.abs(fp32 - int8).max() < 0.1 * np.abs(fp32).max()


def test_errors_name_the_problem(tmp_path, resnet_onnx):
    with pytest.raises(OnnxError, match="does not exist"):
        FeatureExtractor.from_onnx(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(OnnxError, match="cannot load"):
        FeatureExtractor.from_onnx(tmp_path / "junk.onnx")
    with pytest.raises(OnnxError, match="not available"):
        FeatureExtractor.from_onnx(resnet_onnx[1], providers="NoSuchExecutionProvider")
    with pytest.raises(OnnxError, match="4 dimensions"):
        FeatureExtractor.from_onnx(resnet_onnx[1]).run(np.zeros((3, 64, 64), np.float32))
    with pytest.raises(OnnxError, match="cannot export"):
        export_onnx(nn.Linear(2, 2), (torch.zeros(1, 3),), tmp_path / "bad.onnx", ["x"], ["y"], AXES)
    assert not (tmp_path / "bad.onnx").exists()


def test_probe_accuracy_cost_is_zero_for_identical_features_and_grows_with_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    feats = rng.normal(size=(120, 8)).astype(np.float32) + labels[:, None] * 2.0
    train, test = np.arange(120) % 2 == 0, np.arange(120) % 2 == 1
    same = probe_accuracy_cost(feats, feats.copy(), labels, train, test)
    assert same.cost == 0.0 and same.fp32_accuracy > 0.9
    noisy = probe_accuracy_cost(feats, feats + rng.normal(scale=4.0, size=feats.shape), labels, train, test)
    assert noisy.cost > 0.1
    with pytest.raises(ValueError, match="differ in shape"):
        probe_accuracy_cost(feats, feats[:, :4], labels, train, test)
