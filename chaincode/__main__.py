"""``python -m swarmfuse.chaincode``: serve the swarmfuse chaincode to Fabric peers (CCaaS).

Configured by ``CHAINCODE_ID``, ``CHAINCODE_SERVER_ADDRESS``, ``CHAINCODE_TLS_CERT_FILE`` +
``CHAINCODE_TLS_KEY_FILE``, ``CHAINCODE_CLIENT_CA_CERT_FILE`` and ``CHAINCODE_TLS_DISABLED``;
``CHAINCODE_MAX_CLOCK_SKEW_S`` (default 300) is how far, in seconds, a proposal's timestamp may be
from this server's clock before the transaction is refused with ``ClockSkew``;
``CHAINCODE_LOG_LEVEL`` (default INFO) sets the log level; ``CHAINCODE_APP`` names another contract
application module to serve (one with a ``create_chaincode()``; tests use it for their sample contract).
Logs go to stderr.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping

from swarmfuse.chaincode.contract import ContractRouter
from swarmfuse.chaincode.contract.clock import ClockConfigError, max_skew_from_env
from swarmfuse.chaincode.shim import ChaincodeServer, ServerConfig
from swarmfuse.chaincode.shim.config import ConfigError
from swarmfuse.chaincode.stub import Chaincode
from swarmfuse.errors import SwarmfuseError

logger = logging.getLogger("swarmfuse.chaincode")

APP_MODULE = "swarmfuse.chaincode.app"  # the production contracts


class AppMissingError(SwarmfuseError, RuntimeError):
    """The contract application cannot be loaded."""


def load_chaincode(env: Mapping[str, str] | None = None) -> Chaincode:
    """Import the contract application lazily and build the chaincode object it serves.

    The application is ``CHAINCODE_APP`` in ``env`` (default: this process's environment), else the
    production contracts; a contract router gets its allowed clock skew from ``CHAINCODE_MAX_CLOCK_SKEW_S``.
    """
    env = os.environ if env is None else env
    module = env.get("CHAINCODE_APP") or APP_MODULE
    try:
        app = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise AppMissingError(f"{module} is missing: the contract application is not installed") from exc
    factory = getattr(app, "create_chaincode", None)
    if not callable(factory):
        raise AppMissingError(f"{module} has no create_chaincode() function")
    chaincode = factory()
    if isinstance(chaincode, ContractRouter):
        chaincode.max_clock_skew = max_skew_from_env(env)
    return chaincode


def main() -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("CHAINCODE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = ServerConfig.from_env(os.environ)
        server = ChaincodeServer(load_chaincode(os.environ), config)
    except (ConfigError, ClockConfigError, AppMissingError, OSError) as exc:
        logger.error("cannot start the chaincode server: %s", exc)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: stop.set())
    server.start()
    stop.wait()
    logger.info("shutting down")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
