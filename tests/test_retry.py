"""The one retry helper: what it repeats, when it stops, how long it waits, what it raises."""

from __future__ import annotations

import pytest
from fake_clock import recorded_sleeps

from swarmfuse.retry import policy, retrying


class Flaky(Exception):
    pass


def failing(times: int, error: type[Exception] = Flaky) -> tuple[list[int], object]:
    """A call that fails ``times`` times with ``error``, then returns "done"; and the list of its calls."""
    calls: list[int] = []

    def call() -> str:
        calls.append(len(calls))
        if len(calls) <= times:
            raise error(f"failure {len(calls)}")
        return "done"
    return calls, call


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-off waits, on a fake clock."""
    return recorded_sleeps(monkeypatch)


def test_repeats_the_named_failures_until_the_call_succeeds(sleeps: list[float]) -> None:
    calls, call = failing(2)
    assert retrying(call, Flaky, attempts=3) == "done" and len(calls) == 3
    calls, call = failing(2)
    assert retrying(call, lambda exc: "failure" in str(exc), attempts=3) == "done" and len(calls) == 3


def test_other_failures_are_raised_at_once(sleeps: list[float]) -> None:
    calls, call = failing(1, ValueError)
    with pytest.raises(ValueError, match="failure 1"):
        retrying(call, Flaky, attempts=5)
    assert len(calls) == 1 and sleeps == []
    with pytest.raises(ValueError):
        retrying(failing(1, ValueError)[1], lambda exc: isinstance(exc, Flaky), attempts=5)


def test_the_last_failure_is_raised_unchanged_once_the_attempts_are_spent(sleeps: list[float]) -> None:
    calls, call = failing(10)
    with pytest.raises(Flaky, match="failure 4"):
        retrying(call, (Flaky, OSError), attempts=4)
    assert len(calls) == 4


def test_waits_double_from_the_first_up_to_the_largest(sleeps: list[float]) -> None:
    with pytest.raises(Flaky):
        retrying(failing(10)[1], Flaky, attempts=6, first_wait=0.5, max_wait=3.0)
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_time_budget_stops_before_a_wait_that_would_pass_it(sleeps: list[float]) -> None:
    calls, call = failing(10)
    with pytest.raises(Flaky):
        retrying(call, Flaky, within=2.5, first_wait=1.0, max_wait=1.0)
    assert len(calls) == 3 and sleeps == [1.0, 1.0]  # 1 + 1 s of waits fit, a third would end at 3 s
    calls, call = failing(10)
    with pytest.raises(Flaky):
        retrying(call, Flaky, within=0.0)
    assert len(calls) == 1  # no budget left: the one attempt still runs


def test_a_retry_without_a_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="bound"):
        policy(Flaky)
    with pytest.raises(ValueError, match="at least 1"):
        policy(Flaky, attempts=0)


def test_the_policy_runs_attempts_its_caller_makes(sleeps: list[float]) -> None:
    calls, call = failing(1)
    for attempt in policy(Flaky, attempts=2):
        with attempt:
            result = call()
    assert result == "done" and len(calls) == 2
