"""Extractor bundles: torch-free preprocessing equal to the extractors' own, features equal to the pipeline's,
SHA-256 verification on load, cached export, and a runtime half that never imports torch."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from python_process import run_python
from torch import nn

from swarmfuse.extractors import bundle as bundle_mod
from swarmfuse.extractors import pipeline
from swarmfuse.extractors.bundle import (
    BUNDLE_JSON,
    BundleError,
    ExtractorBundle,
    ExtractorProvenance,
    ImagePreprocess,
    TextPreprocess,
    bundle_cache_dir,
    carry_over,
    encode_texts,
    export_bundles,
    load_bundle,
    load_images,
    teacher_sha256,
)
from swarmfuse.extractors.data import fetch_emoji
from swarmfuse.extractors.data.cache import sha256_file
from swarmfuse.extractors.image import preprocess_images
from swarmfuse.extractors.image.preprocess import MEAN, STD
from swarmfuse.extractors.onnx import export_onnx
from swarmfuse.extractors.pipeline import ImageConfig, PipelineConfig, build_features
from swarmfuse.extractors.text import TextConfig, Vocab, cached_text_extractor

# The run-time half must work on the ``extract`` extra alone: no torch, torchvision, onnx, sklearn, matplotlib.
TRAINING_ONLY = ("torch", "torchvision", "onnx", "sklearn", "matplotlib")

TRICKY_TEXTS = [
    "", "   ", "Grinning Face. smile, HAPPY", "it\u2019s a dog's life", "ÉCOLE café naïve 日本 😀",
    ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four twenty-five"),
    "x" * 500, "42 is the answer!!! ...", "tab\tnew\nline", "DIGITS123abc ABC-def_ghi",
]


# ----------------------------------------------------------------------------------------------------------------
# Small hand-made bundles (fast)


class _BagOfEmbeddings(nn.Module):
    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids).mean(dim=1)


class _ChannelStats(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


def _tiny_text_bundle(folder: Path) -> tuple[ExtractorBundle, Vocab, nn.Module]:
    torch.manual_seed(0)
    vocab = Vocab(("<pad>", "<unk>", "<eos>", "grinning", "face", "smile", "it", "s", "dog", "42", "cafe"))
    module = _BagOfEmbeddings(len(vocab), 6).eval()
    folder.mkdir(parents=True)
    sha = export_onnx(module, (torch.zeros(2, 8, dtype=torch.int64),), folder / "text.onnx", ["token_ids"],
                      ["features"], {"token_ids": {0: "batch"}, "features": {0: "batch"}})
    (folder / "vocab.json").write_text(json.dumps(list(vocab.itos)), encoding="utf-8")
    spec = TextPreprocess(vocab_file="vocab.json", vocab_sha256=sha256_file(folder / "vocab.json"),
                          vocab_size=len(vocab), max_len=8)
    bundle = ExtractorBundle(modality="text", backbone="bag", onnx_file="text.onnx", onnx_sha256=sha, feature_dim=6,
                             input_name="token_ids", preprocess=spec)
    bundle.save(folder)
    return bundle, vocab, module


def _tiny_image_bundle(folder: Path, resolution: int = 16) -> ExtractorBundle:
    folder.mkdir(parents=True)
    sha = export_onnx(_ChannelStats().eval(), (torch.zeros(2, 3, resolution, resolution),), folder / "image.onnx",
                      ["pixels"], ["features"], {"pixels": {0: "batch"}, "features": {0: "batch"}})
    spec = ImagePreprocess(resolution=resolution, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    bundle = ExtractorBundle(modality="image", backbone="stats", onnx_file="image.onnx", onnx_sha256=sha,
                             feature_dim=6, input_name="pixels", preprocess=spec)
    bundle.save(folder)
    return bundle


def _images(folder: Path) -> list[str]:
    """Images of every kind Pillow hands us: RGBA with transparency, palette, grey, RGB, odd sizes, JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    made = []
    for i, (mode, size, ext) in enumerate([("RGBA", 16, "png"), ("RGBA", 64, "png"), ("RGB", 23, "png"),
                                           ("L", 40, "png"), ("P", 16, "png"), ("RGB", 31, "jpg"), ("LA", 9, "png")]):
        channels = {"RGBA": 4, "RGB": 3, "L": 1, "LA": 2, "P": 1}[mode]
        data = rng.integers(0, 256, size=(size, size, channels), dtype=np.uint8)
        if mode == "P":
            img = Image.fromarray(data[..., 0], "L").convert("P")
        else:
            img = Image.fromarray(data if channels > 1 else data[..., 0], mode)
        name = f"img{i}.{ext}"
        img.save(folder / name)
        made.append(name)
    return made


