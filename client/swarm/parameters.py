"""Parameters: a set of named float arrays (a component's state, e.g. a PyTorch module's ``state_dict`` turned into
NumPy arrays) and the one byte encoding they are written in, so that the same parameters always give the same
bytes and the same SHA-256.

The encoding (version 1), with no pickle, no timestamps and nothing left to the writer::

    MAGIC (b"SWARMFUSE-PARAMS\\x00\\x01")
    header length: 8 bytes, unsigned little-endian
    header: canonical JSON (sorted keys, no whitespace, ASCII) of
            {"arrays": [{"dtype": "<f4", "name": ..., "shape": [...]}, ...]}, the arrays sorted by name
    data: each array's values in that order, C order, little-endian, nothing between them

Only float16, float32 and float64 arrays with finite values are written or read; names are 1-256 characters of
``A-Z a-z 0-9 . _ - /`` (the names of a ``state_dict``). Reading checks everything the writer guarantees (the
magic, the header's form and order, the exact length, the values), so a file that reads is one that
:meth:`Parameters.encode` would write again byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from swarmfuse.client.swarm.errors import NonFiniteError, NotParametersError, UnsupportedArrayError
from swarmfuse.files import write_atomic

MAGIC = b"SWARMFUSE-PARAMS\x00\x01"
MAX_HEADER_BYTES = 16 * 1024 * 1024
"""Largest header read (about 100,000 arrays): a reader never parses an unbounded header."""
DTYPES = {"<f2": np.dtype("<f2"), "<f4": np.dtype("<f4"), "<f8": np.dtype("<f8")}
NAME = re.compile(r"^[A-Za-z0-9._/-]{1,256}$")
_LENGTH_BYTES = 8


def _canonical_dtype(array: np.ndarray, name: str) -> np.dtype:
    if array.dtype.kind != "f" or array.dtype.itemsize not in (2, 4, 8):
        raise UnsupportedArrayError(f"array {name!r} has dtype {array.dtype}; parameters are float16/32/64 arrays")
    return array.dtype.newbyteorder("<")


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise UnsupportedArrayError(f"array name {name!r} is not 1-256 characters of A-Z a-z 0-9 . _ - /")
    return name


def _check_finite(array: np.ndarray, name: str) -> None:
    if not np.isfinite(array).all():
        raise NonFiniteError(f"array {name!r} holds NaN or infinite values")


class Parameters(Mapping[str, np.ndarray]):
    """Named float arrays, read-only, in name order; equal parameters have equal :meth:`encode` bytes."""

    __slots__ = ("_arrays",)

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copies of ``arrays`` (any float16/32/64 array-likes, any byte order) as little-endian read-only
        arrays; refuses an empty set, other dtypes (objects included), bad names and non-finite values."""
        if not arrays:
            raise UnsupportedArrayError("a set of parameters holds at least one array")
        kept = {}
        for name in sorted(arrays, key=lambda n: _check_name(n)):
            array = np.asarray(arrays[name])
            dtype = _canonical_dtype(array, name)
            _check_finite(array, name)
            copy = np.array(array, dtype=dtype, order="C", copy=True)  # keeps a 0-d array 0-d
            copy.flags.writeable = False
            kept[name] = copy
        self._arrays: dict[str, np.ndarray] = kept

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __eq__(self, other: object) -> bool:
        """Equal when the canonical bytes are (a Mapping's own equality would compare arrays element-wise)."""
        return isinstance(other, Parameters) and self.encode() == other.encode()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Parameters({len(self)} arrays, sha256={self.sha256()[:12]}…)"

    def layout(self) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
        """``(name, dtype, shape)`` of every array in name order: what two members must share to be merged."""
        return tuple((name, array.dtype.str, array.shape) for name, array in self._arrays.items())

    def encode(self) -> bytes:
        """The canonical bytes (see the module's docstring)."""
        header = {"arrays": [{"dtype": dtype, "name": name, "shape": list(shape)}
                             for name, dtype, shape in self.layout()]}
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        return b"".join([MAGIC, len(text).to_bytes(_LENGTH_BYTES, "little"), text,
                         *(array.tobytes(order="C") for array in self._arrays.values())])

    def sha256(self) -> str:
        """SHA-256 (hex) of :meth:`encode`: the parameters' identity in records."""
        return hashlib.sha256(self.encode()).hexdigest()

    def write(self, path: Path) -> str:
        """Write the canonical bytes to ``path`` (atomically, mode 0600: parameters are a site's artefact) and
        return their SHA-256."""
        data = self.encode()
        write_atomic(Path(path), data)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def decode(cls, data: bytes) -> Parameters:
        """The parameters ``data`` encodes; :class:`NotParametersError` when it is not exactly a canonical
        encoding, :class:`UnsupportedArrayError` for a dtype other than float16/32/64 (objects included) or a
        bad name, :class:`NonFiniteError` for NaN or infinity."""
        data = bytes(data)
        if not data.startswith(MAGIC):
            raise NotParametersError("not a swarmfuse parameters file (its first bytes are not the format's magic)")
        start = len(MAGIC) + _LENGTH_BYTES
        if len(data) < start:
            raise NotParametersError("parameters file truncated inside its header length")
        length = int.from_bytes(data[len(MAGIC):start], "little")
        if length > MAX_HEADER_BYTES or start + length > len(data):
            raise NotParametersError(f"parameters header of {length} bytes is larger than the limit or the file")
        text = data[start:start + length]
        try:
            header = json.loads(text.decode("ascii"))
            entries = header["arrays"]
            if set(header) != {"arrays"} or not isinstance(entries, list):
                raise TypeError("header keys")
            layout = [_entry(entry) for entry in entries]
        except (UnicodeDecodeError, ValueError, TypeError, KeyError) as e:
            if isinstance(e, UnsupportedArrayError):
                raise
            raise NotParametersError(f"parameters header is malformed: {e}") from None
        names = [name for name, _, _ in layout]
        if names != sorted(set(names)):
            raise NotParametersError("parameters header's arrays are not in strictly increasing name order")
        arrays, offset = {}, start + length
        for name, dtype, shape in layout:
            size = dtype.itemsize * math.prod(shape)
            if offset + size > len(data):
                raise NotParametersError(f"parameters file truncated inside array {name!r}")
            arrays[name] = np.frombuffer(data, dtype=dtype, count=size // dtype.itemsize, offset=offset).reshape(shape)
            offset += size
        if offset != len(data):
            raise NotParametersError(f"parameters file has {len(data) - offset} bytes after its last array")
        parameters = cls(arrays)
        if parameters.encode() != data:
            raise NotParametersError("parameters file is not in the canonical encoding")
        return parameters

    @classmethod
    def read(cls, path: Path) -> Parameters:
        """:meth:`decode` of the file at ``path``."""
        return cls.decode(Path(path).read_bytes())


def _entry(entry: object) -> tuple[str, np.dtype, tuple[int, ...]]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "name", "shape"}:
        raise TypeError(f"an array entry must have exactly dtype, name and shape: {entry!r}")
    name = _check_name(entry["name"])
    if entry["dtype"] not in DTYPES:
        raise UnsupportedArrayError(f"array {name!r} has dtype {entry['dtype']!r}; parameters are float16/32/64 "
                                    "little-endian arrays (never objects)")
    shape = entry["shape"]
    if (not isinstance(shape, list) or len(shape) > 32
            or not all(type(n) is int and 0 <= n < 2**40 for n in shape)):
        raise TypeError(f"array {name!r} has shape {shape!r}; a shape is up to 32 non-negative integers")
    return name, DTYPES[entry["dtype"]], tuple(shape)
