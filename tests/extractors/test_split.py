"""Split learning's two sides on small models: the leader's gradients (training rows only, deterministic, resumable)
and a site's trainable extractor (its bundle's weights, a step towards the gradients' targets, the fine-tuned
bundle's ONNX features equal to torch's, resumable); a bundle without weights cannot take part."""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from swarmfuse.extractors.bundle import (
    BundleError,
    ExtractorBundle,
    ExtractorProvenance,
    export_image_bundle,
    export_text_bundle,
    load_bundle,
)
from swarmfuse.extractors.fusion.head import train_head
from swarmfuse.extractors.image.backbone import build_resnet50_features
from swarmfuse.extractors.split import SplitConfig
from swarmfuse.extractors.split.gradients import GradientError, read_gradients
from swarmfuse.extractors.split.leader import SplitLeader
from swarmfuse.extractors.split.simulation import SimulatedSite, simulate_split_learning
from swarmfuse.extractors.split.site import TrainableExtractor
from swarmfuse.extractors.text.awd_lstm import AWDLSTMEncoder, TextFeatures
from swarmfuse.extractors.text.extractor import TextConfig, TextExtractor, awd_config
from swarmfuse.extractors.text.vocab import Vocab, tokenize

WORDS = (("sun", "beach", "warm", "sand"), ("snow", "ice", "cold", "frost"), ("rain", "cloud", "wet", "storm"))
FILLER = ("a", "the", "and", "of", "day", "night", "very", "so")
CONFIG = TextConfig(max_len=8, emb_size=8, hidden_size=16, layers=2)