def test_bundle_json_round_trips_and_is_validated() -> None:
    spec = TextPreprocess(vocab_file="vocab.json", vocab_sha256="a" * 64, vocab_size=10, max_len=24)
    bundle = ExtractorBundle(modality="text", backbone="awd-lstm", onnx_file="text.onnx", onnx_sha256="b" * 64,
                             feature_dim=128, input_name="token_ids", preprocess=spec, source="text-0123")
    assert ExtractorBundle.from_json(bundle.to_json()) == bundle
    image = ImagePreprocess(resolution=64, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    ib = dataclasses.replace(bundle, modality="image", backbone="resnet50", input_name="pixels", preprocess=image,
                             feature_dim=2048)
    assert ExtractorBundle.from_json(ib.to_json()) == ib
    good = bundle.to_dict()
    bad_docs = {
        "modality": {**good, "modality": "audio"},
        "SHA-256": {**good, "onnx_sha256": "not-a-hash"},
        "plain file name": {**good, "onnx_file": "../../etc/passwd"},
        "format": {**good, "format": 99},
        "integer": {**good, "feature_dim": "128"},
        "unknown": {**good, "extra": 1},
        "lacks": {k: v for k, v in good.items() if k != "onnx_file"},
        "vocab_file": {**good, "preprocess": {**good["preprocess"], "vocab_file": "/tmp/v.json"}},
        "regular expression": {**good, "preprocess": {**good["preprocess"], "token_pattern": "[a-z"}},
        "pairs of strings": {**good, "preprocess": {**good["preprocess"], "replacements": [["x"]]}},
        "unsupported image": {**ib.to_dict(), "preprocess": {**ib.to_dict()["preprocess"], "resample": "magic"}},
    }
    for needle, doc in bad_docs.items():
        with pytest.raises(BundleError, match=needle):
            ExtractorBundle.from_dict(doc)
    with pytest.raises(BundleError, match="not JSON"):
        ExtractorBundle.from_json("{")


SITE_TEXT = ExtractorProvenance(recipe="site-text-0123456789abcdef", labels="none", data_sha256="d" * 64,
                                corpus_sha256="c" * 64)


def test_provenance_round_trips_in_bundle_json_and_older_bundles_read_as_unknown() -> None:
    spec = TextPreprocess(vocab_file="vocab.json", vocab_sha256="a" * 64, vocab_size=10, max_len=24)
    bundle = ExtractorBundle(modality="text", backbone="awd-lstm", onnx_file="text.onnx", onnx_sha256="b" * 64,
                             feature_dim=128, input_name="token_ids", preprocess=spec, provenance=SITE_TEXT)
    assert ExtractorBundle.from_json(bundle.to_json()) == bundle
    tuned = SITE_TEXT.fine_tuned("e" * 64, "round-1")
    assert (tuned.labels, tuned.split_round, tuned.parent_sha256, tuned.data_sha256) == \
        ("split-gradients", "round-1", "e" * 64, "d" * 64)
    reference = dataclasses.replace(SITE_TEXT, labels="foreign")
    assert reference.fine_tuned("e" * 64, "round-1").labels == "foreign"  # gradients do not wash foreign labels out
    older = {k: v for k, v in bundle.to_dict().items() if k != "provenance"}
    assert ExtractorBundle.from_dict(older).provenance is None
    good = bundle.to_dict()
    bad = {
        "provenance labels must be one of": {"labels": "borrowed"},
        "recipe must be a cache stage name": {"recipe": "site text/../x"},
        "provenance.teacher_sha256 must be a lower-case hex SHA-256": {"teacher_sha256": "F" * 64},
        "split_round and parent_sha256 go together": {"split_round": "r1"},
        "'split-gradients' needs the split_round": {"labels": "split-gradients"},
        "split-fine-tuned bundle's labels": {"split_round": "r1", "parent_sha256": "e" * 64},
        "unknown ExtractorProvenance field": {"teacher": "lite0"},
    }
    for needle, change in bad.items():
        with pytest.raises(BundleError, match=needle):
            ExtractorBundle.from_dict({**good, "provenance": {**good["provenance"], **change}})


def test_a_bundle_cached_before_provenance_is_carried_over_without_exporting_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARMFUSE_CACHE", str(tmp_path / "cache"))
    cached = bundle_cache_dir("site-text-0123456789abcdef", None)
    old = cached.with_name(cached.name.replace(f"bundle{bundle_mod.CACHE_LAYOUT}-", "bundle2-"))
    assert old != cached
    assert carry_over(cached, SITE_TEXT) is None  # nothing cached before: nothing to carry over
    bundle, _, _ = _tiny_text_bundle(old)
    carried = carry_over(cached, SITE_TEXT)
    assert carried == dataclasses.replace(bundle, provenance=SITE_TEXT) == load_bundle(cached).bundle
    assert ExtractorBundle.read(old).provenance is None  # the old entry is left as it was, for older code


def test_torch_free_encoding_equals_vocab_encoding_on_tricky_texts() -> None:
    vocab = Vocab(("<pad>", "<unk>", "<eos>", "grinning", "face", "smile", "it", "s", "dog", "42", "caf", "one",
                   "two", "digits123abc", "abc", "def_ghi", "def"))
    spec = TextPreprocess(vocab_file="v.json", vocab_sha256="0" * 64, vocab_size=len(vocab), max_len=12)
    ours = encode_texts(TRICKY_TEXTS, spec, {t: i for i, t in enumerate(vocab.itos)})
    assert ours.dtype == np.int64
    assert np.array_equal(ours, vocab.encode_batch(TRICKY_TEXTS, 12))
    assert encode_texts([], spec, {}).shape == (0, 12)


def test_torch_free_image_preprocessing_equals_preprocess_images(tmp_path: Path) -> None:
    names = _images(tmp_path)
    for size in (16, 24, 64):
        spec = ImagePreprocess(resolution=size, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
        ours = load_images([tmp_path / n for n in names], spec)
        assert ours.dtype == np.float32 and ours.shape == (len(names), 3, size, size)
        assert np.array_equal(ours, preprocess_images([tmp_path / n for n in names], size))
    assert np.array_equal(np.asarray((0.485, 0.456, 0.406), dtype=np.float32), MEAN)  # the spec's decimals
    assert np.array_equal(np.asarray((0.229, 0.224, 0.225), dtype=np.float32), STD)


def test_small_bundles_extract_in_batches_and_match_torch(tmp_path: Path) -> None:
    _, vocab, module = _tiny_text_bundle(tmp_path / "text")
    loaded = load_bundle(tmp_path / "text")
    assert loaded.feature_dim == 6 and loaded.sha256 == sha256_file(tmp_path / "text" / "text.onnx")
    assert loaded.provider in ("CPUExecutionProvider", "CUDAExecutionProvider")
    features = loaded.extract(TRICKY_TEXTS, batch_size=3)
    assert features.dtype == np.float32 and features.shape == (len(TRICKY_TEXTS), 6)
    with torch.no_grad():
        expected = module(torch.from_numpy(vocab.encode_batch(TRICKY_TEXTS, 8))).numpy()
    assert np.abs(features - expected).max() <= 1e-5
    assert np.array_equal(features, loaded.extract(TRICKY_TEXTS, batch_size=100))
    assert loaded.extract([]).shape == (0, 6)

    names = _images(tmp_path / "pics")
    _tiny_image_bundle(tmp_path / "image")
    image = load_bundle(tmp_path / "image")
    got = image.extract(names, base=tmp_path / "pics", batch_size=2)
    with torch.no_grad():
        want = _ChannelStats()(torch.from_numpy(preprocess_images([tmp_path / "pics" / n for n in names], 16))).numpy()
    assert np.abs(got - want).max() <= 1e-5
    with pytest.raises(BundleError, match="cannot read image"):
        image.extract(["missing.png"], base=tmp_path / "pics")


def test_altered_files_are_refused(tmp_path: Path) -> None:
    _tiny_text_bundle(tmp_path / "text")
    load_bundle(tmp_path / "text")
    for name in ("text.onnx", "vocab.json"):
        tampered = tmp_path / f"tampered-{name}"
        shutil.copytree(tmp_path / "text", tampered)
        data = bytearray((tampered / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (tampered / name).write_bytes(bytes(data))
        with pytest.raises(BundleError, match=f"{name} has SHA-256 .* but bundle.json records"):
            load_bundle(tampered)
    missing = tmp_path / "missing"
    shutil.copytree(tmp_path / "text", missing)
    (missing / "text.onnx").unlink()
    with pytest.raises(BundleError, match="lacks text.onnx"):
        load_bundle(missing)
    with pytest.raises(BundleError, match="no readable bundle.json"):
        load_bundle(tmp_path / "nowhere")


def test_bundle_json_must_agree_with_the_onnx_model(tmp_path: Path) -> None:
    bundle, _, _ = _tiny_text_bundle(tmp_path / "text")
    wrong_len = dataclasses.replace(bundle, preprocess=dataclasses.replace(bundle.preprocess, max_len=9))
    wrong_len.save(tmp_path / "text")
    with pytest.raises(BundleError, match="does not match bundle.json"):
        load_bundle(tmp_path / "text")
    dataclasses.replace(bundle, feature_dim=7).save(tmp_path / "text")
    with pytest.raises(BundleError, match="feature_dim 7"):
        load_bundle(tmp_path / "text")


def test_runtime_half_imports_no_torch(tmp_path: Path) -> None:
    _tiny_text_bundle(tmp_path / "text")
    names = _images(tmp_path / "pics")
    _tiny_image_bundle(tmp_path / "image")
    code = f"""
        import sys
        import numpy as np
        from swarmfuse.extractors.bundle import load_bundle
        text = load_bundle({str(tmp_path / 'text')!r}).extract(["Grinning face", "a dog"])
        image = load_bundle({str(tmp_path / 'image')!r}).extract({names!r}, base={str(tmp_path / 'pics')!r})
        assert text.shape == (2, 6) and image.shape == ({len(names)}, 6), (text.shape, image.shape)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "onnx"))
        assert not heavy, heavy
        print("ok")
    """
    for block in (True, False):  # blocked: works without them; unblocked: never even loads them
        done = run_python(code, blocked=TRAINING_ONLY if block else ())
        assert done.returncode == 0 and "ok" in done.stdout, done.stderr


# ----------------------------------------------------------------------------------------------------------------
# The real pipeline's extractors (slow on a cold cache; seconds when the pipeline is cached)


@pytest.fixture(scope="module")
def manifest():
    return fetch_emoji()


@pytest.fixture(scope="module")
def pipeline_result():
    return build_features(PipelineConfig())


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, pipeline_result) -> dict[str, Path]:
    return export_bundles(tmp_path_factory.mktemp("bundles"), PipelineConfig())


@pytest.mark.slow
def test_torch_free_encoding_equals_text_extractor_encode_on_real_texts(bundles, manifest):
    loaded = load_bundle(bundles["text"])
    text, _ = cached_text_extractor(manifest, TextConfig())
    texts = [e.text for e in manifest.entities] + TRICKY_TEXTS
    assert np.array_equal(loaded.preprocess(texts), text.encode(texts))
    assert loaded.bundle.preprocess.vocab_size == len(text.vocab)


@pytest.mark.slow
def test_torch_free_image_preprocessing_equals_preprocess_images_on_real_images(bundles, manifest):
    loaded = load_bundle(bundles["image"])
    rels = [e.image for e in manifest.entities]
    ours = loaded.preprocess(rels, base=manifest.root)
    assert np.array_equal(ours, preprocess_images([manifest.image_path(e) for e in manifest.entities],
                                                  PipelineConfig().image.resolution))


@pytest.mark.slow
def test_the_reference_bundles_say_they_were_trained_with_the_label_holders_labels(bundles, manifest):
    from swarmfuse.extractors.data import fetch_corpus

    text, image = (ExtractorBundle.read(bundles[m]).provenance for m in ("text", "image"))
    assert text is not None and image is not None
    assert (text.labels, text.data_sha256, text.corpus_sha256) == ("foreign", manifest.fingerprint(),
                                                                   fetch_corpus().sha256)
    assert (image.labels, image.data_sha256, image.teacher_sha256, image.weights_sha256) == (
        "foreign", manifest.fingerprint(), teacher_sha256(), None)
    assert text.recipe.startswith("text-") and image.recipe.startswith("image-")


@pytest.mark.slow
def test_bundle_features_equal_the_pipelines_cached_features(bundles, manifest, pipeline_result):
    fs = pipeline_result.features
    assert list(fs.ids) == [e.id for e in manifest.entities]
    text = load_bundle(bundles["text"])
    assert text.bundle.backbone == "awd-lstm" and text.feature_dim == fs.text.shape[1]
    got = text.extract([e.text for e in manifest.entities])
    assert np.abs(got - fs.text).max() <= 1e-4
    image = load_bundle(bundles["image"])
    assert image.bundle.backbone == PipelineConfig().image.backbone and image.feature_dim == fs.image.shape[1]
    rows = np.arange(0, len(manifest.entities), 7)  # ~270 images keep this quick on a 2-core CPU
    got = image.extract([manifest.entities[i].image for i in rows], base=manifest.root)
    assert np.abs(got - fs.image[rows]).max() <= 1e-4


@pytest.mark.slow
def test_real_bundle_runs_without_torch(bundles, manifest, pipeline_result, tmp_path):
    rows = list(range(0, len(manifest.entities), 97))
    texts = [manifest.entities[i].text for i in rows]
    images = [manifest.entities[i].image for i in rows]
    code = f"""
        import sys
        import numpy as np
        from swarmfuse.extractors.bundle import load_bundle
        text = load_bundle({str(bundles['text'])!r})
        image = load_bundle({str(bundles['image'])!r})
        np.save({str(tmp_path / 'text.npy')!r}, text.extract({texts!r}))
        np.save({str(tmp_path / 'image.npy')!r}, image.extract({images!r}, base={str(manifest.root)!r}))
        assert "torch" not in sys.modules
        print(text.provider, image.provider)
    """
    done = run_python(code, blocked=TRAINING_ONLY)
    assert done.returncode == 0, done.stderr
    fs = pipeline_result.features
    assert np.abs(np.load(tmp_path / "text.npy") - fs.text[rows]).max() <= 1e-4
    assert np.abs(np.load(tmp_path / "image.npy") - fs.image[rows]).max() <= 1e-4


@pytest.mark.slow
def test_tampered_real_onnx_is_refused_and_export_repairs_it(bundles, tmp_path):
    target = tmp_path / "site" / "image"
    shutil.copytree(bundles["image"], target)
    bundle = ExtractorBundle.read(target)
    with (target / bundle.onnx_file).open("r+b") as fh:  # in place, as an attacker with file access would
        fh.seek(4096)
        byte = fh.read(1)
        fh.seek(4096)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match="image.onnx has SHA-256 .* but bundle.json records"):
        load_bundle(target)
    export_bundles(tmp_path / "site", PipelineConfig())
    assert load_bundle(target).sha256 == bundle.onnx_sha256 == sha256_file(target / bundle.onnx_file)


@pytest.mark.slow
def test_second_export_is_a_cache_hit(bundles, monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("a cached bundle was exported or trained again")

    for name in ("export_text_onnx", "export_image_onnx", "image_extractor"):
        monkeypatch.setattr(pipeline, name, refuse)
    monkeypatch.setattr("swarmfuse.extractors.text.cached_text_extractor", refuse)
    monkeypatch.setattr(bundle_mod, "_export", refuse)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for folder in bundles.values() for p in folder.iterdir()}
    start = time.perf_counter()
    again = export_bundles(bundles["text"].parent, PipelineConfig())
    seconds = time.perf_counter() - start
    assert again == bundles
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for folder in again.values() for p in folder.iterdir()} == before
    assert seconds < 10, f"a cache hit took {seconds:.1f} s"
    elsewhere = export_bundles(tmp_path / "other-site", PipelineConfig())  # another folder: copied from the cache
    for modality, folder in elsewhere.items():
        assert (folder / BUNDLE_JSON).read_bytes() == (bundles[modality] / BUNDLE_JSON).read_bytes()
        assert load_bundle(folder).sha256 == load_bundle(bundles[modality]).sha256


@pytest.mark.slow
def test_efficientnet_lite0_bundle_equals_its_pipeline_features(manifest, tmp_path):
    config = PipelineConfig(image=ImageConfig(backbone="efficientnet_lite0"))
    fs = build_features(config).features
    loaded = load_bundle(export_bundles(tmp_path, config)["image"])
    assert loaded.bundle.backbone == "efficientnet_lite0" and loaded.feature_dim == fs.image.shape[1] == 1280
    assert loaded.bundle.provenance == ExtractorProvenance(recipe="image-efficientnet_lite0-64px", labels="none",
                                                           weights_sha256=teacher_sha256())
    rows = np.arange(0, len(manifest.entities), 5)
    got = loaded.extract([manifest.entities[i].image for i in rows], base=manifest.root)
    assert np.abs(got - fs.image[rows]).max() <= 1e-4
