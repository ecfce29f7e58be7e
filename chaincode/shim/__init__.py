"""Our own chaincode shim: serves a :class:`~swarmfuse.chaincode.stub.Chaincode` to Fabric peers
over the chaincode-as-a-service gRPC stream (``protos.Chaincode/Connect``)."""

from swarmfuse.chaincode.shim.config import ServerConfig
from swarmfuse.chaincode.shim.errors import PeerError, PeerStreamClosedError
from swarmfuse.chaincode.shim.server import ChaincodeServer

__all__ = ["ChaincodeServer", "PeerError", "PeerStreamClosedError", "ServerConfig"]
