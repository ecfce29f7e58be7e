"""swarmfuse's Fabric Gateway client: submit/evaluate, commit status, events; identities and signers (from
:mod:`swarmfuse.network.protocol.identity`, the Fabric protocol layer it shares with the engine and the
auditor) are exported here too."""

from swarmfuse.client.gateway.checkpoint import Checkpointer, FileCheckpointer, InMemoryCheckpointer, Position
from swarmfuse.client.gateway.client import Timeouts
from swarmfuse.client.gateway.commit import Commit
from swarmfuse.client.gateway.connection import PeerEndpoint, TlsClientCert, load_profile
from swarmfuse.client.gateway.contract import Contract
from swarmfuse.client.gateway.errors import (
    CommitError,
    CommitStatusError,
    ConnectError,
    DeliverError,
    EndorseError,
    EvaluateError,
    EventsError,
    GatewayError,
    MVCCReadConflictError,
    PeerDetail,
    SubmitError,
)
from swarmfuse.client.gateway.events import (
    BlockEvents,
    BlockEventsRequest,
    ChaincodeEvent,
    ChaincodeEvents,
    ChaincodeEventsRequest,
)
from swarmfuse.client.gateway.gateway import Gateway
from swarmfuse.client.gateway.network import Network
from swarmfuse.client.gateway.proposal import Proposal, ProposalBuilder
from swarmfuse.client.gateway.status import Status
from swarmfuse.client.gateway.transaction import Transaction
from swarmfuse.network.protocol.identity import (
    ECDSASigner,
    Identity,
    IdentityError,
    Signer,
    tls_cert_hash,
    transaction_id,
)

__all__ = [
    "BlockEvents", "BlockEventsRequest", "ChaincodeEvent", "ChaincodeEvents", "ChaincodeEventsRequest", "Checkpointer",
    "Commit", "CommitError", "CommitStatusError", "ConnectError", "Contract", "DeliverError", "ECDSASigner",
    "EndorseError", "EvaluateError", "EventsError", "FileCheckpointer", "Gateway", "GatewayError", "Identity",
    "IdentityError", "InMemoryCheckpointer", "MVCCReadConflictError", "Network", "PeerDetail", "PeerEndpoint",
    "Position", "Proposal", "ProposalBuilder", "Signer", "Status", "SubmitError", "Timeouts", "TlsClientCert",
    "Transaction", "load_profile", "tls_cert_hash", "transaction_id",
]
