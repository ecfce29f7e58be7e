"""The embedded engine's Deliver request checks, as Fabric's peer does them (``common/deliver``): the TLS
binding (only on an endpoint that requires client certificates, each request must claim the SHA-256 of its
connection's client certificate, else BAD_REQUEST; without mutual TLS the claimed hash is not looked at) and
the time window (a request without a timestamp, or stamped more than 15 minutes from the peer's clock either
way, is a BAD_REQUEST, so a recorded request cannot be replayed later)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from fabric_protos.common import common_pb2
from tls_pki import Pki, seek_request, serve

from swarmfuse.client.gateway import DeliverError, EventsError, Gateway, Timeouts, TlsClientCert
from swarmfuse.network.embedded.deliver import DeliverService, _Refused, check_timestamp, check_tls_binding
from swarmfuse.network.embedded.rpc import StreamSlots


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.new()


def _outcome(gateway: Gateway, request: bytes | None = None) -> str:
    """The status that ends a block stream on channel ``ch`` (no channel is joined: NOT_FOUND once admitted)."""
    network = gateway.network("ch")
    events = network.load_block_events_request(request).events() if request else network.block_events(start_block=0)
    with events, pytest.raises(DeliverError) as ended:
        next(iter(events))
    return str(ended.value).rsplit(": ", 1)[1]


def _gateway(pki: Pki, port: int, tls_client: TlsClientCert | None) -> Gateway:
    identity, signer, _ = pki.identity()
    return Gateway.connect(f"127.0.0.1:{port}", pki.ca_pem, identity, signer, Timeouts(connect=2.0), tls_client=tls_client)


def test_mutual_tls_endpoint_checks_the_claimed_certificate_hash(pki: Pki) -> None:
    server, port = serve(pki, DeliverService({}, "DC1MSP", StreamSlots(8, "Deliver"), mutual_tls=True), require_client_auth=True)
    tls_client = pki.client()
    identity, signer, _ = pki.identity()
    try:
        with _gateway(pki, port, tls_client) as gateway:
            assert _outcome(gateway) == "NOT_FOUND"  # the client's own hash: admitted, then the channel is unknown
            assert _outcome(gateway, seek_request(identity, signer, "ch", tls_client.cert_hash)) == "NOT_FOUND"
            other = pki.client("someone-else").cert_hash
            assert _outcome(gateway, seek_request(identity, signer, "ch", other)) == "BAD_REQUEST"
            assert _outcome(gateway, seek_request(identity, signer, "ch", b"")) == "BAD_REQUEST"
    finally:
        server.stop(0)


def test_without_mutual_tls_the_claimed_hash_is_not_checked(pki: Pki) -> None:
    server, port = serve(pki, DeliverService({}, "DC1MSP", StreamSlots(8, "Deliver")), require_client_auth=False)
    identity, signer, _ = pki.identity()
    try:
        with _gateway(pki, port, pki.client()) as gateway:
            assert _outcome(gateway) == "NOT_FOUND"
            assert _outcome(gateway, seek_request(identity, signer, "ch", b"\x07" * 32)) == "NOT_FOUND"
            assert _outcome(gateway, seek_request(identity, signer, "ch", b"")) == "NOT_FOUND"
    finally:
        server.stop(0)


@pytest.mark.parametrize(("claimed", "actual", "reason"), [
    (b"", b"", "client didn't include its TLS cert hash"),
    (b"", b"a" * 32, "client didn't include its TLS cert hash"),
    (b"a" * 32, b"", "client didn't send a TLS certificate"),
    (b"a" * 32, b"b" * 32, f"claimed TLS cert hash is {(b'a' * 32).hex()} but actual TLS cert hash is {(b'b' * 32).hex()}"),
])
def test_binding_failures_are_bad_requests_with_fabrics_reasons(claimed: bytes, actual: bytes, reason: str) -> None:
    with pytest.raises(_Refused) as refused:
        check_tls_binding(claimed, actual)
    assert refused.value.status == 400 and str(refused.value) == reason
    check_tls_binding(b"c" * 32, b"c" * 32)


def test_a_deliver_request_outside_the_time_window_is_a_bad_request(pki: Pki) -> None:
    server, port = serve(pki, DeliverService({}, "DC1MSP", StreamSlots(8, "Deliver")), require_client_auth=False)
    identity, signer, _ = pki.identity()
    now = datetime.now(UTC)
    try:
        with _gateway(pki, port, None) as gateway:
            for stamped in (now - timedelta(minutes=16), now + timedelta(minutes=16), "unstamped"):
                assert _outcome(gateway, seek_request(identity, signer, "ch", b"", stamped=stamped)) == "BAD_REQUEST"
            for stamped in (now - timedelta(minutes=14), now + timedelta(minutes=14)):  # admitted: unknown channel
                assert _outcome(gateway, seek_request(identity, signer, "ch", b"", stamped=stamped)) == "NOT_FOUND"
    finally:
        server.stop(0)


def test_the_window_is_fifteen_minutes_either_way() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    header = common_pb2.ChannelHeader()
    for offset in (timedelta(minutes=15), -timedelta(minutes=15), timedelta(0)):
        header.timestamp.FromDatetime(now + offset)
        check_timestamp(header, now)
    for offset in (timedelta(minutes=15, seconds=1), -timedelta(minutes=15, seconds=1)):
        header.timestamp.FromDatetime(now + offset)
        with pytest.raises(_Refused, match="apart from current server time") as refused:
            check_timestamp(header, now)
        assert refused.value.status == common_pb2.BAD_REQUEST
    with pytest.raises(_Refused, match="must contain timestamp"):
        check_timestamp(common_pb2.ChannelHeader(), now)


def test_open_streams_are_bounded_so_unary_calls_keep_their_threads(pki: Pki) -> None:
    """With every stream slot taken (here by the test, as by long-lived Deliver, ChaincodeEvents and CommitStatus
    calls), one more Deliver call is refused at once with RESOURCE_EXHAUSTED; with a slot free it is served."""
    slots = StreamSlots(2, "Deliver and ChaincodeEvents")
    server, port = serve(pki, DeliverService({}, "DC1MSP", slots), require_client_auth=False)
    try:
        with _gateway(pki, port, None) as gateway:
            slots.take()
            slots.take()
            events = gateway.network("ch").block_events(start_block=0)
            with events, pytest.raises(EventsError, match="at most 2 open") as refused:
                next(iter(events))
            assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            slots.release()
            assert _outcome(gateway) == "NOT_FOUND"  # admitted; the unknown channel ends it (and frees the slot)
            assert _outcome(gateway) == "NOT_FOUND"
    finally:
        server.stop(0)
    with pytest.raises(ValueError, match="at least 1"):
        StreamSlots(0, "Deliver")
