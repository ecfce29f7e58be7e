"""The engine's two HTTP endpoints, as a Fabric orderer has them:

- operations (plain HTTP, loopback): ``GET /healthz`` → 200 once every org endpoint serves;
- channel participation (HTTPS with a required client certificate from the orderer org's TLS CA, as
  ``osnadmin`` uses): ``GET /participation/v1/channels`` lists the channels; ``POST`` with JSON
  ``{"config_block": <base64 genesis block>, "chaincode": {name, version, sequence, endorsement_policy}}``
  joins a new channel; ``POST .../channels/<name>/chaincode`` (empty JSON object) commits the next definition of
  the channel's chaincode whose policy is a majority of the channel's member orgs (``swarmfuse task define``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import ssl
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fabric_protos.common import common_pb2

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.model import ChaincodeDefinition

logger = logging.getLogger(__name__)

CHANNELS_PATH = "/participation/v1/channels"
MAX_BODY = 64 * 1024 * 1024


class JoinRefused(SwarmfuseError, ValueError):
    """The channel cannot be joined (exists already, malformed block or definition)."""


JoinChannel = Callable[[common_pb2.Block, ChaincodeDefinition], str]
ListChannels = Callable[[], list[dict[str, object]]]
RedefineChaincode = Callable[[str], dict[str, object]]
CHAINCODE_SUFFIX = "/chaincode"


def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, object]) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def parse_join(body: bytes) -> tuple[common_pb2.Block, ChaincodeDefinition]:
    """The genesis block and chaincode definition of a join request, or :class:`JoinRefused` saying what is wrong."""
    try:
        document = json.loads(body)
        block = common_pb2.Block.FromString(base64.b64decode(document["config_block"], validate=True))
        spec = document["chaincode"]
        chaincode = ChaincodeDefinition(
            name=str(spec["name"]), version=str(spec["version"]), sequence=int(spec["sequence"]),
            endorsement_policy=str(spec["endorsement_policy"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise JoinRefused(f"malformed join request: {exc!r}") from exc
    except Exception as exc:  # protobuf DecodeError
        raise JoinRefused(f"config_block is not a Block: {exc}") from exc
    return block, chaincode


class _ParticipationHandler(BaseHTTPRequestHandler):
    join: JoinChannel
    listing: ListChannels
    redefine: RedefineChaincode

    def log_message(self, format: str, *args: object) -> None:
        logger.info("admin %s", format % args)

    def do_GET(self) -> None:
        if self.path.rstrip("/") != CHANNELS_PATH:
            _reply(self, HTTPStatus.NOT_FOUND, {"error": f"no such resource {self.path}"})
            return
        _reply(self, HTTPStatus.OK, {"channels": self.listing()})

    def do_POST(self) -> None:
        path = self.path.rstrip("/")
        if path.startswith(CHANNELS_PATH + "/") and path.endswith(CHAINCODE_SUFFIX):
            self._redefine(path[len(CHANNELS_PATH) + 1: -len(CHAINCODE_SUFFIX)])
            return
        if path != CHANNELS_PATH:
            _reply(self, HTTPStatus.NOT_FOUND, {"error": f"no such resource {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            _reply(self, HTTPStatus.BAD_REQUEST, {"error": f"request body of {length} bytes"})
            return
        try:
            block, chaincode = parse_join(self.rfile.read(length))
            name = self.join(block, chaincode)
        except JoinRefused as exc:
            _reply(self, HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        except Exception as exc:  # reported to the operator, not swallowed into a dropped connection
            logger.exception("joining a channel failed")
            _reply(self, HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})
            return
        _reply(self, HTTPStatus.CREATED, {"name": name})


    def _redefine(self, channel: str) -> None:
        try:
            defined = self.redefine(channel)
        except JoinRefused as exc:
            _reply(self, HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        except Exception as exc:
            logger.exception("defining the chaincode of %s failed", channel)
            _reply(self, HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})
            return
        _reply(self, HTTPStatus.OK, defined)


class _HealthHandler(BaseHTTPRequestHandler):
    healthy: Callable[[], bool]

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("operations %s", format % args)

    def do_GET(self) -> None:
        if self.path != "/healthz":
            _reply(self, HTTPStatus.NOT_FOUND, {"error": f"no such resource {self.path}"})
        elif self.healthy():
            _reply(self, HTTPStatus.OK, {"status": "OK"})
        else:
            _reply(self, HTTPStatus.SERVICE_UNAVAILABLE, {"status": "starting"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # SO_REUSEADDR: rebinding over TIME_WAIT; never a second listener on the port
    allow_reuse_port = False  # no SO_REUSEPORT: a port is never shared


def _serve(server: ThreadingHTTPServer, name: str) -> ThreadingHTTPServer:
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


def start_operations(address: tuple[str, int], healthy: Callable[[], bool]) -> ThreadingHTTPServer:
    handler = type("Health", (_HealthHandler,), {"healthy": staticmethod(healthy)})
    return _serve(_Server(address, handler), "operations")


def start_participation(address: tuple[str, int], cert: Path, key: Path, client_ca: Path,
                        join: JoinChannel, listing: ListChannels, redefine: RedefineChaincode) -> ThreadingHTTPServer:
    handler = type("Participation", (_ParticipationHandler,), {"join": staticmethod(join), "listing": staticmethod(listing),
                                                               "redefine": staticmethod(redefine)})
    server = _Server(address, handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return _serve(server, "participation")
