"""The root of the errors swarmfuse raises on purpose: a caller that wants "any swarmfuse failure, not a bug"
catches :class:`SwarmfuseError`."""

from __future__ import annotations


class SwarmfuseError(Exception):
    """A failure swarmfuse reports with a message meant for its user."""
