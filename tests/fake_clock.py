"""A fake clock for code that sleeps and reads ``time.monotonic``: sleeps are recorded, not slept, and each one
moves the clock on by its length."""

from __future__ import annotations

import time

import pytest


def recorded_sleeps(monkeypatch: pytest.MonkeyPatch, start: float = 1000.0) -> list[float]:
    """Patch ``time.sleep`` and ``time.monotonic`` for the test; the list the sleeps are recorded in."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(time, "monotonic", lambda: start + sum(slept))
    return slept
