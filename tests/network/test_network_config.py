"""Fast checks of the generated configuration: ports, names, cryptogen and configtx documents,
endorsement policies, CCaaS packages, connection profiles and the state file."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmfuse.network import ccaas, configtx, crypto
from swarmfuse.network import state as state_file
from swarmfuse.network.binaries import locate
from swarmfuse.network.errors import FabricUnavailable, InvalidInput
from swarmfuse.network.layout import Layout
from swarmfuse.network.nodes import install_builder
from swarmfuse.network.state import NetworkState, TaskRecord
from swarmfuse.network.topology import PORT_SPAN, Topology, parse_org_list, validate_channel_name


@pytest.mark.parametrize("n", [2, 3, 8])
def test_ports_are_distinct_and_inside_the_span(n: int) -> None:
    for consensus in ("raft", "bft"):
        topology = Topology(n_orgs=n, auditor=True, consensus=consensus, port_base=30000)
        ports = topology.all_ports()
        assert len(ports) == len(set(ports))
        assert min(ports) >= 30000 and max(ports) < 30000 + PORT_SPAN


def test_two_bases_a_span_apart_do_not_overlap() -> None:
    first = set(Topology(n_orgs=8, auditor=True, consensus="bft", port_base=30000).all_ports())
    second = set(Topology(n_orgs=8, auditor=True, consensus="bft", port_base=30000 + PORT_SPAN).all_ports())
    assert not first & second


def test_orgs_orderers_and_msp_ids() -> None:
    topology = Topology(n_orgs=3, auditor=True)
    assert [o.mspid for o in topology.orgs] == ["DC1MSP", "DC2MSP", "DC3MSP", "AuditorMSP"]
    assert topology.orderers == ("orderer0", "orderer1", "orderer2")
    assert len(Topology(consensus="bft").orderers) == 4


@pytest.mark.parametrize("n", [0, 1, 9, 100])
def test_org_count_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(InvalidInput, match="between 2 and 8"):
        Topology(n_orgs=n)


def test_unknown_consensus_and_bad_port_base_are_refused() -> None:
    with pytest.raises(InvalidInput, match="consensus"):
        Topology(consensus="pbft")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="port base"):
        Topology(port_base=80)


@pytest.mark.parametrize("name", ["task1", "fusion.round-2", "a"])
def test_valid_channel_names(name: str) -> None:
    validate_channel_name(name)


@pytest.mark.parametrize("name", ["Task1", "1task", "", "has space", "under_score", "x" * 250])
def test_invalid_channel_names(name: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid channel name"):
        validate_channel_name(name)


def test_org_list_parsing() -> None:
    topology = Topology(n_orgs=3, auditor=True)
    assert [o.name for o in parse_org_list("DC1, DC3,Auditor", topology)] == ["DC1", "DC3", "Auditor"]
    with pytest.raises(InvalidInput, match="unknown org 'DC9'"):
        parse_org_list("DC1,DC9", topology)
    with pytest.raises(InvalidInput, match="twice"):
        parse_org_list("DC1,DC1", topology)
    with pytest.raises(InvalidInput, match="at least two DC orgs"):
        parse_org_list("DC1,Auditor", topology)


def test_endorsement_policy_is_majority_of_dc_orgs_without_the_auditor() -> None:
    orgs = Topology(n_orgs=4, auditor=True).orgs
    assert configtx.endorsement_policy(orgs[:3]) == "OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer')"
    assert configtx.endorsement_policy(orgs) == (
        "OutOf(3, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer', 'DC4MSP.peer')"
    )
    assert configtx.endorsement_policy(orgs[:2]) == "OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer')"


def test_cryptogen_config_enables_node_ous_and_local_sans() -> None:
    config = crypto.cryptogen_config(Topology(n_orgs=2, auditor=True))
    peer_orgs = config["PeerOrgs"]
    assert [o["Name"] for o in peer_orgs] == ["DC1", "DC2", "Auditor"]  # type: ignore[index]
    for org in [*peer_orgs, *config["OrdererOrgs"]]:  # type: ignore[misc]
        assert org["EnableNodeOUs"] is True
    assert peer_orgs[0]["Template"]["SANS"] == ["localhost", "127.0.0.1"]  # type: ignore[index]


def test_raft_channel_config(tmp_path: Path) -> None:
    topology = Topology(n_orgs=3, auditor=True, port_base=30000)
    doc = configtx.channel_config(topology, Layout(tmp_path), topology.orgs)
    profile = doc["Profiles"][configtx.PROFILE]  # type: ignore[index]
    assert profile["Capabilities"] == {"V3_0": True}
    assert profile["Application"]["Capabilities"] == {"V2_5": True}
    orderer = profile["Orderer"]
    assert orderer["OrdererType"] == "etcdraft"
    assert [c["Port"] for c in orderer["EtcdRaft"]["Consenters"]] == [30000, 30003, 30006]
    orgs = {o["Name"]: o for o in profile["Application"]["Organizations"]}
    assert orgs["DC2MSP"]["AnchorPeers"] == [{"Host": "127.0.0.1", "Port": 30025}]
    assert orgs["DC1MSP"]["Policies"]["Writers"]["Rule"] == "OR('DC1MSP.admin', 'DC1MSP.client')"
    assert orgs["AuditorMSP"]["Policies"]["Writers"]["Rule"] == "OR('AuditorMSP.admin')"
    assert profile["Application"]["ACLs"] == {"peer/Propose": "/Channel/Application/Readers"}


def test_bft_channel_config_maps_four_consenters(tmp_path: Path) -> None:
    topology = Topology(n_orgs=2, consensus="bft", port_base=30000)
    orderer = configtx.channel_config(topology, Layout(tmp_path), topology.orgs)["Profiles"][configtx.PROFILE]["Orderer"]  # type: ignore[index]
    assert orderer["OrdererType"] == "BFT"
    assert [c["ID"] for c in orderer["ConsenterMapping"]] == [1, 2, 3, 4]
    assert orderer["SmartBFT"]["RequestBatchMaxInterval"] == "200ms"
    assert "EtcdRaft" not in orderer


def _fake_org_tls_ca(layout: Layout, topology: Topology) -> None:
    """A throw-away TLS CA where cryptogen would put the org's, to issue chaincode certificates from."""
    org = topology.orgs[0]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"tlsca.{org.domain}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca = layout.org_tls_ca(org)
    ca.parent.mkdir(parents=True)
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (ca.parent / "priv_sk").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def test_chaincode_tls_and_ccaas_package(tmp_path: Path) -> None:
    topology = Topology(n_orgs=2, port_base=30000)
    layout = Layout(tmp_path)
    _fake_org_tls_ca(layout, topology)
    org = topology.orgs[0]
    files = crypto.issue_chaincode_tls(layout, org)
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    package = ccaas.build_package(topology, layout, org)
    with tarfile.open(package) as outer:
        assert sorted(outer.getnames()) == ["code.tar.gz", "metadata.json"]
        assert json.load(outer.extractfile("metadata.json")) == {"type": "ccaas", "label": "swarmfuse_1.0"}  # type: ignore[arg-type]
        code = outer.extractfile("code.tar.gz").read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(code)) as inner:
        connection = json.load(inner.extractfile("connection.json"))  # type: ignore[arg-type]
    assert connection["address"] == "127.0.0.1:30023"
    assert connection["tls_required"] is True
    assert connection["client_cert"] == files.client_cert.read_text()
    package_id = ccaas.package_id(package)
    assert package_id.startswith("swarmfuse_1.0:") and len(package_id.split(":")[1]) == 64
    assert ccaas.build_package(topology, layout, org) == package and ccaas.package_id(package) == package_id


