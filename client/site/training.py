"""A site trains its own text extractor from what it holds: its texts and public data, never a label.

The recipe is the label-free one (:func:`~swarmfuse.extractors.text.extractor.train_label_free_text_extractor`):
the AWD-LSTM language model pre-trained on the project's pinned public corpus with the site's texts inserted;
its encoder's pooled states are the features. Only the manifest's texts are read (a ``label`` column, if the
file has one, is not). The result is an ONNX bundle whose ``source`` records the provenance, cached by the
manifest's fingerprint, the recipe and the training code (the same inputs give the same bundle without
training again), then installed into the site. Image extractors are not trained here yet: install a bundle.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from swarmfuse.client.site.manifest import Manifest
from swarmfuse.client.site.site import SiteError

if TYPE_CHECKING:
    from swarmfuse.extractors.text.extractor import TextConfig

logger = logging.getLogger(__name__)

MIN_TEXTS = 2


def label_free_text_bundle(manifest: Manifest, seed: int = 0, config: TextConfig | None = None) -> Path:
    """The cached bundle of the label-free text extractor of ``manifest``'s texts (trained on first use);
    ``config`` replaces the default recipe, whose ``labels`` is always off and whose seed is ``seed``."""
    from swarmfuse.extractors.bundle import ExtractorBundle, bundle_cache_dir, export_text_bundle
    from swarmfuse.extractors.data import fetch_corpus
    from swarmfuse.extractors.data.cache import atomic_dir, config_hash
    from swarmfuse.extractors.text.extractor import TextConfig, train_label_free_text_extractor, training_code

    if manifest.modality != "text":
        raise SiteError(f"{manifest.path} is a {manifest.modality} manifest; a text extractor trains on texts")
    texts = [row.value for row in manifest.rows]
    if len(texts) < MIN_TEXTS:
        raise SiteError(f"{manifest.path} holds {len(texts)} text(s); training needs at least {MIN_TEXTS}")
    recipe = replace(config or TextConfig(), labels=False, seed=seed)
    stage = f"site-text-{config_hash('site-text', recipe.to_dict(), manifest.fingerprint(), training_code())}"
    cached = bundle_cache_dir(stage, None)
    if (cached / "bundle.json").is_file():
        ExtractorBundle.read(cached)  # refuses a damaged cache entry
        return cached
    start = time.perf_counter()
    extractor = train_label_free_text_extractor(texts, fetch_corpus(), recipe)
    with atomic_dir(cached) as scratch:
        export_text_bundle(extractor, texts[:2], f"{stage} (label-free AWD-LSTM language model on the public corpus "
                                                 f"and {len(texts)} site texts; no labels)", scratch)
    logger.info("trained the label-free text extractor of %s in %.0f s", manifest.path, time.perf_counter() - start)
    return cached
