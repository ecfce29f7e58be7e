"""Cache location and content hashing shared by the data fetchers."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from swarmfuse.errors import SwarmfuseError

CACHE_ENV = "SWARMFUSE_CACHE"


class DataError(SwarmfuseError, RuntimeError):
    """A fetch, a cache entry or an input file is missing, corrupt or inconsistent."""


def cache_root() -> Path:
    """The swarmfuse cache root: ``$SWARMFUSE_CACHE`` or ``~/.cache/swarmfuse``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "swarmfuse"


def data_dir() -> Path:
    """Where fetched and derived data sets live."""
    return cache_root() / "data"


def config_hash(*parts: object) -> str:
    """Short stable hash of JSON-serialisable parts (keys sorted), used to name cache entries."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sri_sha512(path: Path) -> str:
    """Subresource-integrity string (``sha512-<base64>``) of a file, as npm records it."""
    digest = hashlib.sha512()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a scratch folder next to ``target``; on success it replaces ``target`` in one rename.

    A crash part-way leaves the previous ``target`` (if any) untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield scratch
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            scratch.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