def test_state_round_trip_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    current = NetworkState.for_topology(Topology(n_orgs=4, auditor=True, port_base=31000), "fabric")
    current.tasks["t"] = TaskRecord(name="t", orgs=["DC1", "DC2"], policy="OutOf(2, ...)", created="now")
    state_file.save(path, current)
    loaded = state_file.load(path)
    assert loaded == current
    assert loaded is not None and loaded.topology().to_dict() == current.topology().to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_missing_fabric_is_named(tmp_path: Path) -> None:
    with pytest.raises(FabricUnavailable, match=r"missing bin/peer, .*config/core.yaml"):
        locate({"SWARMFUSE_FABRIC_HOME": str(tmp_path)})
    with pytest.raises(FabricUnavailable, match=str(tmp_path / "c" / "fabric")):
        locate({"SWARMFUSE_CACHE": str(tmp_path / "c")})


def test_external_builder_detects_builds_and_releases_ccaas(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    install_builder(layout)
    builder = layout.builder_dir / "bin"
    source, metadata, build, release = (tmp_path / d for d in ("src", "meta", "build", "release"))
    for folder in (source, metadata, build, release):
        folder.mkdir()
    (metadata / "metadata.json").write_text('{"type": "golang", "label": "x"}')
    assert subprocess.run([builder / "detect", source, metadata], check=False).returncode != 0
    (metadata / "metadata.json").write_text('{"label": "swarmfuse_1.0", "type":"ccaas"}')
    assert subprocess.run([builder / "detect", source, metadata], check=False).returncode == 0
    assert subprocess.run([builder / "build", source, metadata, build], capture_output=True,
                          check=False).returncode != 0
    (source / "connection.json").write_text('{"address": "127.0.0.1:1"}')
    subprocess.run([builder / "build", source, metadata, build], check=True)
    subprocess.run([builder / "release", build, release], check=True)
    assert (release / "chaincode" / "server" / "connection.json").read_text() == '{"address": "127.0.0.1:1"}'
