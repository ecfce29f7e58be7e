"""Mutual TLS: connection profiles carry each identity's client TLS pair, ``--mutual-tls`` makes every peer (a
Fabric peer, or the embedded engine's org endpoints) require a client certificate, and Deliver then binds
each request to it (the request's ``tls_cert_hash`` must be the connection's certificate hash, else
BAD_REQUEST); without mutual TLS no engine checks the hash. The last tests run on real networks of each
engine."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cli_runner import invoke_cli
from conftest import LedgerNetwork, free_port_base, new_network
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tls_pki import seek_request

from swarmfuse.client.gateway import ConnectError, DeliverError, Gateway, Timeouts, load_profile
from swarmfuse.network import crypto, profiles, tasks
from swarmfuse.network import state as state_file
from swarmfuse.network.binaries import Fabric
from swarmfuse.network.embedded.engine import Engine
from swarmfuse.network.layout import Layout
from swarmfuse.network.nodes import peer_spec
from swarmfuse.network.peercli import PeerCli
from swarmfuse.network.state import NetworkState
from swarmfuse.network.topology import Topology


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Topology, Layout]:
    """Crypto material (made without Fabric, as cryptogen lays it out) and profiles for 2 orgs and the auditor."""
    topology = Topology(n_orgs=2, auditor=True, port_base=free_port_base(), mutual_tls=True)
    layout = Layout(tmp_path_factory.mktemp("mtls") / "home")
    layout.home.mkdir(parents=True)
    crypto.generate(None, topology, layout)
    profiles.write_all(topology, layout, "embedded")
    state_file.save(layout.state_file, NetworkState.for_topology(topology, "embedded"))
    return topology, layout


def test_profiles_give_each_identity_its_own_client_tls_pair(home: tuple[Topology, Layout]) -> None:
    topology, layout = home
    for org in topology.orgs:
        profile = json.loads(layout.profile(org).read_text())
        tls_ca = x509.load_pem_x509_certificate(layout.org_tls_ca(org).read_bytes())
        for user, folder in (("admin", "Admin"), ("user", "User1")):
            pair = profile["identities"][user]["tls_client"]
            assert pair == {"cert": str(layout.user_dir(org, folder) / "tls" / "client.crt"),
                            "key": str(layout.user_dir(org, folder) / "tls" / "client.key")}
            cert = x509.load_pem_x509_certificate(Path(pair["cert"]).read_bytes())
            cert.verify_directly_issued_by(tls_ca)
            assert cert.subject.rfc4514_string().startswith(f"CN={folder}@{org.domain}")
            loaded = load_profile(layout.profile(org), user).tls_client
            assert loaded is not None
            assert loaded.cert_hash == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


def test_mutual_tls_is_recorded_and_configures_fabric_peers_and_the_peer_cli(tmp_path: Path) -> None:
    fabric = Fabric(tmp_path / "fabric")
    layout = Layout(tmp_path / "home")
    for mutual in (False, True):
        topology = Topology(n_orgs=3, port_base=30000, mutual_tls=mutual)
        current = NetworkState.for_topology(topology, "fabric")
        state_file.save(layout.state_file, current)
        loaded = state_file.load(layout.state_file)
        assert loaded is not None and loaded.mutual_tls is mutual and loaded.topology() == topology
        dc2 = topology.orgs[1]
        spec = peer_spec(fabric, topology, layout, dc2)
        cli = PeerCli(fabric, topology, layout).env(dc2, "Admin")
        if mutual:
            assert spec.env["CORE_PEER_TLS_CLIENTAUTHREQUIRED"] == "true"
            assert spec.env["CORE_PEER_TLS_CLIENTROOTCAS_FILES"].split(" ") == [
                str(layout.org_tls_ca(org)) for org in topology.orgs]
            admin_tls = layout.user_dir(dc2, "Admin") / "tls"
            assert (cli["CORE_PEER_TLS_CLIENTAUTHREQUIRED"], cli["CORE_PEER_TLS_CLIENTCERT_FILE"],
                    cli["CORE_PEER_TLS_CLIENTKEY_FILE"]) == ("true", str(admin_tls / "client.crt"),
                                                             str(admin_tls / "client.key"))
            assert spec.probes[0].cert == admin_tls / "client.crt"
        else:
            assert not any("CLIENTAUTH" in key or "CLIENTROOTCAS" in key or "CLIENTCERT" in key
                           for key in (*spec.env, *cli))
            assert spec.probes[0].cert is None
    # A home made before the option existed reads as mutual TLS off.
    document = json.loads(layout.state_file.read_text())
    del document["mutual_tls"]
    layout.state_file.write_text(json.dumps(document))
    assert state_file.load(layout.state_file).mutual_tls is False  # type: ignore[union-attr]


def test_up_will_not_switch_mutual_tls_on_an_existing_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plain = Topology(n_orgs=2, port_base=30000, mutual_tls=False)
    state_file.save(home / "state.json", NetworkState.for_topology(plain, "embedded"))
    result = invoke_cli("network", "up", "--mutual-tls", "--home", str(home))
    assert result.exit_code == 1
    assert "already holds a network with 2 orgs" in result.output and "mutual TLS off" in result.output


def test_engine_org_endpoint_requires_a_client_certificate_and_binds_deliver(home: tuple[Topology, Layout]) -> None:
    topology, layout = home
    engine = Engine(layout.home)
    dc1 = topology.orgs[0]
    server = engine._org_server(dc1)
    endpoint = f"127.0.0.1:{topology.peer_ports(dc1).listen}"
    creds = load_profile(layout.profile(dc1))
    tls_root = layout.org_tls_ca(dc1).read_bytes()
    try:
        with pytest.raises((OSError, RuntimeError), match="127.0.0.1"):
            engine._org_server(dc1)  # no SO_REUSEPORT: a second listener on the org's port fails to bind
        with pytest.raises(ConnectError, match="requires a client TLS certificate"):
            Gateway.connect(endpoint, tls_root, creds.identity, creds.signer, Timeouts(connect=0.5),
                            dc1.peer_host)
        # A certificate of another org's TLS CA is accepted (as by a Fabric peer of the channel); the binding holds.
        dc2 = load_profile(layout.profile(topology.orgs[1]))
        with Gateway.connect(endpoint, tls_root, creds.identity, creds.signer, Timeouts(connect=2.0), dc1.peer_host,
                             dc2.tls_client) as gateway:
            network = gateway.network("none")
            with network.block_events(start_block=0) as blocks, pytest.raises(DeliverError, match="NOT_FOUND"):
                next(iter(blocks))  # the hash is right: admitted, and the channel does not exist
            wrong = seek_request(creds.identity, creds.signer, "none", creds.tls_client.cert_hash)  # type: ignore[union-attr]
            with network.load_block_events_request(wrong).events() as blocks, \
                    pytest.raises(DeliverError, match="BAD_REQUEST"):
                next(iter(blocks))  # DC1 user's hash on a connection made with DC2's certificate
    finally:
        server.stop(0)
        for endorser in engine.peers.endorsers.values():
            endorser.close()
        engine.peers.pool.shutdown(wait=False)


# --- on real networks --------------------------------------------------------------------------------------

def _deliver_outcome(gateway: Gateway, channel: str, request: bytes) -> str:
    """``block <n>`` for the first block a crafted request gets, else the status that ended the stream."""
    with gateway.network(channel).load_block_events_request(request).events() as blocks:
        try:
            return f"block {next(iter(blocks)).header.number}"
        except DeliverError as ended:
            return str(ended).rsplit(": ", 1)[1]


@pytest.mark.integration
def test_without_mutual_tls_no_engine_checks_the_claimed_hash(tmp_path: Path, engine: str) -> None:
    network = new_network(tmp_path / "plain", engine)
    network.up(Topology(n_orgs=2, port_base=free_port_base(), mutual_tls=False), engine)
    try:
        tasks.create(network, "plain", "DC1,DC2")
        dc1 = network.require_state().topology().orgs[0]
        creds = load_profile(network.layout.profile(dc1))
        with Gateway.from_profile(network.layout.profile(dc1)) as gateway:
            for claimed in (b"\x07" * 32, b""):
                request = seek_request(creds.identity, creds.signer, "plain", claimed, start=0)
                assert _deliver_outcome(gateway, "plain", request) == "block 0"
    finally:
        network.down()
    assert network.running() == []


@pytest.mark.integration
def test_a_new_network_runs_mutual_tls_and_binds_deliver_requests(ledger_network: LedgerNetwork) -> None:
    """The session's network, made with the defaults: every peer requires a client certificate and binds each
    Deliver request to it."""
    assert ledger_network.network.require_state().mutual_tls
    creds = load_profile(ledger_network.profile_path("DC1"))
    assert creds.tls_client is not None
    channel = ledger_network.task
    with ledger_network.gateway("DC1") as gateway:
        outcomes = {
            name: _deliver_outcome(gateway, channel, seek_request(creds.identity, creds.signer, channel, claimed))
            for name, claimed in (("right", creds.tls_client.cert_hash), ("other", b"\x07" * 32), ("none", b""))
        }
    assert outcomes == {"right": "block 0", "other": "BAD_REQUEST", "none": "BAD_REQUEST"}
    with pytest.raises(ConnectError, match="requires a client TLS certificate"):
        Gateway.connect(creds.peer.endpoint, creds.peer.tls_root_cert, creds.identity, creds.signer,
                        Timeouts(connect=2.0), creds.peer.host_override)
