"""Listeners bound to the operator's address (embedded engine).

``network up --address 127.0.0.2 --name ledger.example`` (127.0.0.2 is a loopback address every Linux host has,
yet not 127.0.0.1): every org endpoint, orderer0's ports and every chaincode server listen on 127.0.0.2 and on
nothing of 127.0.0.1; the peers' and chaincode servers' TLS certificates name the address and the name; the
connection profiles point at it, and a task is created and queried through them. Bad addresses are refused
with a clear line before anything is written under the home.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run_cli
from conftest import free_port_base
from cryptography import x509

from swarmfuse.network.control import Network
from swarmfuse.network.crypto import chaincode_tls

ADDRESS = "127.0.0.2"
NAME = "ledger.example"


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def _sans(path: Path) -> tuple[list[str], list[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.DNSName), [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    home = tmp_path_factory.mktemp("listen") / "home"
    code, output = run_cli("network", "up", "--engine", "embedded", "--orgs", "2", "--address", ADDRESS,
                           "--name", NAME, "--port-base", str(free_port_base()), "--home", str(home))
    network = Network(home)
    try:
        assert code == 0, output
        yield network
    finally:
        if network.running():
            network.down()


@pytest.mark.integration
def test_every_listener_is_on_the_given_address(network: Network) -> None:
    topology = network.require_state().topology()
    assert (topology.address, topology.names) == (ADDRESS, (NAME,))
    orderer = topology.orderer_ports(topology.orderers[0])
    ports = [orderer.listen, orderer.admin, orderer.operations]
    for org in topology.orgs:
        ports += [topology.peer_ports(org).listen, topology.peer_ports(org).ccaas]
    assert [port for port in ports if not _listening(ADDRESS, port)] == []
    assert [port for port in ports if _listening("127.0.0.1", port)] == []

    for org in topology.orgs:
        dns, ips = _sans(network.layout.peer_dir(org) / "tls" / "server.crt")
        assert NAME in dns and ADDRESS in ips
        dns, ips = _sans(chaincode_tls(network.layout, org).server_cert)
        assert NAME in dns and ADDRESS in ips
        profile = json.loads(network.layout.profile(org).read_text())
        assert profile["peer"]["endpoint"] == f"{ADDRESS}:{topology.peer_ports(org).listen}"
        assert profile["orderers"][0]["endpoint"] == f"{ADDRESS}:{orderer.listen}"
    assert {row.health for row in network.status()} == {"ok"}

    home = str(network.home)
    assert run_cli("task", "create", "addr", "--orgs", "DC1,DC2", "--home", home)[0] == 0
    code, output = run_cli("task", "query", "addr", "Audit:Members", "10", "", "--org", "DC2", "--home", home)
    assert code == 0, output
    # the address is the network's: up with another one is refused, the running network kept
    code, output = run_cli("network", "up", "--address", "127.0.0.3", "--home", home)
    assert code == 1 and "already holds a network" in output and "address 127.0.0.2" in output


@pytest.mark.parametrize(("address", "name", "message"), [
    ("dc.example", None, "is not an IPv4 address"),
    ("0.0.0.0", None, "names no single interface"),
    ("::1", None, "only IPv4 listen addresses"),
    ("192.0.2.7", None, "no interface of this host has that address"),
    ("127.0.0.1", "not a name!", "neither a host name nor an IP address"),
])
def test_a_bad_address_is_refused_before_anything_is_written(tmp_path: Path, address: str, name: str | None,
                                                             message: str) -> None:
    home = tmp_path / "home"
    args = ["network", "up", "--engine", "embedded", "--address", address, "--home", str(home),
            "--port-base", str(free_port_base())]
    code, output = run_cli(*args, *(["--name", name] if name else []))
    assert code == 1 and message in " ".join(output.split()), output
    assert not (home / "state.json").exists() and not (home / "crypto").exists()


def test_a_site_refuses_an_address_that_is_no_ipv4_address(tmp_path: Path) -> None:
    code, output = run_cli("site", "serve", "--org", "DC1", "--task", "t", "--address", "site.example",
                           "--home", str(tmp_path))
    assert code == 1 and "is not an IPv4 address" in output, output
