"""From the cached data to per-entity features of both extractors, each stage cached by a config hash.

Stages (each in its own cache folder under ``<cache root>/pipeline``, written atomically):

1. ``text-<hash>``: the AWD-LSTM text extractor (:func:`swarmfuse.extractors.text.cached_text_extractor`);
2. ``image-<hash>``: the image extractor (see :mod:`swarmfuse.extractors.image`): ResNet50 trained here by
   its recipe (from a standard weight file when one is given), or the ImageNet-pretrained EfficientNet-Lite0, frozen;
3. ``features-<hash>``: both exported to ONNX, features of every entity computed with ONNX Runtime,
   plus the raw inputs early fusion needs; ``summary.json`` records the ONNX files' SHA-256, the
   execution provider and the timings.

A hash covers the stage's configuration, the pinned data sources (with the other artists' image packages
when the recipe uses them), the code that trains it (:func:`~swarmfuse.extractors.reproducible.code_fingerprint`:
newer training code trains anew) and the stages it uses: their folder names and, for ``features-<hash>``, the
SHA-256 of the trained weights in them, so features are never served for weights they were not computed with.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from swarmfuse.extractors.data import DataError, Manifest, cache_root, fetch_emoji
from swarmfuse.extractors.data.cache import atomic_dir, config_hash, sha256_file
from swarmfuse.extractors.data.sources import EMOJI_ARTIST_IMAGES
from swarmfuse.extractors.fusion.methods import FeatureSet
from swarmfuse.extractors.image import build_resnet50_features, preprocess_images, train_image_backbone
from swarmfuse.extractors.image.backbone import BACKBONES, build_backbone
from swarmfuse.extractors.image.train import ImageRecipe, ProgressCallback, training_code
from swarmfuse.extractors.onnx import FeatureExtractor, export_onnx
from swarmfuse.extractors.text import TextConfig, TextExtractor, cached_text_extractor

log = logging.getLogger(__name__)

RAW_IMAGE_SIZE = 16  # early fusion sees the images down-sampled to 16x16 pixels


@dataclass(frozen=True)
class ImageConfig:
    """How the image extractor is obtained: ``resnet50`` is trained at ``resolution`` by ``recipe`` from
    ``weights`` (or from scratch); ``efficientnet_lite0`` is used pretrained and frozen (no training)."""

    resolution: int = 64
    weights: str | None = None
    backbone: str = "resnet50"
    recipe: ImageRecipe = field(default_factory=ImageRecipe)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise DataError(f"unknown image backbone {self.backbone!r}; expected one of {', '.join(BACKBONES)}")
        if self.weights and self.backbone != "resnet50":
            raise DataError("a weight file is for the resnet50 backbone; efficientnet_lite0 ships its own weights")


@dataclass(frozen=True)
class PipelineConfig:
    text: TextConfig = field(default_factory=TextConfig)
    image: ImageConfig = field(default_factory=ImageConfig)


@dataclass(frozen=True)
class PipelineResult:
    """The features, their ``summary.json`` and cache folder, and the text extractor's cache folder name."""

    features: FeatureSet
    summary: dict
    folder: Path
    text_extractor: str


def _image_key(config: ImageConfig, manifest: Manifest) -> str:
    weights_sha = sha256_file(Path(config.weights)) if config.weights else None
    training = {k: v for k, v in asdict(config).items() if k != "backbone"}  # the key of a trained ResNet50
    artists = [asdict(p) for p in EMOJI_ARTIST_IMAGES] if config.recipe.artists else None
    return config_hash("image", training, weights_sha, manifest.fingerprint(), artists, training_code())


def image_extractor_dir(manifest: Manifest, config: ImageConfig) -> Path:
    """Where the image extractor for ``config`` is cached (a trained ResNet50), or the name standing for a
    pretrained backbone in cache keys (nothing is stored there); its ``.name`` keys the later stages."""
    if config.backbone != "resnet50":
        return _pretrained_dir(config)
    return cache_root() / "pipeline" / f"image-{_image_key(config, manifest)}"


def image_extractor(manifest: Manifest, config: ImageConfig,
                    progress: ProgressCallback | None = None) -> tuple[torch.nn.Module, Path, dict]:
    """The cached image feature module for ``config`` (ResNet50: 2048-d, trained on first use, reporting each
    training step to ``progress``)."""
    if config.backbone != "resnet50":
        return build_backbone(config.backbone).eval(), _pretrained_dir(config), {"backbone": config.backbone,
                                                                                  "weights": "pretrained, frozen"}
    folder = image_extractor_dir(manifest, config)
    weights = Path(config.weights) if config.weights else None
    if (folder / "backbone.pt").exists():
        module = build_resnet50_features(None)
        module.load_state_dict(torch.load(folder / "backbone.pt", weights_only=True))
        return module.eval(), folder, json.loads((folder / "report.json").read_text())
    start = time.perf_counter()
    with atomic_dir(folder) as scratch:
        module = train_image_backbone(manifest, scratch, config.resolution, config.recipe, weights, progress)
        report = {"train_seconds": time.perf_counter() - start, **asdict(config),
                  "training": json.loads((scratch / "image_train.json").read_text())}
        torch.save(module.state_dict(), scratch / "backbone.pt")
        (scratch / "report.json").write_text(json.dumps(report, indent=1))
    return module.eval(), folder, report


