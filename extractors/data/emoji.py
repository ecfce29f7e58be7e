"""The paired emoji data set: one entity per base emoji with a 64x64 image, a text and labels.

Images come from ``emoji-datasource-google`` (``img/google/64``), names, tags, groups and subgroups
from ``emojibase-data`` (``en/data.json``, ``en/messages.json``). Skin-tone variants and the
"component" group are left out. The text of an entity is its name followed by its tags; the group
(9 classes) is the label, the subgroup a finer one. Splits are stratified by group, drawn with a
fixed seed over entities sorted by ID, so the same pins give byte-identical manifests.
"""

from __future__ import annotations

import json
import logging
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from swarmfuse.extractors.data.cache import DataError, atomic_dir, data_dir, sha256_file
from swarmfuse.extractors.data.sources import EMOJI_IMAGES, EMOJI_TEXTS, fetch_npm, pins

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
SPLIT_SEED = 20170807
EXCLUDED_GROUPS = frozenset({"component"})
MANIFEST = "manifest.json"
_IMAGE_DIR = "package/img/google/64/"


@dataclass(frozen=True)
class Entity:
    """One paired record. ``image`` is relative to the manifest's folder."""

    id: str
    image: str
    image_sha256: str
    text: str
    group: str
    subgroup: str
    split: str


@dataclass(frozen=True)
class Manifest:
    """The entities of the data set, the folder their image paths are relative to, and the source pins."""

    root: Path
    entities: tuple[Entity, ...]
    groups: tuple[str, ...]
    sources: dict[str, str]

    def split(self, name: str) -> list[Entity]:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return [e for e in self.entities if e.split == name]

    def image_path(self, entity: Entity) -> Path:
        return self.root / entity.image

    def label(self, entity: Entity) -> int:
        return self.groups.index(entity.group)

    def fingerprint(self) -> str:
        """Hash of the manifest file: changes whenever any entity, split or source pin changes."""
        return sha256_file(self.root / MANIFEST)

    def by_id(self) -> dict[str, Entity]:
        return {e.id: e for e in self.entities}


def emoji_dir() -> Path:
    return data_dir() / f"emoji-{EMOJI_TEXTS.version}-{EMOJI_IMAGES.version}"


def _json_member(tar: tarfile.TarFile, name: str) -> object:
    member = tar.extractfile(name)
    if member is None:
        raise DataError(f"{name} missing from {tar.name}")
    return json.load(member)


def image_index(tar: tarfile.TarFile, artist: str = "google") -> dict[str, str]:
    """Upper-case code-point sequence (fully and non-qualified) -> image file name, for the images ``artist`` drew
    (an ``emoji-datasource-<artist>`` tarball)."""
    index: dict[str, str] = {}
    for row in _json_member(tar, "package/emoji.json"):  # type: ignore[union-attr]
        if not row.get(f"has_img_{artist}"):
            continue
        for key in (row.get("unified"), row.get("non_qualified")):
            if key:
                index[key.upper()] = row["image"]
    return index


def _text(row: dict) -> str:
    tags = [t for t in row.get("tags", []) if t.lower() not in row["label"].lower().split()]
    return row["label"] + (". " + ", ".join(tags) if tags else "")


def _assign_splits(ids_by_group: dict[str, list[str]], seed: int) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for group in sorted(ids_by_group):
        ids = sorted(ids_by_group[group])
        order = rng.permutation(len(ids))
        n_train = round(SPLIT_FRACTIONS[0] * len(ids))
        n_val = round(SPLIT_FRACTIONS[1] * len(ids))
        for rank, i in enumerate(order):
            out[ids[i]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return out


def _build(target: Path) -> None:
    images_tgz, texts_tgz = fetch_npm(EMOJI_IMAGES), fetch_npm(EMOJI_TEXTS)
    with tarfile.open(texts_tgz) as tar:
        rows = _json_member(tar, "package/en/data.json")
        messages = _json_member(tar, "package/en/messages.json")
    group_names = {g["order"]: g["key"] for g in messages["groups"]}  # type: ignore[index]
    subgroup_names = {g["order"]: g["key"] for g in messages["subgroups"]}  # type: ignore[index]
    with atomic_dir(target) as scratch, tarfile.open(images_tgz) as tar:
        index = image_index(tar)
        wanted: dict[str, dict] = {}
        for row in rows:  # type: ignore[union-attr]
            group = group_names.get(row.get("group"))
            image = index.get(row["hexcode"].upper())
            if group is None or group in EXCLUDED_GROUPS or image is None:
                continue
            wanted[_IMAGE_DIR + image] = row
        (scratch / "images").mkdir()
        records = []
        for member in tar:
            row = wanted.get(member.name)
            if row is None or not member.isfile():
                continue
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            rel = f"images/{row['hexcode'].upper()}.png"
            (scratch / rel).write_bytes(data)
            records.append((row, rel))
        if len(records) != len(wanted):
            raise DataError(f"{images_tgz.name}: {len(wanted) - len(records)} images listed but not present")
        by_group: dict[str, list[str]] = {}
        for row, _ in records:
            by_group.setdefault(group_names[row["group"]], []).append(row["hexcode"].upper())
        splits = _assign_splits(by_group, SPLIT_SEED)
        entities = sorted(
            (Entity(id=row["hexcode"].upper(), image=rel, image_sha256=sha256_file(scratch / rel), text=_text(row),
                    group=group_names[row["group"]], subgroup=subgroup_names[row["subgroup"]],
                    split=splits[row["hexcode"].upper()]) for row, rel in records),
            key=lambda e: e.id,
        )
        doc = {"sources": pins(), "split_seed": SPLIT_SEED, "groups": sorted(by_group),
               "entities": [asdict(e) for e in entities]}
        (scratch / MANIFEST).write_text(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    log.info("built %d emoji entities in %s", len(entities), target)


def load_manifest(root: Path | None = None, verify: bool = True) -> Manifest:
    """Read a manifest; with ``verify`` every image must exist with its recorded SHA-256."""
    root = root or emoji_dir()
    path = root / MANIFEST
    if not path.exists():
        raise DataError(f"no manifest at {path}; run `swarmfuse data fetch` first")
    try:
        doc = json.loads(path.read_text())
        entities = tuple(Entity(**e) for e in doc["entities"])
        manifest = Manifest(root=root, entities=entities, groups=tuple(doc["groups"]), sources=doc["sources"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a valid manifest: {exc}") from exc
    if verify:
        for e in entities:
            image = root / e.image
            if not image.is_file() or sha256_file(image) != e.image_sha256:
                raise DataError(f"cached image {image} is missing or corrupt")
    return manifest


def fetch_emoji(refresh: bool = False) -> Manifest:
    """The verified emoji manifest, building the cache entry from the pinned packages when needed."""
    target = emoji_dir()
    if not refresh:
        try:
            return load_manifest(target)
        except DataError as exc:
            if (target / MANIFEST).exists():
                log.warning("rebuilding the emoji cache: %s", exc)
    _build(target)
    return load_manifest(target)
