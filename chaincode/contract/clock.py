"""Which time a transaction may trust: the proposal's timestamp, checked against the endorser's clock.

The proposal timestamp is chosen by the client, so nothing may trust it unchecked. Every endorser
refuses a proposal whose timestamp is further than ``max_skew`` from its own clock (the clock of the
process running the chaincode); once accepted, the timestamp is the transaction time every rule
uses, because it is the same on every endorser. The endorser's clock never enters a value that is
written or returned (endorsers would disagree); it only refuses: the skew check, and the
"deadline passed" gates, which also need the endorser's own clock past the deadline.

The endorser's clock is :func:`system_clock` unless something (the in-memory ledger in tests) runs
the chaincode inside :func:`endorser_clock`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from swarmfuse.chaincode.contract.errors import ClockSkew
from swarmfuse.errors import SwarmfuseError

DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)
SKEW_ENV = "CHAINCODE_MAX_CLOCK_SKEW_S"
"""Environment variable of the chaincode server: the allowed skew in seconds (default 300)."""

Clock = Callable[[], datetime]


class ClockConfigError(SwarmfuseError, ValueError):
    """The configured skew is not a usable number of seconds."""


def system_clock() -> datetime:
    """This process's clock, in UTC."""
    return datetime.now(UTC)


_clock: ContextVar[Clock] = ContextVar("swarmfuse_endorser_clock", default=system_clock)


def endorser_now() -> datetime:
    """The endorser's own time (the chaincode process's clock), in UTC."""
    moment = _clock.get()()
    if moment.tzinfo is None:
        raise ValueError("the endorser clock returned a naive datetime")
    return moment.astimezone(UTC)


@contextmanager
def endorser_clock(clock: Clock) -> Iterator[None]:
    """Run the enclosed transactions with ``clock`` as the endorser's clock (tests, simulations)."""
    token = _clock.set(clock)
    try:
        yield
    finally:
        _clock.reset(token)


def max_skew_from_env(env: Mapping[str, str] | None = None) -> timedelta:
    """``CHAINCODE_MAX_CLOCK_SKEW_S`` as a duration (default 5 minutes); at most one day."""
    raw = (os.environ if env is None else env).get(SKEW_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_CLOCK_SKEW
    try:
        seconds = float(raw)
    except ValueError as exc:
        raise ClockConfigError(f"{SKEW_ENV}={raw!r} is not a number of seconds") from exc
    if not 0 < seconds <= 86_400:
        raise ClockConfigError(f"{SKEW_ENV}={raw!r} must be above 0 and at most 86400 seconds")
    return timedelta(seconds=seconds)


def check_skew(proposal_time: datetime, endorser_time: datetime, max_skew: timedelta) -> None:
    """Refuse with :class:`ClockSkew` when the proposal's time is further than ``max_skew`` from ours."""
    if proposal_time.tzinfo is None:
        raise ClockSkew("the proposal timestamp has no time zone")
    drift = proposal_time - endorser_time
    if abs(drift) > max_skew:
        direction = "ahead of" if drift > timedelta(0) else "behind"
        raise ClockSkew(
            f"proposal timestamp {proposal_time.astimezone(UTC).isoformat()} is "
            f"{abs(drift).total_seconds():.3f} s {direction} this endorser's clock "
            f"{endorser_time.isoformat()}; at most {max_skew.total_seconds():g} s is accepted"
        )
