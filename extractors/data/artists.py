"""More images of the same entities: the emoji drawn by other artists (Apple, Twitter, Facebook).

The ``emoji-datasource-<artist>`` packages share the layout of ``emoji-datasource-google`` (``emoji.json``
plus ``img/<artist>/64/*.png``). For every manifest entity an artist draws, its 64x64 PNG is extracted into
``<data>/emoji-artists-<hash>/images/<artist>/<ID>.png`` and listed in ``artists.json`` with its SHA-256.
Images of every split are kept; whoever trains on them decides which splits to use (the image extractor
never uses test entities, see :mod:`swarmfuse.extractors.image.train`).
"""

from __future__ import annotations

import json
import logging
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

from swarmfuse.extractors.data.cache import DataError, atomic_dir, config_hash, data_dir, sha256_file
from swarmfuse.extractors.data.emoji import Manifest, image_index
from swarmfuse.extractors.data.sources import EMOJI_ARTIST_IMAGES, NpmPackage, fetch_npm

log = logging.getLogger(__name__)

INDEX = "artists.json"


@dataclass(frozen=True)
class ArtistImage:
    """One entity drawn by one artist; ``image`` is relative to the artist set's folder."""

    entity_id: str
    artist: str
    image: str
    image_sha256: str


@dataclass(frozen=True)
class ArtistImages:
    """The other artists' images of a manifest's entities."""

    root: Path
    images: tuple[ArtistImage, ...]
    sources: dict[str, str]

    def path(self, image: ArtistImage) -> Path:
        return self.root / image.image

    def fingerprint(self) -> str:
        return sha256_file(self.root / INDEX)


def artist_name(pkg: NpmPackage) -> str:
    return pkg.name.removeprefix("emoji-datasource-")


def artists_dir(manifest: Manifest, packages: tuple[NpmPackage, ...] = EMOJI_ARTIST_IMAGES) -> Path:
    pins = {p.name: f"{p.version} {p.integrity}" for p in packages}
    return data_dir() / f"emoji-artists-{config_hash(pins, manifest.fingerprint())}"


def _build(manifest: Manifest, packages: tuple[NpmPackage, ...], target: Path) -> None:
    ids = {e.id for e in manifest.entities}
    rows: list[ArtistImage] = []
    with atomic_dir(target) as scratch:
        for pkg in packages:
            artist = artist_name(pkg)
            (scratch / "images" / artist).mkdir(parents=True)
            with tarfile.open(fetch_npm(pkg)) as tar:
                prefix = f"package/img/{artist}/64/"
                wanted = {prefix + name: code for code, name in image_index(tar, artist).items() if code in ids}
                for member in tar:
                    code = wanted.get(member.name)
                    if code is None or not member.isfile():
                        continue
                    rel = f"images/{artist}/{code}.png"
                    if (scratch / rel).exists():  # fully and non-qualified code points name the same file
                        continue
                    (scratch / rel).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
                    rows.append(ArtistImage(code, artist, rel, sha256_file(scratch / rel)))
            log.info("%s: %d images of manifest entities", artist, sum(r.artist == artist for r in rows))
        rows.sort(key=lambda r: (r.artist, r.entity_id))
        doc = {"sources": {p.name: f"{p.version} {p.integrity}" for p in packages},
               "manifest": manifest.fingerprint(), "images": [asdict(r) for r in rows]}
        (scratch / INDEX).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _load(root: Path) -> ArtistImages:
    path = root / INDEX
    if not path.exists():
        raise DataError(f"no artist images at {root}")
    try:
        doc = json.loads(path.read_text())
        images = tuple(ArtistImage(**r) for r in doc["images"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a valid artist index: {exc}") from exc
    for image in images:
        file = root / image.image
        if not file.is_file() or sha256_file(file) != image.image_sha256:
            raise DataError(f"cached image {file} is missing or corrupt")
    return ArtistImages(root, images, doc["sources"])


def fetch_artist_images(manifest: Manifest, packages: tuple[NpmPackage, ...] = EMOJI_ARTIST_IMAGES,
                        refresh: bool = False) -> ArtistImages:
    """The verified images of ``manifest``'s entities by the artists of ``packages`` (pinned npm tarballs)."""
    target = artists_dir(manifest, packages)
    if not refresh:
        try:
            return _load(target)
        except DataError as exc:
            if (target / INDEX).exists():
                log.warning("rebuilding the artist images: %s", exc)
    _build(manifest, packages, target)
    return _load(target)
