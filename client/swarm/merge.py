"""Merges of several members' parameters of one component, and the record that lets anyone recompute one.

Members are orgs (MSP IDs) holding the same modality, each with a :class:`~.parameters.Parameters` of the same
layout (names, dtypes, shapes) and a positive integer weight: its rows (``Weighting.ROWS``) or 1 each
(``Weighting.EQUAL``). Every method flattens each member's arrays in name order into one vector, computes in
float64 over the members in sorted org order, and casts each array of the result back to its input dtype:

- ``mean``: the weighted mean Σ wᵢ xᵢ / Σ wᵢ (FedAvg when the weights are rows).
- ``median``: the coordinate-wise weighted median: per coordinate, the mean of the lower and the upper weighted
  median (the plain median with equal weights: the middle value, or the mean of the two middle values).
- ``geometric_median``: the weighted geometric median (the point minimising Σ wᵢ ‖z − xᵢ‖₂) by smoothed
  Weiszfeld iterations: from the weighted mean, z ← Σ βᵢ xᵢ / Σ βᵢ with βᵢ = wᵢ / max(‖z − xᵢ‖₂, ν), ν =
  :data:`GEOMETRIC_MEDIAN_SMOOTHING`, until a step moves z by at most :data:`GEOMETRIC_MEDIAN_TOLERANCE` ×
  (1 + ‖z‖₂) or after :data:`GEOMETRIC_MEDIAN_MAX_ITERATIONS` steps. Robust to members (fewer than half the
  weight) sending arbitrary parameters.

Determinism: the same inputs give the same bytes on every run and in whatever order the members are passed:
NumPy element-wise operations and reductions in a fixed order, no BLAS call, no threads, no randomness.
Memory: members × parameters × 8 bytes, held at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

from swarmfuse.chaincode.contracts.fields import STRICT, MspId, Sha256
from swarmfuse.client.swarm.errors import (
    MergeError,
    MergeVerificationError,
    MismatchedMembersError,
    NoMembersError,
    UnknownMethodError,
    WeightsError,
)
from swarmfuse.client.swarm.parameters import Parameters

GEOMETRIC_MEDIAN_MAX_ITERATIONS = 1000
GEOMETRIC_MEDIAN_TOLERANCE = 1e-12
"""A step's length, relative to 1 + ‖z‖₂, at which the Weiszfeld iterations stop."""
GEOMETRIC_MEDIAN_SMOOTHING = 1e-12
"""ν: a distance below it counts as ν, so a z landing on a member does not divide by zero."""
MAX_MEMBERS = 1024
MAX_WEIGHT = 2**40
"""Weights are rows; this bound keeps every sum of weights an exact integer in int64 and in float64."""
_MSP_ID: TypeAdapter[str] = TypeAdapter(MspId)


class Method(StrEnum):
    MEAN = "mean"
    MEDIAN = "median"
    GEOMETRIC_MEDIAN = "geometric_median"


class Weighting(StrEnum):
    ROWS = "rows"
    EQUAL = "equal"


class MergeRecord(BaseModel):
    """What one merge took and gave: its method, its members in sorted org order with their inputs' SHA-256 and
    their weights, and the result's SHA-256 (each SHA-256 that of the canonical parameters encoding)."""

    model_config = STRICT
    method: Method
    weighting: Weighting
    orgs: tuple[MspId, ...] = Field(min_length=1, max_length=MAX_MEMBERS)
    inputs: tuple[Sha256, ...] = Field(min_length=1, max_length=MAX_MEMBERS)
    weights: tuple[Annotated[int, Field(strict=True)], ...] = Field(min_length=1, max_length=MAX_MEMBERS)
    result: Sha256

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if list(self.orgs) != sorted(set(self.orgs)):
            raise ValueError("orgs must be distinct and in sorted order")
        if not len(self.orgs) == len(self.inputs) == len(self.weights):
            raise ValueError("orgs, inputs and weights must have one entry per member")
        if not all(0 < w <= MAX_WEIGHT for w in self.weights):
            raise ValueError(f"weights must be integers from 1 to {MAX_WEIGHT}")
        if self.weighting is Weighting.EQUAL and set(self.weights) != {1}:
            raise ValueError("equal weighting gives every member weight 1")
        return self


@dataclass(frozen=True)
class Merged:
    """A merge's result and its record."""

    parameters: Parameters
    record: MergeRecord


def _method(method: Method | str) -> Method:
    try:
        return Method(method)
    except ValueError:
        known = ", ".join(m.value for m in Method)
        raise UnknownMethodError(f"unknown merge method {method!r}; known: {known}") from None


def _weights(orgs: list[str], weights: Mapping[str, int] | None) -> tuple[Weighting, tuple[int, ...]]:
    if weights is None:
        return Weighting.EQUAL, (1,) * len(orgs)
    if sorted(weights) != orgs:
        raise WeightsError(f"weights are for {sorted(weights)}, the members are {orgs}")
    for org in orgs:
        w = weights[org]
        if type(w) is not int and not isinstance(w, np.integer):
            raise WeightsError(f"{org}'s weight {w!r} is not an integer (weights are rows)")
        if not 0 < w <= MAX_WEIGHT:
            raise WeightsError(f"{org}'s weight {w} is not from 1 to {MAX_WEIGHT}")
    return Weighting.ROWS, tuple(int(weights[org]) for org in orgs)