def _pretrained_dir(config: ImageConfig) -> Path:
    """Stands for a pretrained backbone in the feature cache key (nothing is stored in it)."""
    return Path(f"image-{config.backbone}-{config.resolution}px")


def bag_of_words(vocab_ids: np.ndarray, vocab_size: int, train: np.ndarray) -> np.ndarray:
    """Binary bag of words (early fusion's text input) over the vocabulary words that occur in the ``train`` rows."""
    bag = np.zeros((len(vocab_ids), vocab_size), dtype=np.float32)
    rows = np.repeat(np.arange(len(vocab_ids)), vocab_ids.shape[1])
    bag[rows, vocab_ids.reshape(-1)] = 1.0
    words = bag[:, 3:]  # without <pad>, <unk>, <eos>
    return words[:, words[train].any(axis=0)]


def build_features(config: PipelineConfig = PipelineConfig(), batch_size: int = 64,
                   progress: ProgressCallback | None = None) -> PipelineResult:
    """Features of every entity from ONNX Runtime sessions of both extractors (cached); ``progress`` hears
    about each step of an image-extractor training."""
    manifest = fetch_emoji()
    text, text_dir = cached_text_extractor(manifest, config.text)
    image_module, image_dir, image_report = image_extractor(manifest, config.image, progress)
    folder = features_dir(text_dir, image_dir)
    if not (folder / "summary.json").exists():
        with atomic_dir(folder) as scratch:
            _extract(manifest, text, image_module, config.image, scratch, batch_size, text.report, image_report)
    try:
        return PipelineResult(FeatureSet.load(folder / "features.npz"), json.loads((folder / "summary.json").read_text()),
                              folder, text_dir.name)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cached features in {folder} are unreadable ({exc}); delete the folder to rebuild") from exc


WEIGHT_FILES = ("classifier.pt", "features.pt", "backbone.pt")  # the trained weights in a text- / image-<hash> stage


def weights_sha256(stage_dir: Path) -> str | None:
    """SHA-256 of the trained weights cached in an extractor's stage folder; ``None`` when there are none (a
    pretrained backbone, or a stage not trained yet)."""
    for name in WEIGHT_FILES:
        if (stage_dir / name).is_file():
            return sha256_file(stage_dir / name)
    return None


def features_dir(text_dir: Path, image_dir: Path) -> Path:
    """The cache folder of the features computed by the extractors cached in ``text_dir`` and ``image_dir``:
    keyed by their names and by the SHA-256 of their trained weights."""
    weights = [weights_sha256(text_dir), weights_sha256(image_dir)]
    return cache_root() / "pipeline" / f"features-{config_hash(text_dir.name, image_dir.name, weights, RAW_IMAGE_SIZE)}"


def export_text_onnx(text: TextExtractor, example_ids: np.ndarray, path: Path) -> str:
    """The text extractor's feature module as ONNX (int64 ``token_ids`` [batch, max_len] -> ``features``)."""
    text.features.eval()
    return export_onnx(text.features, (torch.from_numpy(example_ids[:2]),), path, ["token_ids"], ["features"],
                       {"token_ids": {0: "batch"}, "features": {0: "batch"}})


def export_image_onnx(module: torch.nn.Module, example_pixels: np.ndarray, path: Path) -> str:
    """An image feature module as ONNX (float32 NCHW ``pixels`` [batch, 3, r, r] -> ``features``)."""
    return export_onnx(module.eval(), (torch.from_numpy(example_pixels[:2]),), path, ["pixels"], ["features"],
                       {"pixels": {0: "batch"}, "features": {0: "batch"}})


def _run_batched(extractor: FeatureExtractor, x: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([extractor.run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def _extract(manifest: Manifest, text: TextExtractor, image_module: torch.nn.Module, image_cfg: ImageConfig,
             out: Path, batch_size: int, text_report: dict, image_report: dict) -> None:
    entities = manifest.entities
    texts = [e.text for e in entities]
    paths = [manifest.image_path(e) for e in entities]
    ids = text.encode(texts)
    pixels = preprocess_images(paths, image_cfg.resolution)
    text_sha = export_text_onnx(text, ids, out / "text.onnx")
    image_sha = export_image_onnx(image_module, pixels, out / "image.onnx")
    text_ort, image_ort = FeatureExtractor.from_onnx(out / "text.onnx"), FeatureExtractor.from_onnx(out / "image.onnx")
    start = time.perf_counter()
    text_features = _run_batched(text_ort, ids, batch_size)
    image_features = _run_batched(image_ort, pixels, batch_size)
    seconds = time.perf_counter() - start
    raw_image = preprocess_images(paths, RAW_IMAGE_SIZE).reshape(len(entities), -1)
    splits = np.array([e.split for e in entities])
    features = FeatureSet(
        ids=np.array([e.id for e in entities]), labels=np.array([manifest.label(e) for e in entities]),
        splits=splits, text=text_features, image=image_features,
        raw_text=bag_of_words(ids, len(text.vocab), splits == "train"), raw_image=raw_image, classes=manifest.groups)
    features.save(out / "features.npz")
    summary = {"entities": len(entities), "text_onnx_sha256": text_sha, "image_onnx_sha256": image_sha,
               "provider": {"text": text_ort.provider, "image": image_ort.provider},
               "feature_dims": {"text": int(text_features.shape[1]), "image": int(image_features.shape[1])},
               "ort_extract_seconds": seconds, "text": text_report, "image": image_report}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    log.info("features: %s", summary)
