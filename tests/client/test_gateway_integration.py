"""The gateway client against the session's real network of each engine (task channel with DC1..DC3; DC4 outside)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2

from swarmfuse.client.gateway import (
    ConnectError,
    ECDSASigner,
    EndorseError,
    EvaluateError,
    EventsError,
    FileCheckpointer,
    Gateway,
    Identity,
    InMemoryCheckpointer,
    MVCCReadConflictError,
    Position,
    Timeouts,
    load_profile,
)
from swarmfuse.client.gateway.commit import raise_unless_valid

pytestmark = pytest.mark.integration
CHAINCODE = "swarmfuse"
LISTENER = Path(__file__).with_name("gw_listener.py")


def _profile(ledger_network, org: str) -> Path:  # type: ignore[no-untyped-def]
    return Path(ledger_network.home) / "orgs" / org / "connection.json"


@pytest.fixture
def dc1(ledger_network):  # type: ignore[no-untyped-def]
    with Gateway.from_profile(_profile(ledger_network, "DC1")) as gateway:
        yield gateway


def _tx_ids(block: common_pb2.Block) -> list[str]:
    ids = []
    for data in block.data.data:
        payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(data).payload)
        ids.append(common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id)
    return ids


def test_submit_then_evaluate_round_trip(ledger_network, dc1: Gateway) -> None:  # type: ignore[no-untyped-def]
    contract = dc1.network(ledger_network.task).contract(CHAINCODE, "Sample")
    contract.submit_transaction("Put", "gw-round", "trip ✓")
    assert contract.evaluate_transaction("Get", "gw-round").decode() == "trip ✓"
    assert ledger_network.query("DC2", "Sample:Get", "gw-round") == "trip ✓"


def test_computed_txid_is_the_committed_one_and_resubmit_sends_same_envelope(ledger_network, dc1: Gateway) -> None:  # type: ignore[no-untyped-def]
    network = dc1.network(ledger_network.task)
    proposal = network.contract(CHAINCODE).new_proposal("Sample:Put", "gw-txid", "v1")
    transaction = proposal.endorse()
    kept = transaction.to_bytes()
    status = transaction.submit().status()
    assert status.successful and status.transaction_id == proposal.transaction_id
    with network.block_events(start_block=status.block_number) as blocks:
        block = next(iter(blocks))
    assert block.header.number == status.block_number
    assert proposal.transaction_id in _tx_ids(block)
    # A kept, signed transaction is resent unchanged: same txid, and the ledger keeps the first commit.
    again = network.load_transaction(kept)
    assert again.to_bytes() == kept and again.submit().status() == status


class _OfflineOnly:
    """A signer that must never be asked: everything is signed offline through digests."""

    def sign(self, digest: bytes) -> bytes:
        raise AssertionError("the gateway tried to sign online")


def test_offline_signing_path(ledger_network, dc1: Gateway) -> None:  # type: ignore[no-untyped-def]
    creds = load_profile(_profile(ledger_network, "DC1"))
    with Gateway.connect(creds.peer.endpoint, creds.peer.tls_root_cert, creds.identity, _OfflineOnly(),
                         host_override=creds.peer.host_override, tls_client=creds.tls_client) as gateway:
        network = gateway.network(ledger_network.task)
        unsigned = network.contract(CHAINCODE).new_proposal("Sample:Put", "gw-offline", "signed elsewhere")
        proposal = network.load_proposal(unsigned.to_bytes())  # e.g. shipped to the signing host and back
        proposal.set_signature(creds.signer.sign(proposal.digest()))
        transaction = proposal.endorse()
        transaction.set_signature(creds.signer.sign(transaction.digest()))
        commit = transaction.submit()
        commit.set_signature(creds.signer.sign(commit.digest()))
        assert commit.status().successful and commit.transaction_id == unsigned.transaction_id
    assert dc1.network(ledger_network.task).contract(CHAINCODE).evaluate_transaction(
        "Sample:Get", "gw-offline") == b"signed elsewhere"


def test_chaincode_events_request_signed_offline(ledger_network, dc1: Gateway) -> None:  # type: ignore[no-untyped-def]
    proposal = dc1.network(ledger_network.task).contract(CHAINCODE).new_proposal("Sample:Put", "gw-ev-offline", "v")
    status = proposal.endorse().submit().status()
    creds = load_profile(_profile(ledger_network, "DC1"))
    with Gateway.connect(creds.peer.endpoint, creds.peer.tls_root_cert, creds.identity, _OfflineOnly(),
                         host_override=creds.peer.host_override, tls_client=creds.tls_client) as gateway:
        network = gateway.network(ledger_network.task)
        unsigned = network.new_chaincode_events_request(CHAINCODE, start_block=status.block_number)
        request = network.load_chaincode_events_request(unsigned.to_bytes())  # shipped to the signing host and back
        request.set_signature(creds.signer.sign(request.digest()))
        with request.events() as events:
            event = next(iter(events))
        assert (event.transaction_id, event.block_number) == (proposal.transaction_id, status.block_number)
        forged = network.load_chaincode_events_request(unsigned.to_bytes())
        forged.set_signature(creds.signer.sign(b"\x00" * 32))  # a valid signature, of other bytes
        with forged.events() as events, pytest.raises(EventsError) as refused:
            next(iter(events))
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_block_events_start_at_the_next_commit_by_default(ledger_network, dc1: Gateway) -> None:  # type: ignore[no-untyped-def]
    network = dc1.network(ledger_network.task)
    newest = network.newest_block().header.number
    with network.block_events() as blocks:
        time.sleep(1.0)  # the peer has read the request by now: it starts at the height it then had
        status = network.contract(CHAINCODE).new_proposal("Sample:Put", "gw-next", "v").endorse().submit().status()
        first = next(iter(blocks))
    assert newest < first.header.number <= status.block_number  # not the newest block already committed
    with network.block_events(start_block=newest) as blocks:
        assert next(iter(blocks)).header.number == newest


def test_filtered_blocks_carry_validation_codes(ledger_network, dc1: Gateway) -> None:  # type: ignore[no-untyped-def]
    network = dc1.network(ledger_network.task)
    proposal = network.contract(CHAINCODE).new_proposal("Sample:Put", "gw-filtered", "v")
    status = proposal.endorse().submit().status()
    with network.block_events(start_block=status.block_number, filtered=True) as blocks:
        block = next(iter(blocks))
    codes = {tx.txid: tx.tx_validation_code for tx in block.filtered_transactions}
    assert codes[proposal.transaction_id] == 0


def test_chaincode_errors_reach_the_caller(ledger_network, dc1: Gateway) -> None:  # type: ignore[no-untyped-def]
    contract = dc1.network(ledger_network.task).contract(CHAINCODE, "Sample")
    with pytest.raises(EvaluateError) as missing:
        contract.evaluate_transaction("Get", "gw-never-written")
    assert "NotFound: no value under key 'gw-never-written'" in str(missing.value)
    assert [d.msp_id for d in missing.value.details] == ["DC1MSP"]
    with pytest.raises(EndorseError) as bad:
        contract.submit_transaction("Put", "", "x")
    assert bad.value.tx_id and "BadRequest: key must not be empty" in bad.value.details[0].message


def test_stale_read_is_an_mvcc_conflict(ledger_network, dc1: Gateway) -> None:  # type: ignore[no-untyped-def]
    contract = dc1.network(ledger_network.task).contract(CHAINCODE, "Sample")
    contract.submit_transaction("Put", "gw-mvcc", "v1")
    stale = contract.new_proposal("Get", "gw-mvcc").endorse()  # its read set holds gw-mvcc at v1's version
    contract.submit_transaction("Put", "gw-mvcc", "v2")
    status = stale.submit().status()
    assert status.code_name == "MVCC_READ_CONFLICT" and status.transaction_id == stale.transaction_id
    with pytest.raises(MVCCReadConflictError, match=stale.transaction_id):
        raise_unless_valid(status)


def test_events_resume_after_listener_is_killed(ledger_network, dc1: Gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    contract = dc1.network(ledger_network.task).contract(CHAINCODE)
    first = contract.new_proposal("Sample:Put", "gw-ev-1", "a")
    start = first.endorse().submit().status().block_number
    second = contract.new_proposal("Sample:Put", "gw-ev-2", "b")
    last = second.endorse().submit().status().block_number
    checkpoint, output = tmp_path / "cp.json", tmp_path / "seen.txt"
    args = [sys.executable, str(LISTENER), str(_profile(ledger_network, "DC1")), ledger_network.task, str(start),
            str(checkpoint), str(output)]
    listener = subprocess.Popen(args)
    try:
        # Killed once the second event's block is checkpointed: an event handed to the listener but not yet
        # checkpointed is delivered again after a restart (at least once), which is not what this test is about.
        _wait_for(lambda: output.exists() and len(output.read_text().split()) == 2 and
                  FileCheckpointer(checkpoint).position.block_number is not None and
                  FileCheckpointer(checkpoint).position.block_number > last)
    finally:
        listener.kill()
        listener.wait()
    later = [contract.new_proposal("Sample:Put", f"gw-ev-{i}", "c") for i in (3, 4)]
    for proposal in later:
        proposal.endorse().submit().status()
    restarted = subprocess.Popen(args)
    try:
        _wait_for(lambda: len(output.read_text().split()) >= 4)
        time.sleep(1.0)  # a duplicate would arrive right after
    finally:
        restarted.kill()
        restarted.wait()
    expected = [p.transaction_id for p in (first, second, *later)]
    assert output.read_text().split() == expected


def test_in_process_stream_resumes_after_close(ledger_network, dc1: Gateway) -> None:  # type: ignore[no-untyped-def]
    network = dc1.network(ledger_network.task)
    contract = network.contract(CHAINCODE)
    proposals = [contract.new_proposal("Sample:Put", f"gw-mem-{i}", str(i)) for i in range(3)]
    start = None
    for proposal in proposals:
        status = proposal.endorse().submit().status()
        start = status.block_number if start is None else start
    checkpointer = InMemoryCheckpointer()
    with network.chaincode_events(CHAINCODE, start_block=start, checkpointer=checkpointer) as events:
        got = next(events)
        assert (got.transaction_id, got.event_name, json.loads(got.payload)) == (
            proposals[0].transaction_id, "Put", {"key": "gw-mem-0", "value": "0"})
        next(events)  # asking for the second checkpoints the first
    # Past the first event: after its transaction, or (when it ended its block) at the next block.
    assert checkpointer.position in (Position(got.block_number, got.transaction_id), Position(got.block_number + 1))
    with network.chaincode_events(CHAINCODE, start_block=0, checkpointer=checkpointer) as events:
        assert next(events).transaction_id == proposals[1].transaction_id


def test_identity_of_org_outside_channel_is_refused(ledger_network) -> None:  # type: ignore[no-untyped-def]
    dc1, dc4 = load_profile(_profile(ledger_network, "DC1")), load_profile(_profile(ledger_network, "DC4"))
    with Gateway.connect(dc1.peer.endpoint, dc1.peer.tls_root_cert, dc4.identity, dc4.signer,
                         host_override=dc1.peer.host_override, tls_client=dc4.tls_client) as gateway:
        contract = gateway.network(ledger_network.task).contract(CHAINCODE)
        with pytest.raises(EvaluateError, match="access denied: channel \\[task1\\] creator org unknown"):
            contract.evaluate_transaction("Sample:Get", "gw-round")
        with pytest.raises(EndorseError, match="access denied"):
            contract.submit_transaction("Sample:Put", "gw-dc4", "x")


def test_certificate_from_unknown_ca_is_refused(ledger_network) -> None:  # type: ignore[no-untyped-def]
    dc1 = load_profile(_profile(ledger_network, "DC1"))
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "User1@dc1.example.com")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rogue-ca")]))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    rogue = Identity("DC1MSP", cert.public_bytes(Encoding.PEM))
    with (Gateway.connect(dc1.peer.endpoint, dc1.peer.tls_root_cert, rogue, ECDSASigner(key),
                          host_override=dc1.peer.host_override, tls_client=dc1.tls_client) as gateway,
          pytest.raises(EvaluateError, match="access denied") as refused):
        gateway.network(ledger_network.task).contract(CHAINCODE).evaluate_transaction("Sample:Get", "gw-round")
    assert refused.value.details and refused.value.details[0].msp_id == "DC1MSP"


def test_wrong_tls_root_is_refused(ledger_network) -> None:  # type: ignore[no-untyped-def]
    dc1, dc2 = load_profile(_profile(ledger_network, "DC1")), load_profile(_profile(ledger_network, "DC2"))
    with pytest.raises(ConnectError, match="not signed by the given TLS root"):
        Gateway.connect(dc1.peer.endpoint, dc2.peer.tls_root_cert, dc1.identity, dc1.signer,
                        timeouts=Timeouts(connect=3.0), host_override=dc1.peer.host_override)


def _wait_for(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        time.sleep(0.2)
