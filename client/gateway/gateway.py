"""Connection to a Fabric Gateway peer: one TLS gRPC channel shared by every network and contract."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Self

import grpc

from swarmfuse.client.gateway._retry import retrying
from swarmfuse.client.gateway.client import GatewayClient, Timeouts
from swarmfuse.client.gateway.connection import TlsClientCert, load_profile
from swarmfuse.client.gateway.errors import ConnectError
from swarmfuse.client.gateway.network import Network
from swarmfuse.network.protocol.identity import Identity, Signer

_MAX_MESSAGE = 100 * 1024 * 1024


class Gateway:
    """A connected gateway; use as a context manager or call ``close()``."""

    def __init__(self, client: GatewayClient) -> None:
        self._client = client

    @property
    def identity(self) -> Identity:
        return self._client.identity

    @classmethod
    def connect(cls, endpoint: str, tls_root_cert: bytes, identity: Identity, signer: Signer,
                timeouts: Timeouts = Timeouts(), host_override: str | None = None,
                tls_client: TlsClientCert | None = None) -> Gateway:
        """Open the channel and wait until it is ready; ``ConnectError`` says why when it is not.

        With ``tls_client`` the channel presents that certificate when the peer asks for one (mutual TLS),
        and Deliver requests carry its hash (``ChannelHeader.tls_cert_hash``), as Fabric's peers require
        when client authentication is on."""
        options = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ]
        if host_override:
            options.append(("grpc.ssl_target_name_override", host_override))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=tls_root_cert,
            private_key=tls_client.key_pem if tls_client else None,
            certificate_chain=tls_client.cert_pem if tls_client else None,
        )
        cert_hash = tls_client.cert_hash if tls_client else b""
        channel = grpc.secure_channel(endpoint, credentials, options)
        try:
            retrying(lambda: _wait_ready(channel, endpoint, timeouts.connect, tls_client is not None),
                     transient=lambda exc: isinstance(exc, PeerUnreachable))
        except ConnectError:
            channel.close()
            raise
        return cls(GatewayClient(channel, identity, signer, timeouts, tls_cert_hash=cert_hash))

    @classmethod
    def from_profile(cls, profile: Path, user: str = "user", timeouts: Timeouts = Timeouts()) -> Gateway:
        """Connect as ``user`` of the org whose connection profile is ``profile`` (with the identity's client
        TLS pair when the profile has one)."""
        loaded = load_profile(profile, user)
        peer = loaded.peer
        return cls.connect(peer.endpoint, peer.tls_root_cert, loaded.identity, loaded.signer, timeouts,
                           peer.host_override, loaded.tls_client)

    def network(self, channel: str) -> Network:
        return Network(self._client, channel)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PeerUnreachable(ConnectError):
    """Nothing accepts connections at the endpoint (yet): worth retrying."""


def _wait_ready(channel: grpc.Channel, endpoint: str, timeout: float, client_cert: bool = False) -> None:
    """Wait for the TLS channel; on timeout tell an unreachable peer from an untrusted certificate."""
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return
    except grpc.FutureTimeoutError:
        pass
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=min(timeout, 5.0)):
            pass
    except (OSError, ValueError):
        raise PeerUnreachable(f"gateway peer {endpoint} is unreachable (nothing accepts connections there)") from None
    client_side = ("the peer did not accept the client TLS certificate" if client_cert else
                   "the peer requires a client TLS certificate (mutual TLS) and none was given")
    raise ConnectError(
        f"gateway peer {endpoint} accepts TCP connections but no TLS session was established within {timeout}s: "
        f"its certificate is not signed by the given TLS root (or does not match the host name), or {client_side}"
    )