def texts_and_labels(n: int = 90, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    texts = [" ".join(rng.permutation([*rng.choice(WORDS[c], 2), *rng.choice(FILLER, 4)])) for c in y]
    train = np.zeros(n, dtype=bool)
    train[: n * 2 // 3] = True
    return texts, y, train


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, _, _ = texts_and_labels()
    vocab = Vocab.build(iter(()), {t for text in texts for t in tokenize(text)}, 100, 1)
    import torch

    torch.manual_seed(0)
    features = TextFeatures(AWDLSTMEncoder(awd_config(CONFIG, len(vocab)))).eval()
    folder = tmp_path_factory.mktemp("text-bundle")
    export_text_bundle(TextExtractor(CONFIG, vocab, features, {}), texts[:2], "test: random small AWD-LSTM", folder,
                       provenance=ExtractorProvenance(recipe="test-random-awd-lstm", labels="none"))
    return folder


def probe_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray) -> float:
    head = train_head(x[train], y[train], x[train], y[train], 3, seed=0)
    return float((head.predict_proba(x[~train]).argmax(1) == y[~train]).mean())


def test_split_epochs_make_a_random_text_extractor_predictive_and_export_it(text_bundle: Path, tmp_path: Path) -> None:
    texts, y, train = texts_and_labels()
    site = TrainableExtractor(text_bundle, texts, None)
    leader = SplitLeader([site.bundle.feature_dim], 3)
    before = probe_accuracy(site.features(), y, train)
    faster = SplitConfig(step=1.0, lr=3e-3)  # a small model: larger steps (0.57 -> 0.93 -> 1.0 after 12 / 16 epochs)
    for epoch in range(16):
        [gradients] = leader.epoch([site.features()], y, train)
        assert not gradients[~train].any() and gradients[train].any()  # only training rows get a gradient
        site.step(gradients, faster, epoch=epoch)
    after = probe_accuracy(site.features(), y, train)
    assert after >= max(before + 0.2, 0.85), (before, after)

    tuned = site.export(tmp_path / "tuned", "test: after split learning", round_id="r7")
    parent = ExtractorBundle.read(text_bundle)
    assert tuned.onnx_sha256 != parent.onnx_sha256
    assert tuned.provenance == ExtractorProvenance(recipe="test-random-awd-lstm", labels="split-gradients",
                                                   split_round="r7", parent_sha256=parent.onnx_sha256)
    onnx = load_bundle(tmp_path / "tuned").extract(texts)
    assert np.abs(onnx - site.features()).max() < 1e-4

    site.save(tmp_path / "top.pt")
    resumed = TrainableExtractor(text_bundle, texts, None)
    resumed.load(tmp_path / "top.pt")
    assert np.array_equal(resumed.features(), site.features())


def test_the_leader_is_deterministic_and_resumes_from_its_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    blocks = [rng.normal(size=(30, 4)).astype(np.float32), rng.normal(size=(30, 3)).astype(np.float32)]
    y, train = np.arange(30) % 3, np.arange(30) < 20
    first, second = SplitLeader([4, 3], 3, seed=5), SplitLeader([4, 3], 3, seed=5)
    for a, b in zip(first.epoch(blocks, y, train), second.epoch(blocks, y, train), strict=True):
        assert np.array_equal(a, b) and a.shape[0] == 30
    first.save(tmp_path / "leader.pt")
    resumed = SplitLeader([4, 3], 3, seed=5)
    resumed.load(tmp_path / "leader.pt")
    assert resumed.epochs_done == 1
    for a, b in zip(first.epoch(blocks, y, train), resumed.epoch(blocks, y, train), strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="expected widths"):
        first.epoch([blocks[0]], y, train)
    longer = SplitLeader([4, 3], 3, SplitConfig(head_passes=3), seed=5)  # more passes: other heads, other gradients
    default = SplitLeader([4, 3], 3, seed=5)
    assert not np.array_equal(longer.epoch(blocks, y, train)[0], default.epoch(blocks, y, train)[0])


def test_an_image_extractor_fine_tunes_its_last_stage(tmp_path: Path) -> None:
    import torch

    rng = np.random.default_rng(2)
    (tmp_path / "img").mkdir()
    names = []
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "img" / f"{i}.png")
        names.append(f"img/{i}.png")
    torch.manual_seed(0)
    export_image_bundle(build_resnet50_features().eval(), [tmp_path / n for n in names[:2]], 16, "resnet50",
                        "test: random ResNet50", tmp_path / "bundle", provenance=None)
    site = TrainableExtractor(tmp_path / "bundle", names, tmp_path)
    start = site.features()
    frozen = {k: v.clone() for k, v in site.module.state_dict().items() if k.startswith("layer3")}
    gradients = np.zeros_like(start)
    gradients[:6] = rng.normal(size=(6, start.shape[1])).astype(np.float32)
    site.step(gradients, SplitConfig(local_passes=1))
    assert not np.allclose(site.features(), start)
    assert all(torch.equal(v, site.module.state_dict()[k]) for k, v in frozen.items())  # the bottom stays frozen
    assert site.export(tmp_path / "tuned", "test: fine-tuned", round_id="r1").provenance is None  # unknown stays so
    assert np.abs(load_bundle(tmp_path / "tuned").extract(names, tmp_path) - site.features()).max() < 1e-4

    last = TrainableExtractor(tmp_path / "bundle", names, tmp_path, config=SplitConfig(image_blocks=1, local_passes=1))
    assert np.allclose(last.features(), start, atol=1e-5)  # the same network, cut later
    frozen = {k: v.clone() for k, v in last.module.state_dict().items() if not k.startswith("layer4.2.")}
    last.step(gradients)
    assert not np.allclose(last.features(), start)
    assert all(torch.equal(v, last.module.state_dict()[k]) for k, v in frozen.items())  # only layer4's last block
    last.save(tmp_path / "last.pt")
    resumed = TrainableExtractor(tmp_path / "bundle", names, tmp_path, config=SplitConfig(image_blocks=1))
    resumed.load(tmp_path / "last.pt")
    assert np.array_equal(resumed.features(), last.features())


def test_bad_input_is_refused(text_bundle: Path, tmp_path: Path) -> None:
    texts, _, _ = texts_and_labels()
    site = TrainableExtractor(text_bundle, texts, None)
    before = site.features()
    with pytest.raises(GradientError, match="gradients of shape"):
        site.step(np.zeros((3, 3), dtype=np.float32))
    for value in (np.nan, np.inf, -np.inf):
        bad = np.zeros_like(before)
        bad[0, 0] = value
        with pytest.raises(GradientError, match="1 values that are not finite"):
            site.step(bad)
    for dtype in (np.float64, np.float16, np.int32, np.complex64, np.bool_, "U1", [("g", "<f4")]):
        with pytest.raises(GradientError, match="not float32"):
            site.step(np.zeros(before.shape, dtype=dtype))
    with pytest.raises(GradientError, match="a list, not an array"):
        site.step([[0.0]])  # type: ignore[arg-type]
    assert np.array_equal(site.features(), before)  # nothing refused moved the extractor
    old = ExtractorBundle.read(text_bundle)
    without = tmp_path / "without"
    without.mkdir()
    for name in old.files():
        if name != old.trainable_file:
            (without / name).write_bytes((text_bundle / name).read_bytes())
    dataclasses.replace(old, trainable_file="", trainable_sha256="").save(without)
    with pytest.raises(BundleError, match="holds no trainable weights"):
        TrainableExtractor(without, texts, None)
    for bad_config in ({"step": 0}, {"image_blocks": 0}, {"image_blocks": 4}, {"head_passes": 0}):
        with pytest.raises(ValueError, match="invalid split-learning configuration"):
            SplitConfig(**bad_config)
    assert site.config == SplitConfig.for_modality("text")


