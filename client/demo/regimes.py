"""The report's extractor regimes, every fusion method scored on the round's aligned entities with each.

- ``a``: the feature sites' own label-free extractors (``swarmfuse site extractor train``), as installed;
- ``b``: the same after the round's split learning (the fine-tuned bundles each feature site exported in its round
  folder); the regime the round's model was trained in when the round asked for split epochs;
- ``c``: the reference extractors trained centrally with the label holder's labels, which the vertical setting
  forbids (the sites holding texts and images hold no labels): a yardstick, never the product's result.

The scores are computed centrally, for the report only: every method's head is trained on the aligned training rows
(early-stopped on the validation rows) and scored on the aligned test rows, as the round's model is. The rows and
classes are in the order the leader used (its ``aligned.json``; classes sorted by name), so the intermediate head of
the round's regime is the round's model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from swarmfuse.client.site.manifest import Manifest

if TYPE_CHECKING:
    from swarmfuse.extractors.fusion.head import HeadConfig

REGIMES = {
    "a": "label-free site extractors",
    "b": "label-free site extractors after the round's split learning",
    "c": "reference: trained centrally with the label holder's labels (forbidden in the vertical setting)",
}


@dataclass
class RegimeScores:
    """One regime: which bundles (modality -> ONNX SHA-256) and every method's test accuracy and macro-F1."""

    regime: str
    description: str
    extractors: dict[str, str] = field(default_factory=dict)
    methods: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class AlignedViews:
    """The aligned entities (leader's order) with the label holder's, the text site's and the image site's rows."""

    ids: list[str]
    labels: Manifest
    texts: Manifest
    images: Manifest

    @classmethod
    def read(cls, aligned_json: Path, labels: Manifest, texts: Manifest, images: Manifest) -> AlignedViews:
        ids = [str(i) for i in json.loads(aligned_json.read_text())["ids"]]
        return cls(ids, labels, texts, images)

    @classmethod
    def intersect(cls, labels: Manifest, texts: Manifest, images: Manifest) -> AlignedViews:
        """The entities all three views hold, sorted by ID: what a round's alignment finds, computed in one place."""
        ids = sorted(set(labels.ids) & set(texts.ids) & set(images.ids))
        if not ids:
            raise ValueError(f"no entity is in all of {labels.path}, {texts.path} and {images.path}")
        return cls(ids, labels, texts, images)

    def split_counts(self) -> dict[str, int]:
        splits = [self.labels.row(i).extra.get("split") or "train" for i in self.ids]
        return {name: splits.count(name) for name in ("train", "val", "test")}


def score_regime(regime: str, views: AlignedViews, text_bundle: Path, image_bundle: Path, seed: int = 0,
                 head_seeds: Sequence[int] = (), head_config: HeadConfig | None = None) -> RegimeScores:
    """Every method (:data:`swarmfuse.extractors.fusion.methods.METHODS`) on the features of ``views``' aligned
    entities from the two bundles, with head seed ``seed`` (the mean over ``head_seeds`` when given) and the default
    head unless ``head_config``."""
    from swarmfuse.extractors.bundle import load_bundle
    from swarmfuse.extractors.fusion import run_methods, score
    from swarmfuse.extractors.fusion.head import HeadConfig
    from swarmfuse.extractors.fusion.methods import FeatureSet
    from swarmfuse.extractors.image import preprocess_images
    from swarmfuse.extractors.pipeline import RAW_IMAGE_SIZE, bag_of_words

    text, image = load_bundle(text_bundle), load_bundle(image_bundle)
    texts = [views.texts.row(i).value for i in views.ids]
    images = [views.images.row(i).value for i in views.ids]
    classes = sorted({row.value for row in views.labels.rows})
    rows = [views.labels.row(i) for i in views.ids]
    splits = np.array([row.extra.get("split") or "train" for row in rows])
    token_ids = text.preprocess(texts)
    paths = [views.images.path.parent / value for value in images]
    features = FeatureSet(
        ids=np.array(views.ids), labels=np.array([classes.index(row.value) for row in rows]), splits=splits,
        text=text.extract(texts), image=image.extract(images, views.images.path.parent),
        raw_text=bag_of_words(token_ids, len(text.vocab or ()), splits == "train"),
        raw_image=preprocess_images(paths, RAW_IMAGE_SIZE).reshape(len(paths), -1), classes=tuple(classes))
    scores = score(features, [run_methods(features, seed=s, config=head_config or HeadConfig())
                              for s in (head_seeds or (seed,))])
    return RegimeScores(regime, REGIMES[regime], {"text": text.sha256, "image": image.sha256},
                        {m: {"accuracy": round(s.accuracy_mean, 4), "macro_f1": round(s.f1_mean, 4)}
                         for m, s in scores.items()})

