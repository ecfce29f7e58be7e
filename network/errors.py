"""Errors the network layer raises; each names the problem so the CLI can print it as one line."""

from __future__ import annotations

from swarmfuse.errors import SwarmfuseError


class NetworkError(SwarmfuseError, RuntimeError):
    """A user-facing failure of a network or task operation."""


class FabricUnavailable(NetworkError):
    """The Fabric binaries or default configs are not where swarmfuse looks for them."""


class InvalidInput(NetworkError):
    """A command argument is out of range or malformed."""


class PortInUse(NetworkError):
    """A port the network needs is taken by another process."""


class AddressUnavailable(NetworkError):
    """The address the network should listen on is none of this host's."""


class NotRunning(NetworkError):
    """The operation needs a network that is not running under this home."""


class CommandFailed(NetworkError):
    """A Fabric command exited non-zero; carries its output."""


class StopFailed(NetworkError):
    """Some processes could not be stopped; names each with the reason (the others were stopped)."""

    def __init__(self, stopped: list[str], failed: dict[str, str]) -> None:
        self.stopped = stopped
        self.failed = failed
        reasons = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
        super().__init__(f"could not stop {', '.join(failed)} ({reasons})")


class LockTimeout(NetworkError):
    """Another command held the home's lock for longer than the lock timeout."""
