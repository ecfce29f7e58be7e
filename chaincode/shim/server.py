"""The chaincode-as-a-service gRPC server: the peer dials ``protos.Chaincode/Connect`` here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
from fabric_protos.peer import chaincode_shim_pb2_grpc

from swarmfuse.chaincode.shim.config import ServerConfig
from swarmfuse.chaincode.shim.session import ChaincodeMessage, PeerSession
from swarmfuse.chaincode.shim.transaction import TransactionRunner
from swarmfuse.chaincode.stub import Chaincode

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 100 * 1024 * 1024  # the peer's own default limit
MAX_PEER_STREAMS = 16  # one stream per peer; a few peers share one chaincode server

SERVER_OPTIONS: list[tuple[str, int]] = [
    # Our own keepalive pings, so a vanished peer is noticed.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    # Accept the peer's pings, also on an idle connection, and never punish them with GOAWAY.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # gRPC sets SO_REUSEPORT by default: a second server could then bind the same port and share its connections.
    ("grpc.so_reuseport", 0),
]


class _ChaincodeServicer(chaincode_shim_pb2_grpc.ChaincodeServicer):
    def __init__(self, chaincode: Chaincode, config: ServerConfig) -> None:
        self._runner = TransactionRunner(chaincode)
        self._config = config
        self._lock = threading.Lock()
        self._sessions: set[PeerSession] = set()
        self._stopping = False

    def drain(self) -> None:
        """Let every open stream finish its running transactions and end; refuse new streams."""
        with self._lock:
            self._stopping = True
            sessions = list(self._sessions)
        for session in sessions:
            session.drain()

    def Connect(
        self, request_iterator: Iterator[ChaincodeMessage], context: grpc.ServicerContext
    ) -> Iterator[ChaincodeMessage]:
        logger.info("peer connected from %s", context.peer())
        with self._lock:
            if self._stopping:
                context.abort(grpc.StatusCode.UNAVAILABLE, "the chaincode server is stopping")
            session = PeerSession(self._config.chaincode_id, self._runner, self._config.max_workers)
            self._sessions.add(session)
        context.add_callback(lambda: session.close("the peer disconnected"))
        try:
            yield from session.run(request_iterator)
        finally:
            with self._lock:
                self._sessions.discard(session)


class ChaincodeServer:
    """Serves one chaincode over gRPC, with TLS (and client-certificate checks) when configured."""

    def __init__(self, chaincode: Chaincode, config: ServerConfig) -> None:
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=MAX_PEER_STREAMS, thread_name_prefix="cc-grpc"),
            options=SERVER_OPTIONS,
            maximum_concurrent_rpcs=MAX_PEER_STREAMS,
        )
        self._servicer = _ChaincodeServicer(chaincode, config)
        chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(self._servicer, self._server)
        self.port = self._bind(config)
        self._config = config

    def _bind(self, config: ServerConfig) -> int:
        try:
            if config.tls is None:
                port = self._server.add_insecure_port(config.address)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(config.tls.key_pem, config.tls.cert_pem)],
                    root_certificates=config.tls.client_ca_pem,
                    require_client_auth=config.tls.client_ca_pem is not None,
                )
                port = self._server.add_secure_port(config.address, credentials)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {config.address}: {exc}") from exc
        if port == 0:
            raise OSError(f"cannot listen on {config.address}")
        return port

    def start(self) -> None:
        self._server.start()
        mode = (
            "plaintext"
            if self._config.tls is None
            else "TLS" + (" + client certs" if self._config.tls.client_ca_pem else "")
        )
        logger.info(
            "chaincode %s serving on %s (port %d, %s)", self._config.chaincode_id, self._config.address, self.port, mode
        )

    def stop(self, grace: float | None = 5.0) -> None:
        """Refuse new work, give running transactions ``grace`` seconds to finish, then end all streams."""
        self.drain()
        self._server.stop(grace).wait()
        logger.info("chaincode server stopped")

    def drain(self) -> None:
        """Refuse new transactions and streams; each stream ends once its running transactions are done."""
        self._servicer.drain()

    def wait(self) -> None:
        self._server.wait_for_termination()
