"""The one poll loop: what it returns, when it stops looking, how long it pauses."""

from __future__ import annotations

import time

import pytest
from fake_clock import recorded_sleeps

from swarmfuse.wait import wait_until


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses, on a fake clock starting at 500 s."""
    return recorded_sleeps(monkeypatch, start=500.0)


def answers(*values: object):
    """A probe giving ``values`` in turn, then the last one forever."""
    queue = list(values)
    return lambda: queue.pop(0) if len(queue) > 1 else queue[0]


def test_returns_the_first_true_answer(pauses: list[float]) -> None:
    assert wait_until(answers(None, 0, 7, 8), timeout=10, poll=0.5) == 7
    assert pauses == [0.5, 0.5]
    assert wait_until(answers("ready"), timeout=0) == "ready"


def test_after_the_timeout_the_last_false_answer_comes_from_a_call_at_the_deadline(pauses: list[float]) -> None:
    calls: list[float] = []

    def probe() -> bool:
        calls.append(time.monotonic())
        return False

    assert wait_until(probe, timeout=1.0, poll=0.3) is False
    assert pauses == pytest.approx([0.3, 0.3, 0.3, 0.1])  # the last pause ends at the deadline, not past it
    assert calls[-1] == pytest.approx(501.0)


def test_pauses_grow_by_half_up_to_the_largest(pauses: list[float]) -> None:
    wait_until(lambda: None, timeout=2.0, poll=0.1, max_poll=0.25)
    assert pauses[:4] == pytest.approx([0.1, 0.15, 0.225, 0.25])


def test_a_failing_probe_ends_the_wait(pauses: list[float]) -> None:
    def probe() -> bool:
        raise RuntimeError("the process died")

    with pytest.raises(RuntimeError, match="died"):
        wait_until(probe, timeout=10)
    assert pauses == []