def _orgs(members: Mapping[str, Parameters]) -> list[str]:
    if not members:
        raise NoMembersError("a merge needs at least one member")
    if len(members) > MAX_MEMBERS:
        raise MergeError(f"{len(members)} members; a merge takes at most {MAX_MEMBERS}")
    orgs = sorted(members)
    for org in orgs:
        try:
            _MSP_ID.validate_python(org, strict=True)
        except ValidationError:
            raise MergeError(f"member {org!r} is not an MSP ID") from None
        if not isinstance(members[org], Parameters):
            raise MergeError(f"{org}'s parameters are a {type(members[org]).__name__}, not Parameters")
    first = members[orgs[0]].layout()
    for org in orgs[1:]:
        layout = members[org].layout()
        if layout != first:
            raise MismatchedMembersError(f"{org}'s parameters differ from {orgs[0]}'s: {_difference(first, layout)}")
    return orgs


def _difference(a: tuple, b: tuple) -> str:
    names_a, names_b = {n for n, _, _ in a}, {n for n, _, _ in b}
    if names_a != names_b:
        missing, extra = sorted(names_a - names_b), sorted(names_b - names_a)
        return f"names missing {missing[:5]}, extra {extra[:5]}"
    for (name, dtype_a, shape_a), (_, dtype_b, shape_b) in zip(a, b, strict=True):
        if (dtype_a, shape_a) != (dtype_b, shape_b):
            return f"array {name!r} is {dtype_b} {shape_b}, not {dtype_a} {shape_a}"
    return "layouts differ"


def _mean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    total = np.zeros(x.shape[1], dtype=np.float64)
    for row, weight in zip(x, w, strict=True):
        total += weight * row
    return total / w.sum()


def _median(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    order = np.argsort(x, axis=0, kind="stable")
    values = np.take_along_axis(x, order, axis=0)
    cumulative = np.cumsum(w.astype(np.int64)[order], axis=0)  # exact integers
    total = cumulative[-1]
    lower = np.argmax(2 * cumulative >= total, axis=0)
    upper = np.argmax(2 * cumulative > total, axis=0)
    columns = np.arange(x.shape[1])
    return (values[lower, columns] + values[upper, columns]) / 2


def _norm(v: np.ndarray) -> float:
    return float(np.sqrt(np.sum(v * v)))


def _geometric_median(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    z = _mean(x, w)
    for _ in range(GEOMETRIC_MEDIAN_MAX_ITERATIONS):
        distances = np.array([_norm(row - z) for row in x])
        beta = w / np.maximum(distances, GEOMETRIC_MEDIAN_SMOOTHING)
        step = _mean(x, beta)
        moved = _norm(step - z)
        z = step
        if moved <= GEOMETRIC_MEDIAN_TOLERANCE * (1 + _norm(z)):
            break
    return z


_COMPUTE = {Method.MEAN: _mean, Method.MEDIAN: _median, Method.GEOMETRIC_MEDIAN: _geometric_median}


def _compute(method: Method, members: list[Parameters], weights: tuple[int, ...]) -> Parameters:
    layout = members[0].layout()
    x = np.stack([np.concatenate([p[name].astype(np.float64).ravel() for name, _, _ in layout]) for p in members])
    merged = _COMPUTE[method](x, np.array(weights, dtype=np.float64))
    arrays, offset = {}, 0
    for name, dtype, shape in layout:
        size = members[0][name].size
        arrays[name] = merged[offset:offset + size].reshape(shape).astype(dtype)
        offset += size
    return Parameters(arrays)


def merge(members: Mapping[str, Parameters], method: Method | str,
          weights: Mapping[str, int] | None = None) -> Merged:
    """Merge ``members`` (org → parameters, one layout) with ``method``; ``weights`` (org → rows, one per member)
    makes the weighting ``rows``, none makes it ``equal``. Raises :class:`NoMembersError`,
    :class:`UnknownMethodError`, :class:`WeightsError` or :class:`MismatchedMembersError`."""
    chosen = _method(method)
    orgs = _orgs(members)
    weighting, weight_list = _weights(orgs, weights)
    inputs = [members[org] for org in orgs]
    result = _compute(chosen, inputs, weight_list)
    record = MergeRecord(method=chosen, weighting=weighting, orgs=tuple(orgs),
                         inputs=tuple(p.sha256() for p in inputs), weights=weight_list, result=result.sha256())
    return Merged(result, record)


def recompute(record: MergeRecord, members: Mapping[str, Parameters]) -> Parameters:
    """The merge ``record`` describes, recomputed from ``members``; :class:`MergeVerificationError` unless they are
    its orgs with its inputs and the result has its result hash."""
    if sorted(members) != list(record.orgs):
        raise MergeVerificationError(f"the record merges {list(record.orgs)}, not {sorted(members)}")
    for org, expected in zip(record.orgs, record.inputs, strict=True):
        got = members[org].sha256()
        if got != expected:
            raise MergeVerificationError(f"{org}'s parameters hash to {got}, the record says {expected}")
    weights = None if record.weighting is Weighting.EQUAL else dict(zip(record.orgs, record.weights, strict=True))
    merged = merge(members, record.method, weights)
    if merged.record != record:
        raise MergeVerificationError(f"the {record.method.value} merge recomputes to {merged.record.result}, "
                                     f"the record says {record.result}")
    return merged.parameters


def verify(record: MergeRecord, files: Mapping[str, Path], result: Path | None = None) -> Parameters:
    """What an auditor runs: read each org's parameters file, :func:`recompute` the merge and, when ``result``
    names the merged file members received, check that it holds exactly the recomputed result."""
    merged = recompute(record, {org: Parameters.read(path) for org, path in files.items()})
    if result is not None:
        got = Parameters.read(result).sha256()
        if got != record.result:
            raise MergeVerificationError(f"{result} hashes to {got}, the record's result is {record.result}")
    return merged
