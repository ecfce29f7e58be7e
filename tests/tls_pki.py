"""A throw-away TLS PKI (one CA, a 127.0.0.1 server pair, client pairs) and in-process gRPC servers that
record what the Gateway client sends: for unit tests of TLS, Deliver and event requests."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.gateway.gateway_pb2_grpc import GatewayServicer, add_GatewayServicer_to_server
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_event_pb2, events_pb2
from fabric_protos.peer.events_pb2_grpc import DeliverServicer, add_DeliverServicer_to_server

from swarmfuse.client.gateway import ECDSASigner, Identity, TlsClientCert
from swarmfuse.client.gateway.proposal import new_header
from swarmfuse.network.protocol.identity import digest


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass
class Pki:
    """One TLS CA with a server pair for 127.0.0.1/localhost; ``client()`` issues client pairs."""

    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    server: tuple[bytes, bytes] = field(init=False)  # (key PEM, cert PEM)

    def __post_init__(self) -> None:
        cert, key = self._issue("server", server=True)
        self.server = (key_pem(key), pem(cert))

    @classmethod
    def new(cls, name: str = "tlsca.unit") -> Pki:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def ca_pem(self) -> bytes:
        return pem(self.ca_cert)

    def _issue(self, common_name: str, server: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(self.ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.ca_key, hashes.SHA256()), key

    def client(self, common_name: str = "client") -> TlsClientCert:
        cert, key = self._issue(common_name, server=False)
        return TlsClientCert(pem(cert), key_pem(key))

    def identity(self) -> tuple[Identity, ECDSASigner, ec.EllipticCurvePrivateKey]:
        """A signing identity (its certificate need not chain anywhere for these unit servers)."""
        cert, key = self._issue("User1@unit", server=False)
        return Identity("UnitMSP", pem(cert)), ECDSASigner(key), key


class Recorder(DeliverServicer, GatewayServicer):
    """Deliver: records each envelope and the connection's client certificate, answers ``blocks`` (default one
    block numbered 0) then SUCCESS. ChaincodeEvents: records the signed request, answers one response."""

    def __init__(self) -> None:
        self.envelopes: list[common_pb2.Envelope] = []
        self.client_certs: list[bytes | None] = []
        self.events_requests: list[gw.SignedChaincodeEventsRequest] = []
        self.blocks = [common_pb2.Block(header=common_pb2.BlockHeader(number=0))]

    def Deliver(self, request_iterator: Iterator[common_pb2.Envelope], context: grpc.ServicerContext
                ) -> Iterator[events_pb2.DeliverResponse]:
        for envelope in request_iterator:
            self.envelopes.append(envelope)
            self.client_certs.append((context.auth_context().get("x509_pem_cert") or [None])[0])
            for block in self.blocks:
                yield events_pb2.DeliverResponse(block=block)
            yield events_pb2.DeliverResponse(status=common_pb2.SUCCESS)
            return

    def DeliverFiltered(self, request_iterator: Iterator[common_pb2.Envelope], context: grpc.ServicerContext
                        ) -> Iterator[events_pb2.DeliverResponse]:
        for response in self.Deliver(request_iterator, context):
            if response.WhichOneof("Type") == "block":
                yield events_pb2.DeliverResponse(filtered_block=events_pb2.FilteredBlock(number=response.block.header.number))
            else:
                yield response

    def ChaincodeEvents(self, request: gw.SignedChaincodeEventsRequest, context: grpc.ServicerContext
                        ) -> Iterator[gw.ChaincodeEventsResponse]:
        self.events_requests.append(request)
        event = chaincode_event_pb2.ChaincodeEvent(chaincode_id="swarmfuse", tx_id="tx-9", event_name="Put")
        yield gw.ChaincodeEventsResponse(block_number=9, events=[event])

    def envelope_parts(self, index: int = -1) -> tuple[common_pb2.ChannelHeader, common_pb2.SignatureHeader, bytes]:
        """Channel header, signature header and data of a recorded envelope."""
        payload = common_pb2.Payload.FromString(self.envelopes[index].payload)
        return (common_pb2.ChannelHeader.FromString(payload.header.channel_header),
                common_pb2.SignatureHeader.FromString(payload.header.signature_header), payload.data)


def serve(pki: Pki, servicer: object, require_client_auth: bool, deliver: bool = True, gateway: bool = False
          ) -> tuple[grpc.Server, int]:
    """An in-process TLS server on a free 127.0.0.1 port (client certificates from ``pki`` when required)."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
    if deliver:
        add_DeliverServicer_to_server(servicer, server)  # type: ignore[arg-type]
    if gateway:
        add_GatewayServicer_to_server(servicer, server)  # type: ignore[arg-type]
    credentials = grpc.ssl_server_credentials(
        [pki.server], root_certificates=pki.ca_pem if require_client_auth else None,
        require_client_auth=require_client_auth,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, port


def seek_request(identity: Identity, signer: ECDSASigner, channel: str, tls_cert_hash: bytes, start: int = 0,
                 stamped: dt.datetime | Literal["unstamped"] | None = None) -> bytes:
    """A signed Deliver envelope from block ``start`` on, claiming ``tls_cert_hash`` (for crafted requests),
    stamped now, at ``stamped``, or with no timestamp at all (``"unstamped"``)."""
    _, header = new_header(common_pb2.DELIVER_SEEK_INFO, channel, identity.serialize(), tls_cert_hash=tls_cert_hash)
    if stamped is not None:
        parsed = common_pb2.Header.FromString(header)
        channel_header = common_pb2.ChannelHeader.FromString(parsed.channel_header)
        if stamped == "unstamped":
            channel_header.ClearField("timestamp")
        else:
            channel_header.timestamp.FromDatetime(stamped)
        parsed.channel_header = channel_header.SerializeToString()
        header = parsed.SerializeToString()
    seek = ab_pb2.SeekInfo(start=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start)),
                           stop=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=2**64 - 1)))
    payload = common_pb2.Payload(header=common_pb2.Header.FromString(header), data=seek.SerializeToString())
    envelope = common_pb2.Envelope(payload=payload.SerializeToString())
    envelope.signature = signer.sign(digest(envelope.payload))
    return envelope.SerializeToString()
