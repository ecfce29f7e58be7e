"""Intermediate fusion and its baselines, trained and scored on one set of features.

Methods (all scored on the test split):

* ``text_only`` / ``image_only``: a head on one extractor's penultimate features;
* ``early``: a head on the concatenated raw inputs (bag of words + down-sampled pixels);
* ``late``: the average of the two unimodal heads' class probabilities;
* ``intermediate``: the seed scheme, a head on the concatenated penultimate features of both extractors;
* ``hybrid``: intermediate and late fusion combined (the average of their class probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmfuse.extractors.fusion.head import FusionHead, HeadConfig, train_head

METHODS = ("text_only", "image_only", "early", "late", "intermediate", "hybrid")


@dataclass(frozen=True)
class FeatureSet:
    """Per-entity arrays in one order: labels, split names, extractor features and raw inputs."""

    ids: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    text: np.ndarray
    image: np.ndarray
    raw_text: np.ndarray
    raw_image: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("labels", "splits", "text", "image", "raw_text", "raw_image"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"feature set: {name} has {len(getattr(self, name))} rows, expected {n}")

    def mask(self, split: str) -> np.ndarray:
        return self.splits == split

    def subset(self, ids: list[str] | np.ndarray) -> FeatureSet:
        """The rows of ``ids`` (every one must be here), in this set's order."""
        wanted = {str(i) for i in ids}
        missing = wanted - {str(i) for i in self.ids}
        if missing:
            raise ValueError(f"feature set: {len(missing)} entities are not in it, e.g. {min(missing)!r}")
        rows = np.array([str(i) in wanted for i in self.ids])
        return FeatureSet(self.ids[rows], self.labels[rows], self.splits[rows], self.text[rows], self.image[rows],
                          self.raw_text[rows], self.raw_image[rows], self.classes)

    def save(self, path: Path) -> None:
        np.savez(path, ids=self.ids, labels=self.labels, splits=self.splits, text=self.text, image=self.image,
                 raw_text=self.raw_text, raw_image=self.raw_image, classes=np.array(self.classes))

    @classmethod
    def load(cls, path: Path) -> FeatureSet:
        with np.load(path, allow_pickle=False) as d:
            return cls(d["ids"], d["labels"], d["splits"], d["text"], d["image"], d["raw_text"], d["raw_image"],
                       tuple(str(c) for c in d["classes"]))


@dataclass(frozen=True)
class MethodRun:
    """Test-set class probabilities of every method for one seed, and the trained intermediate head."""

    seed: int
    probabilities: dict[str, np.ndarray]
    fusion_head: FusionHead


def fit_head(fs: FeatureSet, x: np.ndarray, seed: int, config: HeadConfig = HeadConfig()) -> FusionHead:
    """A head on the rows of ``x`` (one per entity of ``fs``), trained as every method's head is: on the
    training split, early-stopped on the validation split."""
    tr, va = fs.mask("train"), fs.mask("val")
    return train_head(x[tr], fs.labels[tr], x[va], fs.labels[va], len(fs.classes), seed, config)


def run_methods(fs: FeatureSet, seed: int, config: HeadConfig = HeadConfig()) -> MethodRun:
    """Train every head with ``seed`` and return each method's test probabilities."""
    inputs = {
        "text_only": fs.text,
        "image_only": fs.image,
        "early": np.concatenate([fs.raw_text, fs.raw_image], axis=1),
        "intermediate": np.concatenate([fs.text, fs.image], axis=1),
    }
    te = fs.mask("test")
    heads = {name: fit_head(fs, x, seed, config) for name, x in inputs.items()}
    probs = {name: heads[name].predict_proba(x[te]) for name, x in inputs.items()}
    probs["late"] = (probs["text_only"] + probs["image_only"]) / 2
    probs["hybrid"] = (probs["intermediate"] + probs["late"]) / 2
    return MethodRun(seed, {m: probs[m] for m in METHODS}, heads["intermediate"])
