"""A site trains its own extractors from what it holds: its texts or images and public data, never a label.

Text: the label-free recipe (:func:`~swarmfuse.extractors.text.extractor.train_label_free_text_extractor`), the
AWD-LSTM language model pre-trained on the project's pinned public corpus with the site's texts inserted; its
encoder's pooled states are the features. Images: the label-free ResNet50 recipe
(:class:`~swarmfuse.extractors.image.train.ImageRecipe` with ``labels=False``): the features learn to regress
those of the public ImageNet-pretrained EfficientNet-Lite0 (the teacher, frozen) on augmented views of the
site's images, from random weights or a standard ResNet50 weight file the operator gives. Only the manifest's
texts or images are read (a ``label`` column, if the file has one, is not). The result is an ONNX bundle whose
:class:`~swarmfuse.extractors.bundle.ExtractorProvenance` records the recipe (the cache stage), the manifest's
fingerprint, the public corpus or teacher and starting weight files by SHA-256, and labels ``none``; it is cached by
the manifest's fingerprint, the recipe, the weights and the training code (the same inputs give the same bundle
without training again), then installed into the site.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from swarmfuse.client.site.manifest import Manifest
from swarmfuse.client.site.site import SiteError

if TYPE_CHECKING:
    from swarmfuse.extractors.bundle import ExtractorProvenance
    from swarmfuse.extractors.image.train import ImageRecipe, ProgressCallback
    from swarmfuse.extractors.text.extractor import TextConfig

logger = logging.getLogger(__name__)

MIN_TEXTS = 2
MIN_IMAGES = 8  # two batches of four: batch norm needs more than one image per batch
IMAGE_RESOLUTION = 64


def site_image_recipe() -> ImageRecipe:
    """The site's default image recipe: the extractors' label-free one, without the INT8 fine-tuning epochs (a site
    bundle runs in float32)."""
    from swarmfuse.extractors.image.train import ImageRecipe

    return ImageRecipe(labels=False, artists=False, quant_noise_epochs=0)


def label_free_text_bundle(manifest: Manifest, seed: int = 0, config: TextConfig | None = None) -> Path:
    """The cached bundle of the label-free text extractor of ``manifest``'s texts (trained on first use);
    ``config`` replaces the default recipe, whose ``labels`` is always off and whose seed is ``seed``."""
    from swarmfuse.extractors.bundle import ExtractorProvenance, export_text_bundle
    from swarmfuse.extractors.data import fetch_corpus
    from swarmfuse.extractors.data.cache import config_hash
    from swarmfuse.extractors.text.extractor import TextConfig, train_label_free_text_extractor, training_code

    if manifest.modality != "text":
        raise SiteError(f"{manifest.path} is a {manifest.modality} manifest; a text extractor trains on texts")
    texts = [row.value for row in manifest.rows]
    if len(texts) < MIN_TEXTS:
        raise SiteError(f"{manifest.path} holds {len(texts)} text(s); training needs at least {MIN_TEXTS}")
    recipe = replace(config or TextConfig(), labels=False, seed=seed)
    stage = f"site-text-{config_hash('site-text', recipe.to_dict(), manifest.fingerprint(), training_code())}"

    def provenance() -> ExtractorProvenance:
        return ExtractorProvenance(recipe=stage, labels="none", data_sha256=manifest.fingerprint(),
                                   corpus_sha256=fetch_corpus().sha256)

    def build(scratch: Path, provenance: ExtractorProvenance) -> None:
        extractor = train_label_free_text_extractor(texts, fetch_corpus(), recipe)
        export_text_bundle(extractor, texts[:2], f"{stage} (label-free AWD-LSTM language model on the public corpus "
                                                 f"and {len(texts)} site texts; no labels)", scratch,
                           provenance=provenance)

    return _cached_bundle(stage, manifest, provenance, build)


def label_free_image_bundle(manifest: Manifest, seed: int = 0, recipe: ImageRecipe | None = None,
                            resolution: int = IMAGE_RESOLUTION, weights: Path | None = None,
                            progress: ProgressCallback | None = None) -> Path:
    """The cached bundle of the label-free ResNet50 extractor of ``manifest``'s images (trained on first use, from
    ``weights`` when given); ``recipe`` replaces the default one (:func:`site_image_recipe`); ``labels`` and
    ``artists`` (the emoji data set's other artists) are always off and the seed is ``seed``."""
    from swarmfuse.extractors.bundle import ExtractorProvenance, export_image_bundle, teacher_sha256
    from swarmfuse.extractors.data.cache import config_hash, sha256_file
    from swarmfuse.extractors.data.emoji import Entity
    from swarmfuse.extractors.data.emoji import Manifest as ImageSet
    from swarmfuse.extractors.image.train import train_image_backbone, training_code

    if manifest.modality != "image":
        raise SiteError(f"{manifest.path} is a {manifest.modality} manifest; an image extractor trains on images")
    if len(manifest) < MIN_IMAGES:
        raise SiteError(f"{manifest.path} holds {len(manifest)} image(s); training needs at least {MIN_IMAGES}")
    if weights is not None and not weights.is_file():
        raise SiteError(f"ResNet50 weight file {weights} does not exist")
    recipe = replace(recipe or site_image_recipe(), labels=False, artists=False, seed=seed)
    recipe = replace(recipe, batch_size=min(recipe.batch_size, len(manifest) // 2))
    weights_sha = sha256_file(weights) if weights is not None else None
    stage = "site-image-" + config_hash("site-image", asdict(recipe), resolution, manifest.fingerprint(),
                                        training_code(), weights_sha)
    images = ImageSet(root=manifest.path.parent, groups=(), sources={}, entities=tuple(
        Entity(id=row.entity_id, image=row.value, image_sha256=row.content_sha256, text="", group="", subgroup="",
               split="train") for row in manifest.rows))

    def provenance() -> ExtractorProvenance:
        return ExtractorProvenance(recipe=stage, labels="none", data_sha256=manifest.fingerprint(),
                                   teacher_sha256=teacher_sha256(), weights_sha256=weights_sha)

    def build(scratch: Path, provenance: ExtractorProvenance) -> None:
        module = train_image_backbone(images, scratch / "training", resolution, recipe, weights, progress)
        start_from = f"weights {weights_sha[:16]}" if weights_sha else "random weights"
        export_image_bundle(module, [manifest.image_path(row) for row in manifest.rows[:2]], resolution, "resnet50",
                            f"{stage} (label-free ResNet50 from {start_from}, distilled from EfficientNet-Lite0 "
                            f"(ImageNet) features on {len(manifest)} site images; no labels)", scratch,
                            provenance=provenance)

    return _cached_bundle(stage, manifest, provenance, build)


def _cached_bundle(stage: str, manifest: Manifest, provenance: Callable[[], ExtractorProvenance],
                   build: Callable[[Path, ExtractorProvenance], None]) -> Path:
    """The bundle cached under ``stage`` (read first, so a damaged entry is refused); when there is none, the one
    the previous cache layout holds, carried over with its ``provenance()``; else the one ``build(scratch,
    provenance())`` trains and writes, moved into the cache in one rename."""
    from swarmfuse.extractors.bundle import ExtractorBundle, bundle_cache_dir, carry_over
    from swarmfuse.extractors.data.cache import atomic_dir

    cached = bundle_cache_dir(stage, None)
    if (cached / "bundle.json").is_file():
        ExtractorBundle.read(cached)
        return cached
    known = provenance()
    if carry_over(cached, known) is not None:
        return cached
    start = time.perf_counter()
    with atomic_dir(cached) as scratch:
        build(scratch, known)
    logger.info("trained the label-free extractor of %s (%s) in %.0f s", manifest.path, stage,
                time.perf_counter() - start)
    return cached
