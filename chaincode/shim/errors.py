"""Exceptions a contract may see when the peer refuses a ledger call."""

from swarmfuse.errors import SwarmfuseError


class PeerError(SwarmfuseError, RuntimeError):
    """The peer answered a ledger call with ERROR; the message is the peer's own."""

    def __init__(self, request: str, message: str) -> None:
        super().__init__(f"peer rejected {request}: {message}")
        self.request = request
        self.peer_message = message


class PeerStreamClosedError(PeerError):
    """The stream to the peer ended while a transaction was still talking to it."""

    def __init__(self, request: str) -> None:
        super().__init__(request, "the connection to the peer is closed")
