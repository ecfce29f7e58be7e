"""Swarm merges through their public functions: what each method computes, that a member sending parameters ×100
moves the mean but not the geometric median (cross-checked against a direct minimisation written here), that
merges do not depend on the members' order or the run, that an auditor's recompute catches any change, and
every refusal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from swarmfuse.client.swarm.errors import (
    MergeError,
    MergeVerificationError,
    MismatchedMembersError,
    NoMembersError,
    UnknownMethodError,
    WeightsError,
)
from swarmfuse.client.swarm.merge import MergeRecord, Method, Weighting, merge, recompute, verify
from swarmfuse.client.swarm.parameters import Parameters
from swarmfuse.errors import SwarmfuseError

METHODS = [m.value for m in Method]


def member(seed: int, scale: float = 1.0, dtype=np.float32) -> Parameters:
    rng = np.random.default_rng(seed)
    return Parameters({"head.weight": (scale * rng.standard_normal((3, 4))).astype(dtype),
                       "head.bias": (scale * rng.standard_normal(3)).astype(dtype)})


def flat(params: Parameters) -> np.ndarray:
    return np.concatenate([params[name].astype(np.float64).ravel() for name in params])


def test_equal_weight_mean_is_the_arithmetic_mean() -> None:
    members = {f"DC{i}": member(i, dtype=np.float64) for i in range(1, 5)}
    merged = merge(members, "mean")
    for name in merged.parameters:
        expected = sum(p[name] for p in members.values()) / 4
        np.testing.assert_allclose(merged.parameters[name], expected, rtol=1e-15, atol=0)
    assert merged.record.weighting is Weighting.EQUAL and merged.record.weights == (1, 1, 1, 1)
    small = {"A": Parameters({"w": np.array([1.0, 2.0])}), "B": Parameters({"w": np.array([4.0, 8.0])})}
    assert merge(small, "mean").parameters["w"].tolist() == [2.5, 5.0]


def test_row_weighted_mean_is_fedavg() -> None:
    members = {"DC1": Parameters({"w": np.array([0.0, 10.0])}), "DC2": Parameters({"w": np.array([4.0, 2.0])}),
               "DC3": Parameters({"w": np.array([8.0, 6.0])})}
    merged = merge(members, Method.MEAN, weights={"DC1": 1, "DC2": 2, "DC3": 5})
    np.testing.assert_allclose(merged.parameters["w"], [(0 + 8 + 40) / 8, (10 + 4 + 30) / 8], rtol=1e-15)
    assert merged.record.weighting is Weighting.ROWS and merged.record.weights == (1, 2, 5)


def test_a_two_member_median_equals_the_mean() -> None:
    members = {"DC1": member(1), "DC2": member(2)}
    mean, median = merge(members, "mean"), merge(members, "median")
    assert median.parameters.encode() == mean.parameters.encode()
    assert median.record.result == mean.record.result


def test_median_is_the_coordinate_wise_median_and_weights_move_it() -> None:
    members = {f"DC{i}": member(i, dtype=np.float64) for i in range(1, 6)}
    merged = merge(members, "median")
    for name in merged.parameters:
        np.testing.assert_array_equal(merged.parameters[name], np.median([p[name] for p in members.values()], axis=0))
    four = {k: members[k] for k in ("DC1", "DC2", "DC3", "DC4")}
    for name in merge(four, "median").parameters:
        np.testing.assert_array_equal(merge(four, "median").parameters[name],
                                      np.median([p[name] for p in four.values()], axis=0))
    heavy = merge(members, "median", weights={"DC1": 1, "DC2": 1, "DC3": 1, "DC4": 1, "DC5": 5})
    assert heavy.parameters.sha256() == members["DC5"].sha256()  # more than half the weight


def independent_geometric_median(points: np.ndarray) -> np.ndarray:
    """The point minimising the sum of Euclidean distances, by a quasi-Newton minimisation (scipy), not by
    Weiszfeld iterations."""
    optimize = pytest.importorskip("scipy.optimize")

    def cost(z: np.ndarray) -> tuple[float, np.ndarray]:
        diff = z - points
        distances = np.sqrt((diff * diff).sum(axis=1))
        return float(distances.sum()), (diff / distances[:, None]).sum(axis=0)

    found = optimize.minimize(cost, np.median(points, axis=0), jac=True, method="BFGS",
                              options={"gtol": 1e-12, "maxiter": 10_000})
    return found.x


def test_the_geometric_median_ignores_a_member_sending_parameters_times_100() -> None:
    base = member(0, dtype=np.float64)
    honest = {f"DC{i}": Parameters({n: base[n] + 0.05 * member(i, dtype=np.float64)[n] for n in base})
              for i in range(1, 5)}
    members = dict(honest, DC5=Parameters({n: 100 * honest["DC4"][n] for n in base}))
    centre, size = np.mean([flat(p) for p in honest.values()], axis=0), np.linalg.norm(flat(base))

    robust = flat(merge(members, "geometric_median").parameters)
    assert np.linalg.norm(robust - centre) < 0.05 * size
    assert np.linalg.norm(flat(merge(members, "mean").parameters) - centre) > 10 * size

    independent = independent_geometric_median(np.stack([flat(members[org]) for org in sorted(members)]))
    np.testing.assert_allclose(robust, independent, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_the_result_keeps_the_inputs_dtype_and_layout(method) -> None:
    for dtype in (np.float16, np.float32, np.float64):
        members = {"DC1": member(1, dtype=dtype), "DC2": member(2, dtype=dtype), "DC3": member(3, dtype=dtype)}
        assert merge(members, method).parameters.layout() == members["DC1"].layout()


@settings(max_examples=25, deadline=None)
@given(st.permutations(["DC1", "DC2", "DC3", "DC4", "DC5"]), st.sampled_from(METHODS), st.booleans())
def test_merges_do_not_depend_on_the_members_order_or_the_run(order, method, by_rows) -> None:
    members = {org: member(int(org[2:]), scale=1.0 + int(org[2:])) for org in sorted(order)}
    rows = {org: 10 * int(org[2:]) for org in order} if by_rows else None
    first = merge(members, method, rows)
    again = merge({org: members[org] for org in order}, method, rows and {org: rows[org] for org in order})
    assert again.parameters.encode() == first.parameters.encode()
    assert again.record == first.record
    assert first.record.orgs == ("DC1", "DC2", "DC3", "DC4", "DC5")
    assert first.record.inputs == tuple(members[org].sha256() for org in first.record.orgs)
    assert first.record.result == first.parameters.sha256()


def test_one_member_merges_to_itself() -> None:
    alone = {"DC1": member(1)}
    for method in METHODS:
        assert merge(alone, method).parameters.sha256() == alone["DC1"].sha256()


@pytest.mark.parametrize("method", METHODS)
def test_an_auditor_recomputes_a_merge_from_the_files(tmp_path, method) -> None:
    members = {org: member(i) for i, org in enumerate(("DC1", "DC2", "DC3"))}
    merged = merge(members, method, weights={"DC1": 3, "DC2": 1, "DC3": 2})
    files = {org: tmp_path / f"{org}.params" for org in members}
    for org, path in files.items():
        members[org].write(path)
    result = tmp_path / "merged.params"
    merged.parameters.write(result)
    record = MergeRecord.model_validate_json(merged.record.model_dump_json())  # as read back from a record

    assert verify(record, files, result).encode() == merged.parameters.encode()

    member(9).write(files["DC2"])
    with pytest.raises(MergeVerificationError, match="DC2's parameters hash to"):
        verify(record, files)
    members["DC2"].write(files["DC2"])
    with pytest.raises(MergeVerificationError, match="not"):
        verify(record, {org: files[org] for org in ("DC1", "DC2")})
    member(9).write(result)
    with pytest.raises(MergeVerificationError, match="the record's result"):
        verify(record, files, result)


def test_recompute_refuses_a_record_whose_result_method_or_weights_were_changed() -> None:
    members = {"DC1": member(1), "DC2": member(2), "DC3": member(3)}
    record = merge(members, "mean").record
    assert recompute(record, members).sha256() == record.result
    for changed in (record.model_copy(update={"result": "0" * 64}),
                    record.model_copy(update={"method": Method.MEDIAN}),
                    record.model_copy(update={"weighting": Weighting.ROWS, "weights": (1, 1, 2)})):
        with pytest.raises(MergeVerificationError):
            recompute(changed, members)


def test_a_record_is_frozen_and_checks_itself() -> None:
    record = merge({"DC1": member(1), "DC2": member(2)}, "median").record
    with pytest.raises(ValidationError):
        record.method = Method.MEAN
    fields = record.model_dump()
    for bad in ({"orgs": ("DC2", "DC1")}, {"weights": (1,)}, {"weights": (0, 1)}, {"weights": (1, 2)}, {"weights": (True, 1)},
                {"result": "not a hash"}, {"method": "average"}, {"extra": 1}):
        with pytest.raises(ValidationError):
            MergeRecord(**{**fields, **bad})


def test_refusals_are_typed() -> None:
    a, b = member(1), member(2)
    cases = [
        (lambda: merge({}, "mean"), NoMembersError),
        (lambda: merge({"DC1": a, "DC2": b}, "average"), UnknownMethodError),
        (lambda: merge({"DC1": a, "DC2": b}, "mean", {"DC1": 0, "DC2": 1}), WeightsError),
        (lambda: merge({"DC1": a, "DC2": b}, "mean", {"DC1": -3, "DC2": 1}), WeightsError),
        (lambda: merge({"DC1": a, "DC2": b}, "mean", {"DC1": 1.5, "DC2": 1}), WeightsError),
        (lambda: merge({"DC1": a, "DC2": b}, "mean", {"DC1": 1}), WeightsError),
        (lambda: merge({"DC1": a, "DC2": b}, "mean", {"DC1": 1, "DC2": 1, "DC3": 1}), WeightsError),
        (lambda: merge({"DC1": a, "DC2": b}, "mean", {"DC1": 2**41, "DC2": 1}), WeightsError),
        (lambda: merge({"DC1": a, "DC2": Parameters({"head.weight": np.ones((4, 3), np.float32),
                                                      "head.bias": np.ones(3, np.float32)})}, "mean"),
         MismatchedMembersError),
        (lambda: merge({"DC1": a, "DC2": Parameters({"head.weight": b["head.weight"]})}, "median"),
         MismatchedMembersError),
        (lambda: merge({"DC1": a, "DC2": member(2, dtype=np.float64)}, "geometric_median"),
         MismatchedMembersError),
        (lambda: merge({"DC 1": a}, "mean"), MergeError),
        (lambda: merge({"DC1": {"head.bias": np.ones(3)}}, "mean"), MergeError),
    ]
    for call, error in cases:
        with pytest.raises(error) as caught:
            call()
        assert isinstance(caught.value, MergeError) and isinstance(caught.value, SwarmfuseError)
    with pytest.raises(MismatchedMembersError, match="'head.weight' is <f4 \\(4, 3\\), not <f4 \\(3, 4\\)"):
        cases[8][0]()