def test_the_local_simulation_runs_the_epochs_a_round_runs(text_bundle: Path) -> None:
    texts, y, train = texts_and_labels()
    site = SimulatedSite(text_bundle, texts)
    [tuned] = simulate_split_learning([site], y, train, 3, epochs=2, seed=0)
    leader, by_hand = SplitLeader([tuned.bundle.feature_dim], 3), TrainableExtractor(text_bundle, texts, None)
    for epoch in (1, 2):  # the same exchange, written out
        [gradients] = leader.epoch([by_hand.features()], y, train)
        by_hand.step(gradients, epoch=epoch)
    assert np.array_equal(tuned.features(), by_hand.features())
    assert not np.allclose(tuned.features(), TrainableExtractor(text_bundle, texts, None).features())
    with pytest.raises(ValueError, match="at least one epoch, not 0"):
        simulate_split_learning([site], y, train, 3, epochs=0)
    with pytest.raises(ValueError, match="one per aligned row"):
        simulate_split_learning([SimulatedSite(text_bundle, texts[:-1])], y, train, 3, epochs=1)


def test_a_gradient_file_is_one_float32_npy_array_without_objects(tmp_path: Path) -> None:
    """What a site reads from the leader's recorded gradient file: a pickle, an .npz, an array of objects, an
    empty or cut file are each a :class:`GradientError` saying so (the site declines the round with it)."""
    good = np.ones((4, 3), dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, good, allow_pickle=False)
    whole = buffer.getvalue()
    objects = io.BytesIO()
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    zipped = io.BytesIO()
    np.savez(zipped, gradients=good)
    cases = {
        "pickle": (pickle.dumps(good), "not a .npy array"),
        "npz": (zipped.getvalue(), "not a .npy array"),
        "empty": (b"", "not a .npy array"),
        "objects": (objects.getvalue(), "cannot be read as an array: Object arrays"),
        "cut": (whole[:-5], "cannot be read as an array"),
        "header": (whole[:12], "cannot be read as an array"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / f"{name}.npy").write_bytes(data)
        with pytest.raises(GradientError, match=message):
            read_gradients(tmp_path / f"{name}.npy")
    (tmp_path / "good.npy").write_bytes(whole)
    assert np.array_equal(read_gradients(tmp_path / "good.npy"), good)
    big_endian = tmp_path / "big.npy"
    np.save(big_endian, good.astype(">f4"))
    assert read_gradients(big_endian).dtype == np.dtype(">f4")  # float32 still: the check makes it native


def test_a_gradient_of_absurd_magnitude_moves_the_extractor_as_far_as_its_direction_does(text_bundle: Path) -> None:
    """The step is normalised: a finite float32 gradient near float32's limit (which overflowed the float32
    arithmetic before: NaN targets) moves the top exactly as the same direction at an honest size does."""
    texts, y, train = texts_and_labels()
    honest, huge = TrainableExtractor(text_bundle, texts, None), TrainableExtractor(text_bundle, texts, None)
    [gradients] = SplitLeader([honest.bundle.feature_dim], 3).epoch([honest.features()], y, train)
    direction = gradients / np.abs(gradients).max()
    honest.step(direction.astype(np.float32))
    huge.step((direction * np.float32(3e38)).astype(np.float32))
    assert np.isfinite(huge.features()).all()
    assert np.allclose(huge.features(), honest.features(), atol=1e-5)
    assert not np.allclose(huge.features(), TrainableExtractor(text_bundle, texts, None).features(), atol=1e-3)
