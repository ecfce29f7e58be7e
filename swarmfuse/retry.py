"""Retrying an operation that failed in a way that may pass: the one retry policy of every layer (on tenacity).

A retry repeats an operation that is safe to repeat (an evaluate, a connect, an endorsement refused before
ordering, an idempotent lifecycle step, a transfer made anew) on the failures its caller names, with exponential
back-off, bounded by a number of attempts, a time budget, or both; once the bound is reached the last failure is
raised unchanged. Waiting for a condition to hold (a process to answer, a block to arrive) is not a retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
)

T = TypeVar("T")
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
"""The failures worth another attempt: exception classes, or a predicate on the exception."""

_log = logging.getLogger(__name__)


def policy(retry_on: RetryOn, *, attempts: int | None = None, within: float | None = None, first_wait: float = 0.1,
           max_wait: float = 2.0, log_level: int = logging.DEBUG) -> Retrying:
    """The retry policy, for callers that run each attempt themselves (``for attempt in policy(...): with attempt:``).

    ``attempts`` bounds the calls; ``within`` the seconds: no attempt starts after the budget, nor a back-off
    that would end past it (the first attempt always runs). The waits double from ``first_wait`` up to
    ``max_wait``; each is logged at ``log_level`` before it starts."""
    if attempts is None and within is None:
        raise ValueError("a retry needs a bound: attempts, within, or both")
    if attempts is not None and attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    stops = [stop_after_attempt(attempts)] if attempts is not None else []
    if within is not None:
        stops.append(stop_before_delay(max(within, 0.0)))
    stop = stops[0] if len(stops) == 1 else stops[0] | stops[1]
    is_type = isinstance(retry_on, tuple | type)
    return Retrying(
        retry=retry_if_exception_type(retry_on) if is_type else retry_if_exception(retry_on),
        stop=stop,
        wait=wait_exponential(multiplier=first_wait, max=max_wait),
        before_sleep=before_sleep_log(_log, log_level),
        reraise=True,
    )


def retrying(call: Callable[[], T], retry_on: RetryOn, *, attempts: int | None = None, within: float | None = None,
             first_wait: float = 0.1, max_wait: float = 2.0, log_level: int = logging.DEBUG) -> T:
    """``call()``, repeated under :func:`policy` while it fails with ``retry_on``; its result, or its last failure."""
    return policy(retry_on, attempts=attempts, within=within, first_wait=first_wait, max_wait=max_wait,
                  log_level=log_level)(call)
