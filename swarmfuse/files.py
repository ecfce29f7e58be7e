"""Private files: created readable by their owner alone from the first byte (mode 0600 at open, no chmod after).

Keys, key-bearing packages, a site's round artefacts (aligned IDs, features, labels, models) and an orderer's
unordered transactions are private; every layer writes them through this module.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

PRIVATE = 0o600


def open_private(path: Path) -> BinaryIO:
    """``path`` opened for binary writing (created or truncated) with mode 0600; an existing file keeps its mode
    unless it was readable by others, in which case it is made private before anything is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, PRIVATE)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a private temp file of its own in the same folder (mode 0600 from
    creation), fsync it, rename it over ``path`` and fsync the folder: a reader, a concurrent writer or a restart
    after a crash sees the old file or one whole new one, never part of one, and no temp file stays behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")  # created 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 (see :func:`open_private`)."""
    with open_private(path) as out:
        out.write(data)


def make_private(folder: Path) -> None:
    """Every file under ``folder`` made mode 0600: for files a library wrote with its own mode (an ONNX export, a
    torch checkpoint) into a folder only its owner can reach yet (a private scratch folder, before it is renamed
    into place)."""
    if os.stat(folder).st_mode & 0o077:
        raise PermissionError(f"{folder} is reachable by others; make its files private before they are placed there")
    for path in Path(folder).rglob("*"):
        if path.is_file():
            path.chmod(PRIVATE)
