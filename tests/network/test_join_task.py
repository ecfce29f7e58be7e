"""A fourth DC made in a home of its own joins a running task, gets its peer hosted by the engine and a chaincode
definition that names it, and is admitted on-chain by a majority (embedded engine).

Network of three DC orgs, task ``join`` for DC1-DC3. DC4 (``org init`` in its own home, at the address of the
engine's next peer slot) cannot reach the channel before the update (its TLS CA is no channel org's). The update is
refused with DC1's signature alone and committed with DC2's too. ``task define`` is refused while no peer of DC4 is
hosted; ``network add-peer --org-home`` hosts it (the network home then holds DC4's peer pairs, not its CA, TLS CA,
admin or user keys); ``task define`` commits sequence 2 with a majority of the four orgs' peers. DC4's user
registers through DC4's own peer; pending until DC1 and DC2 approve (two of the three founders), then active.
``audit verify`` passes every check (the definition is the task's rule again); DC4's site bundle is made with its
identities from its own home (refused without it) and names the four orgs; the engine, restarted, reopens
the channel with the later definition in force. No Fabric release can run here: the embedded engine's alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli
from conftest import free_port_base, new_network

from swarmfuse.client.audit.report import Status
from swarmfuse.client.audit.verify import verify_channel
from swarmfuse.client.gateway import ConnectError, Gateway, Timeouts
from swarmfuse.client.gateway.connection import TlsClientCert
from swarmfuse.network import tasks
from swarmfuse.network.bundle import open_bundle
from swarmfuse.network.layout import msp_key_pair
from swarmfuse.network.orghome import open_org_home
from swarmfuse.network.protocol.identity import ECDSASigner, Identity
from swarmfuse.network.topology import Org, Topology

pytestmark = pytest.mark.integration

TASK = "join"
DC4 = Org("DC4", 3)


def _dc4_gateway(dc4_home: Path, endpoint: str, tls_ca: Path, timeouts: Timeouts = Timeouts()) -> Gateway:
    """DC4's user, with its keys from its own home, at the peer ``endpoint`` (TLS CA ``tls_ca``)."""
    org = open_org_home(dc4_home)
    user = org.user_dir("User1")
    cert, key = msp_key_pair(user / "msp")
    host = "peer0.dc1.swarmfuse.local" if "dc1" in tls_ca.name else DC4.peer_host
    return Gateway.connect(endpoint, tls_ca.read_bytes(), Identity.from_pem_file("DC4MSP", cert),
                           ECDSASigner.from_pem_file(key), timeouts, host_override=host,
                           tls_client=TlsClientCert.from_pem_files(user / "tls" / "client.crt", user / "tls" / "client.key"))


def _status(network, org: str) -> str:  # type: ignore[no-untyped-def]
    topology = network.require_state().topology()
    return json.loads(tasks.query(network, TASK, topology.org("DC1"), "Membership:Get", org))["status"]


