"""The parameters file format: round trips, one canonical encoding (hence one SHA-256), and every refusal."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from swarmfuse.client.swarm.errors import (
    NonFiniteError,
    NotParametersError,
    ParametersError,
    UnsupportedArrayError,
)
from swarmfuse.client.swarm.parameters import MAGIC, Parameters
from swarmfuse.errors import SwarmfuseError


def state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {"layer1.weight": rng.standard_normal((4, 3)).astype(np.float32),
            "layer1.bias": rng.standard_normal(4).astype(np.float32),
            "scale": np.array(2.5, dtype=np.float64)}


def encoded(entries: list[dict], data: bytes, header: bytes | None = None) -> bytes:
    text = header if header is not None else json.dumps({"arrays": entries}, sort_keys=True,
                                                         separators=(",", ":")).encode()
    return MAGIC + len(text).to_bytes(8, "little") + text + data


def test_round_trip_through_a_file(tmp_path) -> None:
    params = Parameters(state())
    path = tmp_path / "dc1.params"
    digest = params.write(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == params.sha256()
    assert path.stat().st_mode & 0o777 == 0o600
    back = Parameters.read(path)
    assert list(back) == ["layer1.bias", "layer1.weight", "scale"]
    for name, array in state().items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        np.testing.assert_array_equal(back[name], array)
    assert not back["scale"].flags.writeable
    assert back == params and back != Parameters(dict(state(), scale=np.array(0.0)))


def test_the_hash_is_canonical_whatever_the_insertion_order_byte_order_or_memory_layout() -> None:
    arrays = state()
    reordered = {name: arrays[name] for name in reversed(list(arrays))}
    big_endian = {name: array.astype(array.dtype.newbyteorder(">")) for name, array in arrays.items()}
    fortran = {name: np.asfortranarray(array) if array.ndim else array for name, array in arrays.items()}
    hashes = {Parameters(a).sha256() for a in (arrays, reordered, big_endian, fortran)}
    assert len(hashes) == 1
    data = Parameters(arrays).encode()
    assert b"time" not in data and data.startswith(MAGIC)
    changed = dict(arrays, scale=np.array(2.5000001, dtype=np.float64))
    assert Parameters(changed).sha256() not in hashes


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9._/-]{0,12}", fullmatch=True),
    hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]), hnp.array_shapes(min_dims=0, max_dims=3),
               elements={"allow_nan": False, "allow_infinity": False}),
    min_size=1, max_size=4))
def test_any_finite_float_arrays_round_trip_to_the_same_bytes(arrays) -> None:
    params = Parameters(arrays)
    data = params.encode()
    back = Parameters.decode(data)
    assert back.encode() == data
    assert back.layout() == params.layout()
    for name, array in arrays.items():
        assert back[name].shape == array.shape
        assert back[name].tobytes() == np.ascontiguousarray(array).tobytes()


def test_refuses_an_npz_or_other_bytes_that_are_not_a_parameters_file() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, w=np.ones(3, dtype=np.float32))
    for data in (buffer.getvalue(), b"", b"hello", MAGIC + b"\x01"):
        with pytest.raises(NotParametersError):
            Parameters.decode(data)


def test_refuses_a_truncated_or_padded_or_non_canonical_file() -> None:
    data = Parameters(state()).encode()
    for bad in (data[:-1], data + b"\x00", data[:len(MAGIC) + 8 + 10]):
        with pytest.raises(NotParametersError):
            Parameters.decode(bad)
    entry = {"dtype": "<f4", "name": "w", "shape": [2]}
    values = np.ones(2, dtype="<f4").tobytes()
    assert Parameters.decode(encoded([entry], values))["w"].tolist() == [1.0, 1.0]
    spaced = json.dumps({"arrays": [entry]}).encode()  # the same header with whitespace
    unsorted = [{"dtype": "<f4", "name": "z", "shape": [1]}, {"dtype": "<f4", "name": "a", "shape": [1]}]
    for bad in (encoded([entry], values, header=spaced), encoded(unsorted, values),
                encoded([entry, entry], values + values), encoded([dict(entry, extra=1)], values),
                encoded([dict(entry, shape=[-1])], values), encoded([dict(entry, shape=[True, 2])], values),
                encoded([entry], values, header=b"{not json"), encoded([entry], values, header=b'{"arrays":{}}')):
        with pytest.raises(NotParametersError):
            Parameters.decode(bad)
    huge = MAGIC + (2**40).to_bytes(8, "little") + b"{}"
    with pytest.raises(NotParametersError, match="larger than the limit"):
        Parameters.decode(huge)


@pytest.mark.parametrize("dtype", ["|O", "<i4", "|b1", "<U4", ">f4", "<c16"])
def test_reading_refuses_arrays_of_objects_and_other_dtypes(dtype) -> None:
    with pytest.raises(UnsupportedArrayError, match="never objects"):
        Parameters.decode(encoded([{"dtype": dtype, "name": "w", "shape": [1]}], b"\x00" * 8))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_reading_refuses_non_finite_values(bad) -> None:
    data = encoded([{"dtype": "<f8", "name": "w", "shape": [2]}], np.array([0.0, bad]).tobytes())
    with pytest.raises(NonFiniteError, match="'w'"):
        Parameters.decode(data)


@pytest.mark.parametrize("arrays, error", [
    ({}, UnsupportedArrayError),
    ({"w": np.array([object(), 1.0], dtype=object)}, UnsupportedArrayError),
    ({"w": np.arange(3)}, UnsupportedArrayError),
    ({"w": np.array(["a"])}, UnsupportedArrayError),
    ({"w": np.array([1 + 2j])}, UnsupportedArrayError),
    ({"bad name": np.ones(1)}, UnsupportedArrayError),
    ({"": np.ones(1)}, UnsupportedArrayError),
    ({"w": np.array([1.0, np.nan], dtype=np.float32)}, NonFiniteError),
])
def test_building_refuses_what_the_format_cannot_hold(arrays, error) -> None:
    with pytest.raises(error) as caught:
        Parameters(arrays)
    assert isinstance(caught.value, ParametersError) and isinstance(caught.value, SwarmfuseError)
