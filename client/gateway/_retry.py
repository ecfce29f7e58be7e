"""The gateway's retry policy: only for calls that are safe to repeat (evaluate, connect, resubmitting one signed
envelope), on gRPC failures that may pass when repeated unchanged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import grpc

from swarmfuse import retry

T = TypeVar("T")
TRANSIENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def is_transient(error: BaseException) -> bool:
    """True for gRPC failures that may succeed when repeated unchanged."""
    return isinstance(error, grpc.RpcError) and error.code() in TRANSIENT_CODES


def retrying(call: Callable[[], T], attempts: int = 3,
             transient: Callable[[BaseException], bool] = is_transient) -> T:
    """Run ``call``, repeating it on ``transient`` failures (default UNAVAILABLE / DEADLINE_EXCEEDED) with back-off."""
    return retry.retrying(call, transient, attempts=attempts, first_wait=0.1, max_wait=2.0, log_level=logging.WARNING)
