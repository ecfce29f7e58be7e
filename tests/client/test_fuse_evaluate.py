"""``swarmfuse fuse evaluate`` and :func:`~swarmfuse.client.demo.local_regimes.evaluate_regimes` on a tiny synthetic
data set with small random extractors (no real extractor is trained): every method in each asked regime on the same
aligned entities, (b) moved away from (a) by split learning, (c) labelled as the forbidden reference; and the
refusals of bad requests, before anything is trained."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli
from PIL import Image

from swarmfuse.client.demo import local_regimes
from swarmfuse.client.demo.local_regimes import evaluate_regimes, parse_regimes
from swarmfuse.client.demo.regimes import AlignedViews
from swarmfuse.client.site.manifest import load_manifest
from swarmfuse.extractors.fusion.head import HeadConfig
from swarmfuse.extractors.fusion.methods import METHODS

WORDS = (("sun", "beach", "warm", "sand"), ("snow", "ice", "cold", "frost"), ("rain", "cloud", "wet", "storm"))
FILLER = ("a", "the", "and", "of", "day", "night", "very", "so")
CLASSES = ("cold", "rainy", "sunny")
N = 60
SMALL_HEAD = HeadConfig(hidden=32, epochs=8, patience=3)


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> AlignedViews:
    """DC1 labels all 60 entities (36 train, 12 val, 12 test), DC2 texts 0..57, DC3 images 2..59: 56 aligned."""
    root = tmp_path_factory.mktemp("views")
    rng = np.random.default_rng(0)
    y = np.arange(N) % 3
    split = ["train"] * 36 + ["val"] * 12 + ["test"] * 12
    labels = ["entity_id,label,split"] + [f"e{i:02d},{CLASSES[(c + 2) % 3]},{split[i]}" for i, c in enumerate(y)]
    texts = ["entity_id,text"] + [
        f"e{i:02d}," + " ".join(rng.permutation([*rng.choice(WORDS[c], 2), *rng.choice(FILLER, 4)]))
        for i, c in enumerate(y) if i < 58]
    (root / "img").mkdir()
    images = ["entity_id,image"]
    for i, c in enumerate(y):
        if i >= 2:
            pixels = rng.integers(0, 80, (16, 16, 3), dtype=np.uint8)
            pixels[..., c] += 150  # one colour channel per class
            Image.fromarray(pixels).save(root / "img" / f"{i}.png")
            images.append(f"e{i:02d},img/{i}.png")
    for name, lines in (("labels.csv", labels), ("texts.csv", texts), ("images.csv", images)):
        (root / name).write_text("\n".join(lines) + "\n")
    return AlignedViews.intersect(load_manifest(root / "labels.csv", "label"), load_manifest(root / "texts.csv", "text"),
                                  load_manifest(root / "images.csv", "image"))


def _bundles(views: AlignedViews, out: Path, seed: int, image: Path | None = None) -> dict[str, Path]:
    """A small random AWD-LSTM over the views' words and (unless ``image`` is given) a random ResNet50 at 16 px, as
    ONNX bundles with weights."""
    import torch

    from swarmfuse.extractors.bundle import ExtractorProvenance, export_image_bundle, export_text_bundle
    from swarmfuse.extractors.image.backbone import build_resnet50_features
    from swarmfuse.extractors.text.awd_lstm import AWDLSTMEncoder, TextFeatures
    from swarmfuse.extractors.text.extractor import TextConfig, TextExtractor, awd_config
    from swarmfuse.extractors.text.vocab import Vocab, tokenize

    found = {"text": out / "text", "image": image or out / "image"}
    if (out / "text" / "bundle.json").is_file():
        return found
    config = TextConfig(max_len=8, emb_size=8, hidden_size=16, layers=2)
    texts = [row.value for row in views.texts.rows]
    vocab = Vocab.build(iter(()), {t for text in texts for t in tokenize(text)}, 100, 1)
    torch.manual_seed(seed)
    text = TextFeatures(AWDLSTMEncoder(awd_config(config, len(vocab)))).eval()
    export_text_bundle(TextExtractor(config, vocab, text, {}), texts[:2], "test: random small AWD-LSTM",
                       out / "text", provenance=ExtractorProvenance(recipe="test-random-awd-lstm", labels="none"))
    if image is None:
        images = [views.images.image_path(row) for row in views.images.rows[:2]]
        export_image_bundle(build_resnet50_features().eval(), images, 16, "resnet50", "test: random ResNet50",
                            out / "image", provenance=None)
    return found


@pytest.fixture(scope="module")
def small_extractors(views: AlignedViews, tmp_path_factory: pytest.TempPathFactory):
    """``own`` and ``reference`` bundle providers of small random extractors (the reference's text extractor of
    another seed, its image extractor the sites' own: one ResNet50 export less)."""
    own_dir, reference_dir = tmp_path_factory.mktemp("own"), tmp_path_factory.mktemp("reference")
    return ((lambda v, seed: _bundles(v, own_dir, seed)),
            (lambda out: _bundles(views, reference_dir, 7, image=own_dir / "image")))


def test_every_regime_scores_every_method_on_the_same_entities(views, small_extractors, tmp_path) -> None:
    own, reference = small_extractors
    evaluation = evaluate_regimes(views, ("c", "a", "b"), tmp_path, split_epochs=2, seed=0, head_seeds=(0,),
                                  own=own, reference=reference, head_config=SMALL_HEAD)
    assert list(evaluation.regimes) == ["a", "b", "c"]  # report order, whatever the order asked
    assert len(views.ids) == 56 and evaluation.entities == {"train": 34, "val": 12, "test": 10}
    for scores in evaluation.regimes.values():
        assert set(scores.methods) == set(METHODS)
        assert all(0 <= s["accuracy"] <= 1 and 0 <= s["macro_f1"] <= 1 for s in scores.methods.values())
    a, b = evaluation.regimes["a"], evaluation.regimes["b"]
    # split learning fine-tuned both sites' extractors: other bundles, other features, other scores
    assert a.extractors["text"] != b.extractors["text"] and a.extractors["image"] != b.extractors["image"]
    assert a.methods != b.methods
    assert "2 split-learning epochs" in b.description and "forbidden" in evaluation.regimes["c"].description
    doc = evaluation.to_json()
    assert doc["regimes"]["c"]["forbidden_reference"] and not doc["regimes"]["a"]["forbidden_reference"]
    assert "forbids" in doc["caution"] and doc["split_epochs"] == 2


def test_the_cli_prints_methods_by_regime_and_labels_the_reference(views, small_extractors, tmp_path,
                                                                  monkeypatch) -> None:
    own, reference = small_extractors
    monkeypatch.setattr(local_regimes, "main_job_views", lambda out: views)
    monkeypatch.setattr(local_regimes, "site_bundles", own)
    monkeypatch.setattr(local_regimes, "reference_bundles", reference)
    monkeypatch.setattr(local_regimes, "evaluate_regimes", functools.partial(evaluate_regimes, head_config=SMALL_HEAD))
    code, output = run_cli("fuse", "evaluate", "--regimes", "a,c", "--head-seeds", "0",
                           "--json", str(tmp_path / "scores.json"))
    text = " ".join(output.split())
    assert code == 0, output
    assert "10 aligned test entities" in text and "FORBIDDEN" in text and "caution:" in text
    assert "(b)" not in text  # only what was asked
    for method in METHODS:
        assert method.replace("_", " ") in text
    doc = json.loads((tmp_path / "scores.json").read_text())
    assert list(doc["regimes"]) == ["a", "c"] and doc["split_epochs"] is None
    assert doc["regimes"]["c"]["forbidden_reference"] and set(doc["regimes"]["a"]["methods"]) == set(METHODS)


@pytest.mark.parametrize(("args", "message"), [
    (["--regimes", "a,d"], "unknown regime 'd'"),
    (["--regime", ""], "comma-separated list of a, b, c"),
    (["--split-epochs", "-1"], "split epochs must not be negative, not -1"),
    (["--regime", "b", "--split-epochs", "0"], "regime (b) needs at least one split-learning epoch"),
    (["--head-seeds", "x"], "seeds must be comma-separated integers"),
    (["--json", "/nonexistent-folder/scores.json"], "the folder of --json /nonexistent-folder/scores.json does not exist"),
    (["--json", "/"], "--json / is a folder"),
])
def test_the_cli_refuses_bad_requests_before_training(args, message, monkeypatch) -> None:
    def never(*_args, **_kwargs):
        raise AssertionError("nothing is built for a refused request")

    monkeypatch.setattr(local_regimes, "main_job_views", never)
    code, output = run_cli("fuse", "evaluate", *args)
    assert code == 1 and message in " ".join(output.split()), output


def test_the_function_refuses_bad_requests(views, tmp_path) -> None:
    assert parse_regimes("(c), a ,a") == ("a", "c")
    for regimes, epochs, message in ((("a", "x"), None, "unknown regime 'x'"), ((), None, "no regime asked"),
                                     (("b",), None, "needs at least one split-learning epoch"),
                                     (("a",), -3, "must not be negative")):
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            evaluate_regimes(views, regimes, tmp_path, split_epochs=epochs)
    with pytest.raises(ValueError, match="at least one head seed"):
        evaluate_regimes(views, ("a",), tmp_path, head_seeds=())