@pytest.mark.timeout(300)
def test_a_dc_from_its_own_home_joins_registers_and_is_admitted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    network = new_network(home, "embedded")
    try:
        topology = Topology(n_orgs=3, port_base=free_port_base())
        network.up(topology, "embedded")
        tasks.create(network, TASK, "DC1,DC2,DC3")
        dc4_home, definition, update = tmp_path / "dc4", tmp_path / "dc4.json", tmp_path / "u.pb"
        dc4_peer = topology.endpoint(topology.peer_ports(DC4).listen)
        assert run_cli("org", "init", "DC4", "--home", str(dc4_home), "--address", dc4_peer)[0] == 0
        assert run_cli("org", "export", "--home", str(dc4_home), "-o", str(definition))[0] == 0
        dc1 = json.loads(network.layout.profile("DC1").read_text())["peer"]
        with pytest.raises(ConnectError):  # not on the channel: DC1's peer refuses DC4's TLS certificate
            _dc4_gateway(dc4_home, dc1["endpoint"], Path(dc1["tls_ca_cert"]), Timeouts(connect=3.0)).close()

        assert run_cli("channel", "add-org", TASK, "--definition", str(definition), "-o", str(update), "--home",
                       str(home))[0] == 0
        assert run_cli("channel", "sign", str(update), "--org", "DC1", "--home", str(home))[0] == 0
        code, output = run_cli("channel", "update", str(update), "--org", "DC1", "--home", str(home))
        assert code == 1 and "requires 2 of the 'Admins' sub-policies" in output, output
        assert run_cli("channel", "sign", str(update), "--org", "DC2", "--home", str(home))[0] == 0
        code, output = run_cli("channel", "update", str(update), "--org", "DC1", "--home", str(home))
        assert code == 0, output

        code, output = run_cli("task", "define", TASK, "--home", str(home))
        assert code == 1 and "no peer of DC4MSP is hosted here" in output, output
        code, output = run_cli("network", "add-peer", "--org-home", str(dc4_home), "--home", str(home))
        assert code == 0 and dc4_peer in output, output
        held = network.layout.org_dir(DC4)  # the engine holds DC4's peer pairs; DC4's CAs and users stay home
        keys = {str(p.relative_to(held)) for p in held.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()}
        assert keys == {f"peers/{DC4.peer_host}/msp/keystore/priv_sk", f"peers/{DC4.peer_host}/tls/server.key"}, keys
        code, output = run_cli("task", "define", TASK, "--home", str(home))
        assert code == 0, output
        record = network.require_state().tasks[TASK]
        assert record.orgs == ["DC1", "DC2", "DC3", "DC4"]
        assert record.policy == "OutOf(3, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer', 'DC4MSP.peer')"

        profile = {"name": "DC4", "endpoint": "127.0.0.1:1", "tls_fingerprint": "0" * 64, "modalities": ["text"]}
        dc4_tls_ca = open_org_home(dc4_home).org_dir / "tlsca" / "tlsca.dc4.swarmfuse.local-cert.pem"
        with _dc4_gateway(dc4_home, dc4_peer, dc4_tls_ca) as gateway:  # through DC4's own peer
            status = gateway.network(TASK).contract("swarmfuse", "Membership").new_proposal(
                "Register", json.dumps(profile)).endorse().submit().status()
            assert status.successful
        assert _status(network, "DC4MSP") == "pending"
        for org in ("DC1", "DC2"):  # a majority of the electorate (three founders), once registered themselves
            found = network.require_state().topology().org(org)
            tasks.invoke(network, TASK, found, "Membership:Register", json.dumps({**profile, "name": org}))
            tasks.invoke(network, TASK, found, "Membership:Approve", "DC4MSP")
        assert _status(network, "DC4MSP") == "active"

        with Gateway.from_profile(network.layout.profile("DC1")) as gateway:
            report = verify_channel(gateway, TASK, engine="embedded")
        assert [c.detail for c in report.checks if c.status == Status.FAIL] == []
        out = tmp_path / "dc4-bundle"  # DC4's site bundle: its keys from its own home, the rest from the network's
        code, output = run_cli("network", "bundle", str(out), "--org", "DC4", "--task", TASK, "--home", str(home))
        assert code == 1 and "give that home with --org-home" in output, output
        code, output = run_cli("network", "bundle", str(out), "--org", "DC4", "--task", TASK, "--org-home",
                               str(dc4_home), "--home", str(home))
        assert code == 0, output
        bundle = open_bundle(out)
        assert [o.mspid for o in bundle.settings.orgs] == ["DC1MSP", "DC2MSP", "DC3MSP", "DC4MSP"]
        admin_key = msp_key_pair(open_org_home(dc4_home).user_dir("Admin") / "msp")[1].read_bytes()
        assert (out / "identities" / "admin" / "key.pem").read_bytes() == admin_key
        code, output = run_cli("site", "status", "--bundle", str(out), "--home", str(tmp_path / "dc4-site"))
        assert code == 0 and "DC4" in output, output

        network.down()  # reopened with the later definition in force
        network.up(None, "embedded")
        assert _status(network, "DC4MSP") == "active"
    finally:
        if network.running():
            network.down()
