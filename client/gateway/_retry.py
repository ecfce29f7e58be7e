"""Retry policy: only for calls that are safe to repeat (evaluate, connect, resubmitting one signed envelope)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import grpc
from tenacity import Retrying, before_sleep_log, retry_if_exception, stop_after_attempt, wait_exponential

T = TypeVar("T")
TRANSIENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_log = logging.getLogger(__name__)


def is_transient(error: BaseException) -> bool:
    """True for gRPC failures that may succeed when repeated unchanged."""
    return isinstance(error, grpc.RpcError) and error.code() in TRANSIENT_CODES


def retrying(call: Callable[[], T], attempts: int = 3,
             transient: Callable[[BaseException], bool] = is_transient) -> T:
    """Run ``call``, repeating it on ``transient`` failures (default UNAVAILABLE / DEADLINE_EXCEEDED) with back-off."""
    policy = Retrying(
        retry=retry_if_exception(transient),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        before_sleep=before_sleep_log(_log, logging.WARNING),
        reraise=True,
    )
    return policy(call)
