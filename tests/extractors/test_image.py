"""Image extractor: 2048-d ResNet50 features, weight-file loading, NumPy preprocessing, EfficientNet-Lite0."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models import resnet18, resnet50

from swarmfuse.extractors.data import fetch_emoji
from swarmfuse.extractors.image import (
    ImageError,
    ImageRecipe,
    WeightsError,
    build_backbone,
    build_resnet50_features,
    preprocess_images,
    train_image_backbone,
)
from swarmfuse.extractors.image.preprocess import MEAN, STD
from swarmfuse.extractors.image.quant_noise import LEVELS, quantisation_noise
from swarmfuse.extractors.image.train import TrainProgress


@pytest.fixture(scope="module")
def emoji_paths() -> list[Path]:
    manifest = fetch_emoji()
    return [manifest.image_path(e) for e in manifest.entities[:4]]


def test_resnet50_features_are_2048_d_pooled(emoji_paths):
    model = build_resnet50_features(None).eval()
    with torch.inference_mode():
        out = model(torch.from_numpy(preprocess_images(emoji_paths, 64)))
    assert out.shape == (4, 2048)
    assert (out >= 0).all()  # global average of ReLU outputs
    assert isinstance(model.fc, torch.nn.Identity)


def test_preprocessing_is_nchw_normalised_and_composites_transparency_over_white(tmp_path):
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))  # fully transparent
    img.putpixel((0, 0), (255, 0, 0, 255))
    img.save(tmp_path / "a.png")
    x = preprocess_images([tmp_path / "a.png"], 10)
    assert x.dtype == np.float32 and x.shape == (1, 3, 10, 10) and x.flags["C_CONTIGUOUS"]
    white = (1.0 - MEAN) / STD
    np.testing.assert_allclose(x[0, :, 5, 5], white, rtol=1e-6)
    np.testing.assert_allclose(x[0, :, 0, 0], (np.array([1.0, 0.0, 0.0]) - MEAN) / STD, rtol=1e-6)


def test_preprocessing_resizes_real_images_deterministically(emoji_paths):
    a, b = preprocess_images(emoji_paths, 32), preprocess_images(emoji_paths, 32)
    assert a.shape == (4, 3, 32, 32)
    assert np.array_equal(a, b)
    assert not np.allclose(a[0], a[1])  # different emoji, different pixels


def test_unreadable_image_and_bad_size_are_named(tmp_path, emoji_paths):
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ImageError, match="bad.png"):
        preprocess_images([tmp_path / "bad.png"], 32)
    with pytest.raises(ImageError, match="at least 8"):
        preprocess_images(emoji_paths, 4)


def test_standard_resnet50_weight_file_loads_and_fc_is_dropped(tmp_path):
    reference = resnet50(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet50-test.pth")
    model = build_resnet50_features(tmp_path / "resnet50-test.pth")
    for name, value in model.state_dict().items():
        assert torch.equal(value, reference.state_dict()[name]), name
    assert not any(k.startswith("fc.") for k in model.state_dict())


@pytest.mark.parametrize("make, message", [
    (lambda p: torch.save(resnet18(weights=None).state_dict(), p), "not a ResNet50 weight file"),
    (lambda p: p.write_bytes(b"garbage"), "not a PyTorch weight file"),
    (lambda p: torch.save([1, 2, 3], p), "state dict of tensors"),
])
def test_wrong_weight_file_gets_a_clear_error(tmp_path, make, message):
    path = tmp_path / "weights.pth"
    make(path)
    with pytest.raises(WeightsError, match=message):
        build_resnet50_features(path)


def test_missing_weight_file_and_unknown_backbone_are_named(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        build_resnet50_features(tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="unknown backbone 'vgg'"):
        build_backbone("vgg")


def test_efficientnet_lite0_is_pretrained_with_1280_d_features(emoji_paths):
    pytest.importorskip("efficientnet_lite_pytorch")
    model = build_backbone("efficientnet_lite0").eval()
    with torch.inference_mode():
        feats = model(torch.from_numpy(preprocess_images(emoji_paths, 224)))
        logits = model.net(torch.from_numpy(preprocess_images(emoji_paths, 224)))
    assert feats.shape == (4, 1280)
    # ImageNet-pretrained: confident predictions, unlike a randomly initialised network
    assert torch.softmax(logits, 1).max(1).values.mean() > 0.2


def test_training_updates_the_backbone_logs_each_epoch_and_never_uses_the_test_split(tmp_path):
    manifest = fetch_emoji()
    small = dataclasses.replace(manifest, entities=manifest.entities[::10])
    torch.manual_seed(3)
    initial = build_resnet50_features(None).state_dict()
    # Every step: artists, augmentation, distillation, then an epoch of fine-tuning with quantisation noise.
    recipe = ImageRecipe(epochs=1, seed=3, batch_size=32, teacher_resolution=32, quant_noise_epochs=1)
    seen: list[TrainProgress] = []
    model = train_image_backbone(small, tmp_path, resolution=16, recipe=recipe, progress=seen.append)
    assert not model.training
    assert not torch.equal(model.state_dict()["conv1.weight"], initial["conv1.weight"])
    log = json.loads((tmp_path / "image_train.json").read_text())
    assert log["resolution"] == 16 and [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert [e["quant_noise"] for e in log["epochs"]] == [False, True]
    assert 0.0 <= log["best_val_accuracy"] <= 1.0
    assert log["epochs"][0]["ce_loss"] > 0 and log["epochs"][0]["distill_loss"] > 0
    assert seen and seen[-1].step == seen[-1].steps and seen[-1].epoch == seen[-1].epochs == 2
    # The pool: labels only for training entities, validation entities unlabelled, nothing of the test split.
    pool, n = log["pool"], {split: len(small.split(split)) for split in ("train", "val")}
    artists = {key.split("/")[0] for key in pool}
    assert artists == {"google", "apple", "twitter", "facebook"}
    assert pool["google/labelled"] == n["train"] and pool["google/unlabelled"] == n["val"]
    for artist in artists:  # another artist may lack a few entities, never has more
        assert pool[f"{artist}/labelled"] <= n["train"] and pool[f"{artist}/unlabelled"] <= n["val"]
    assert sum(pool.values()) > 3 * (n["train"] + n["val"])


def test_a_recipe_needs_an_epoch_a_batch_of_two_and_no_negative_noise_epochs():
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        ImageRecipe(epochs=0)
    with pytest.raises(ValueError, match="batch size must be at least 2"):
        ImageRecipe(batch_size=1)
    with pytest.raises(ValueError, match="quant_noise_epochs must be 0 or more, got -1"):
        ImageRecipe(quant_noise_epochs=-1)


def test_quantisation_noise_is_half_a_step_of_each_tensors_range_in_training_only():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).train()
    x = torch.randn(4, 3, 8, 8)
    clean_norm = net[1](net[0](x)).detach()
    clean = net(x).detach()
    with quantisation_noise(net):
        noisy = net(x)
        assert torch.equal(net.eval()(x), net(x))  # no noise outside training
        net.train()
    # The norm's output and the ReLU's each get uniform noise of one step of their own range.
    bound = ((clean_norm.max() - clean_norm.min()) + (clean.max() - clean.min())) / LEVELS / 2
    error = (noisy.detach() - clean).abs().max()
    assert 0 < error <= bound * 1.001
    noisy.sum().backward()  # additive: gradients flow unchanged
    assert net[0].weight.grad.abs().sum() > 0
    assert torch.equal(net(x).detach(), clean)  # hooks removed on exit
