"""Waiting for a condition to hold (a process to answer, a block to arrive, a lock to come free): the one poll loop.

Not a retry (:mod:`swarmfuse.retry`): nothing failed, the caller looks again until the answer changes or its time is
up, and says itself what not seeing it in time means.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float, poll: float = 0.1, max_poll: float | None = None) -> T:
    """Call ``probe`` until it returns a true value, and return that value; after ``timeout`` seconds, return its
    last (false) answer, from a call made at or after the deadline. The pause between calls starts at ``poll`` and
    grows by half each time up to ``max_poll`` (default: stays at ``poll``); a pause never passes the deadline.
    An exception from ``probe`` ends the wait."""
    deadline = time.monotonic() + timeout
    pause = poll
    while True:
        answer = probe()
        left = deadline - time.monotonic()
        if answer or left <= 0:
            return answer
        time.sleep(min(pause, left))
        pause = min(pause * 1.5, max_poll if max_poll is not None else poll)
