"""Errors the network layer raises; each names the problem so the CLI can print it as one line."""

from __future__ import annotations


class NetworkError(RuntimeError):
    """A user-facing failure of a network or task operation."""


class FabricUnavailable(NetworkError):
    """The Fabric binaries or default configs are not where swarmfuse looks for them."""


class InvalidInput(NetworkError):
    """A command argument is out of range or malformed."""


class PortInUse(NetworkError):
    """A port the network needs is taken by another process."""


class NotRunning(NetworkError):
    """The operation needs a network that is not running under this home."""


class CommandFailed(NetworkError):
    """A Fabric command exited non-zero; carries its output."""
