"""Data manifests: a DC's view of the task, a CSV or JSON Lines table of ``entity_id`` plus one modality column.

    entity_id,text              {"entity_id": "e1", "image": "images/e1.png"}      entity_id,label,split
    e1,a grinning face          {"entity_id": "e2", "image": "images/e2.png"}      e1,smileys,train

``text`` is the text itself, ``image`` a path relative to the manifest's folder, ``label`` a class name
(JSON integers are accepted and read as strings). Other columns are kept as ``ManifestRow.extra``; an
``image_sha256`` column, when present, must match the image file. Files are UTF-8 (a BOM is allowed).

:func:`load_manifest` checks every row and raises one :class:`ManifestError` listing every problem with
its row (data rows count from 1 after the header), the file line it starts on, and the column. A loaded
:class:`Manifest` is sorted by entity ID and gives the data summary's ``fingerprint`` and the salted
entity-set commitment. Images are opened with Pillow (the ``extract`` extra), imported only when needed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Literal, get_args

from swarmfuse.errors import SwarmfuseError

log = logging.getLogger(__name__)

Modality = Literal["text", "image", "label"]
ManifestFormat = Literal["csv", "jsonl"]

ID_COLUMN = "entity_id"
IMAGE_SHA256_COLUMN = "image_sha256"
EXTENSIONS: dict[str, ManifestFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
MAX_ID_LENGTH = 256
MIN_SALT_BYTES = 16
FINGERPRINT_DOMAIN = b"swarmfuse/manifest-fingerprint/v1\n"
_SHOWN = 20  # problems listed in the error message (all are in ManifestError.problems)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest; ``row`` counts data rows from 1, ``line`` is the file line."""

    message: str
    row: int | None = None
    column: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}" + (f" (line {self.line})" if self.line is not None else ""))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ManifestError(SwarmfuseError, ValueError):
    """A manifest was refused; ``problems`` lists everything found, the message the first few."""

    def __init__(self, path: Path, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        lines = [f"{path}: {problem}" for problem in self.problems[:_SHOWN]]
        if len(self.problems) > _SHOWN:
            lines.append(f"... and {len(self.problems) - _SHOWN} more problems")
        super().__init__("\n".join(lines))

    @property
    def row(self) -> int | None:
        """The row of the first problem."""
        return self.problems[0].row if self.problems else None

    @property
    def column(self) -> str | None:
        """The column of the first problem."""
        return self.problems[0].column if self.problems else None


@dataclass(frozen=True)
class ManifestRow:
    """One entity: ``value`` is the text, the label, or the image path as written in the manifest."""

    entity_id: str
    value: str
    content_sha256: str  # of the text or label (UTF-8), or of the image file's bytes
    row: int
    line: int
    extra: Mapping[str, object] = field(default_factory=dict, compare=False, hash=False)


def entity_commitment(ids: Iterable[str], salt: bytes) -> str:
    """Hex SHA-256 of ``salt`` followed by the sorted IDs joined by newlines (UTF-8): the alignment commitment."""
    if not isinstance(salt, bytes) or len(salt) < MIN_SALT_BYTES:
        raise ValueError(f"the commitment salt must be at least {MIN_SALT_BYTES} random bytes")
    ordered = sorted(ids)
    for previous, current in itertools.pairwise(ordered):
        if previous == current:
            raise ValueError(f"entity ID {current!r} appears twice in the committed set")
    if any("\n" in entity_id for entity_id in ordered):
        raise ValueError("an entity ID contains a newline: the commitment would be ambiguous")
    return hashlib.sha256(salt + "\n".join(ordered).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A checked manifest; ``rows`` are sorted by entity ID (code-point order, the same as UTF-8 byte order)."""

    path: Path
    modality: Modality
    format: ManifestFormat
    sha256: str  # of the manifest file's bytes: the summary's ``manifest_sha256``
    rows: tuple[ManifestRow, ...]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> tuple[str, ...]:
        """Entity IDs, sorted."""
        return tuple(row.entity_id for row in self.rows)

    @cached_property
    def _by_id(self) -> dict[str, ManifestRow]:
        return {row.entity_id: row for row in self.rows}

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._by_id

    def row(self, entity_id: str) -> ManifestRow:
        """The row of ``entity_id`` (``KeyError`` naming it and the manifest if absent)."""
        try:
            return self._by_id[entity_id]
        except KeyError:
            raise KeyError(f"entity {entity_id!r} is not in {self.path}") from None

    def subset(self, ids: Iterable[str]) -> tuple[ManifestRow, ...]:
        """The rows of ``ids`` (all must be present), sorted by entity ID: e.g. the aligned set of a round."""
        return tuple(self.row(entity_id) for entity_id in sorted(set(ids)))

    def image_path(self, row: ManifestRow) -> Path:
        """Where an image row's file is (image manifests only)."""
        if self.modality != "image":
            raise ValueError(f"{self.path} is a {self.modality} manifest, not an image one")
        return self.path.parent / row.value

    @property
    def classes(self) -> tuple[str, ...]:
        """The distinct labels, sorted (label manifests only)."""
        if self.modality != "label":
            raise ValueError(f"{self.path} is a {self.modality} manifest, not a label one")
        return tuple(sorted({row.value for row in self.rows}))

    def fingerprint(self) -> str:
        """Hex SHA-256 of the canonical (entity ID, content hash) table: independent of format, order and paths.

        Canonical form: ``swarmfuse/manifest-fingerprint/v1\\n``, the modality and ``\\n``, then one
        ``<entity_id>\\t<content sha256>\\n`` per row in ID order, all UTF-8 (IDs hold no control characters).
        """
        digest = hashlib.sha256(FINGERPRINT_DOMAIN + f"{self.modality}\n".encode())
        for row in self.rows:
            digest.update(f"{row.entity_id}\t{row.content_sha256}\n".encode())
        return digest.hexdigest()

    def entity_commitment(self, salt: bytes) -> str:
        """The salted commitment to this manifest's entity set (see :func:`entity_commitment`)."""
        return entity_commitment(self.ids, salt)


# --- reading ---

@dataclass
class _Record:
    row: int
    line: int
    values: dict[str, object]


def _bad_text(value: str) -> bool:
    """Undecodable bytes survive decoding as lone surrogates (``surrogateescape``)."""
    return any("\udc80" <= char <= "\udcff" for char in value)


def _encoding_message(value: str) -> str:
    byte = next(ord(char) - 0xDC00 for char in value if "\udc80" <= char <= "\udcff")
    return f"not valid UTF-8 (byte 0x{byte:02x}); save the manifest as UTF-8"


def _csv_records(text: str, problems: list[Problem]) -> tuple[list[str], int, Iterator[_Record]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    consumed = 0
    header: list[str] = []
    header_line = 0
    try:
        for record in reader:
            start, consumed = consumed + 1, reader.line_num
            if record:
                header, header_line = [name.strip() for name in record], start
                break
    except csv.Error as exc:
        problems.append(Problem(f"not valid CSV: {exc}", line=consumed + 1))
        return [], 0, iter(())

    def records() -> Iterator[_Record]:
        nonlocal consumed
        row = 0
        while True:
            start = consumed + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                problems.append(Problem(f"not valid CSV: {exc}", row=row + 1, line=start))
                return
            consumed = reader.line_num
            if not record or record == [""]:
                continue
            row += 1
            if len(record) != len(header):
                count = f"{len(record)} field" + ("s" if len(record) != 1 else "")
                problems.append(Problem(f"{count} where the header has {len(header)}", row=row, line=start))
                continue
            yield _Record(row, start, dict(zip(header, record)))

    return header, header_line, records()


def _jsonl_records(text: str, problems: list[Problem]) -> tuple[list[str] | None, int, Iterator[_Record]]:
    def records() -> Iterator[_Record]:
        row = 0
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            row += 1
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(f"not valid JSON: {exc.msg} at character {exc.colno}", row=row, line=number))
                continue
            if not isinstance(value, dict):
                problems.append(Problem(f"expected a JSON object, got {type(value).__name__}", row=row, line=number))
                continue
            yield _Record(row, number, value)

    return None, 0, records()


def _pillow() -> ModuleType:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ModuleNotFoundError("checking an image manifest needs Pillow: pip install 'swarmfuse[extract]'",
                                  name="PIL") from exc
    return Image


class _Checker:
    """Checks the records of one manifest, collecting problems."""

    def __init__(self, path: Path, modality: Modality, verify_images: bool, problems: list[Problem]) -> None:
        self.path = path
        self.modality: Modality = modality
        self.column: str = modality
        self.verify_images = verify_images
        self.problems = problems
        self.first_row: dict[str, int] = {}
        self.image = _pillow() if modality == "image" and verify_images else None

    def problem(self, record: _Record, column: str | None, message: str) -> None:
        self.problems.append(Problem(message, row=record.row, column=column, line=record.line))

    def string(self, record: _Record, column: str, allow_int: bool = False) -> str | None:
        """The column's value as a string, or ``None`` (with a problem recorded) when absent or mistyped."""
        if column not in record.values:
            self.problem(record, column, "missing")
            return None
        value = record.values[column]
        if allow_int and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is None or value == "":
            self.problem(record, column, f"empty {'entity ID' if column == ID_COLUMN else column}")
            return None
        if not isinstance(value, str):
            kind = "a string or an integer" if allow_int else "a string"
            self.problem(record, column, f"must be {kind}, got JSON {type(value).__name__}")
            return None
        if _bad_text(value):
            self.problem(record, column, _encoding_message(value))
            return None
        return value

    def entity_id(self, record: _Record) -> str | None:
        value = self.string(record, ID_COLUMN)
        if value is None:
            return None
        if value != value.strip():
            self.problem(record, ID_COLUMN, f"entity ID {value!r} has leading or trailing whitespace")
        elif any(char < " " or char == "\x7f" for char in value):
            self.problem(record, ID_COLUMN, f"entity ID {value!r} contains a control character")
        elif len(value) > MAX_ID_LENGTH:
            self.problem(record, ID_COLUMN, f"entity ID is {len(value)} characters long (at most {MAX_ID_LENGTH})")
        elif value in self.first_row:
            self.problem(record, ID_COLUMN, f"duplicate entity ID {value!r} (first at row {self.first_row[value]})")
        else:
            self.first_row[value] = record.row
            return value
        return None

    def content(self, record: _Record) -> tuple[str, str] | None:
        """The modality value and its content hash, or ``None`` with a problem recorded."""
        value = self.string(record, self.column, allow_int=self.modality == "label")
        if value is None:
            return None
        if self.modality == "text":
            if not value.strip():
                self.problem(record, self.column, "empty text (only whitespace)")
                return None
            return value, hashlib.sha256(value.encode()).hexdigest()
        if self.modality == "label":
            if not value.strip():
                self.problem(record, self.column, "empty label (only whitespace)")
                return None
            if any(char < " " or char == "\x7f" for char in value):
                self.problem(record, self.column, f"label {value!r} contains a control character")
                return None
            return value, hashlib.sha256(value.encode()).hexdigest()
        return self.image_content(record, value)

    def image_content(self, record: _Record, value: str) -> tuple[str, str] | None:
        file = self.path.parent / value
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            self.problem(record, self.column, f"image file not found: {file}")
            return None
        except IsADirectoryError:
            self.problem(record, self.column, f"image path is a folder: {file}")
            return None
        except OSError as exc:
            self.problem(record, self.column, f"cannot read image file {file}: {exc.strerror or exc}")
            return None
        sha256 = hashlib.sha256(data).hexdigest()
        if self.image is not None:
            try:
                with self.image.open(io.BytesIO(data)) as image:
                    image.verify()  # structure and checksums
                with self.image.open(io.BytesIO(data)) as image:
                    image.load()  # the pixels decode (verify() does not decode them)
            except Exception as exc:  # noqa: BLE001 - Pillow raises many types (UnidentifiedImageError, OSError...)
                self.problem(record, self.column, f"not a readable image: {file} ({type(exc).__name__}: {exc})")
                return None
        expected = record.values.get(IMAGE_SHA256_COLUMN)
        if isinstance(expected, str) and expected and expected.lower() != sha256:
            self.problem(record, IMAGE_SHA256_COLUMN, f"{expected} does not match the SHA-256 of {file} ({sha256})")
            return None
        return value, sha256

    def check(self, record: _Record) -> ManifestRow | None:
        entity_id = self.entity_id(record)
        content = self.content(record)
        for name, value in record.values.items():
            if name not in (ID_COLUMN, self.column) and isinstance(value, str) and _bad_text(value):
                self.problem(record, name, _encoding_message(value))
                return None
        if entity_id is None or content is None:
            return None
        extra = {k: v for k, v in record.values.items() if k not in (ID_COLUMN, self.column)}
        return ManifestRow(entity_id, content[0], content[1], record.row, record.line, extra)


def _decode(raw: bytes, problems: list[Problem]) -> str | None:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        problems.append(Problem("the file is UTF-16; save the manifest as UTF-8"))
        return None
    text = raw.decode("utf-8", errors="surrogateescape")
    return text.removeprefix("\ufeff")


def load_manifest(path: Path | str, modality: Modality, *, verify_images: bool = True) -> Manifest:
    """Read and check a CSV (``.csv``) or JSON Lines (``.jsonl``, ``.ndjson``) manifest of ``modality``.

    Raises :class:`ManifestError` naming row and column of every problem (missing column, empty or duplicate
    ID, empty text or label, missing or unreadable image, undecodable bytes...). ``verify_images=False``
    skips decoding images with Pillow (files must still exist; their SHA-256 is still taken).
    """
    path = Path(path)
    if modality not in get_args(Modality):
        raise ValueError(f"unknown modality {modality!r}; expected one of {', '.join(get_args(Modality))}")
    problems: list[Problem] = []

    def refuse() -> ManifestError:
        log.info("manifest %s refused: %d problems", path, len(problems))
        return ManifestError(path, problems)

    format_ = EXTENSIONS.get(path.suffix.lower())
    if format_ is None:
        problems.append(Problem(f"unknown extension {path.suffix or '(none)'!r}; "
                                f"expected one of {', '.join(EXTENSIONS)}"))
        raise refuse()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        problems.append(Problem("manifest file not found"))
        raise refuse() from None
    except OSError as exc:
        problems.append(Problem(f"cannot read the manifest: {exc.strerror or exc}"))
        raise refuse() from exc
    text = _decode(raw, problems)
    if text is None:
        raise refuse()

    reader = _csv_records if format_ == "csv" else _jsonl_records
    header, header_line, records = reader(text, problems)
    if header is not None:  # CSV: the header must name the columns, once each
        if not header and not problems:
            problems.append(Problem("the file is empty (no header)"))
        seen: set[str] = set()
        for name in header:
            if _bad_text(name):
                problems.append(Problem(f"header: {_encoding_message(name)}", line=header_line))
            elif name in seen:
                problems.append(Problem("column appears twice in the header", column=name, line=header_line))
            seen.add(name)
        for required in (ID_COLUMN, modality):
            if header and required not in seen:
                problems.append(Problem(f"missing column (the header has: {', '.join(header)})", column=required,
                                        line=header_line))
        if problems:
            raise refuse()

    checker = _Checker(path.resolve(), modality, verify_images, problems)
    rows = [row for row in map(checker.check, records) if row is not None]
    if not rows and not problems:
        problems.append(Problem("no rows" + (" after the header" if header else "")))
    if problems:
        raise refuse()
    rows.sort(key=lambda row: row.entity_id)
    manifest = Manifest(path.resolve(), modality, format_, hashlib.sha256(raw).hexdigest(), tuple(rows))
    log.info("manifest %s: %d %s rows, fingerprint %s", path, len(manifest), modality, manifest.fingerprint()[:12])
    return manifest


__all__ = [
    "EXTENSIONS", "ID_COLUMN", "IMAGE_SHA256_COLUMN", "Manifest", "ManifestError", "ManifestFormat", "ManifestRow",
    "Modality", "Problem", "entity_commitment", "load_manifest",
]
