"""Fast checks of the crypto material made without Fabric: the tree cryptogen writes, every file the network reads,
chains to the org CAs, NodeOUs, TLS SANs and usages (with a real TLS handshake), keys matching certificates."""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmfuse.network import configtx, crypto, cryptomaterial, nodes, profiles
from swarmfuse.network.binaries import Fabric
from swarmfuse.network.layout import Layout
from swarmfuse.network.topology import ORDERER_DOMAIN, Topology

P256_HALF_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551 // 2

# What cryptogen generate writes for one peer org of cryptogen_config (Template Count 1, Users Count 1, NodeOUs on),
# from Fabric cmd/cryptogen/main.go generatePeerOrg and internal/cryptogen/msp/msp.go (admincerts is created
# by createFolderStructure and stays empty with NodeOUs). Directories end with "/".
EXPECTED_DC1 = ["ca/", "ca/ca.dc1.swarmfuse.local-cert.pem", "ca/priv_sk", "msp/", "msp/admincerts/", "msp/cacerts/", "msp/cacerts/ca.dc1.swarmfuse.local-cert.pem", "msp/config.yaml", "msp/tlscacerts/", "msp/tlscacerts/tlsca.dc1.swarmfuse.local-cert.pem", "peers/", "peers/peer0.dc1.swarmfuse.local/", "peers/peer0.dc1.swarmfuse.local/msp/", "peers/peer0.dc1.swarmfuse.local/msp/admincerts/", "peers/peer0.dc1.swarmfuse.local/msp/cacerts/", "peers/peer0.dc1.swarmfuse.local/msp/cacerts/ca.dc1.swarmfuse.local-cert.pem", "peers/peer0.dc1.swarmfuse.local/msp/config.yaml", "peers/peer0.dc1.swarmfuse.local/msp/keystore/", "peers/peer0.dc1.swarmfuse.local/msp/keystore/priv_sk", "peers/peer0.dc1.swarmfuse.local/msp/signcerts/", "peers/peer0.dc1.swarmfuse.local/msp/signcerts/peer0.dc1.swarmfuse.local-cert.pem", "peers/peer0.dc1.swarmfuse.local/msp/tlscacerts/", "peers/peer0.dc1.swarmfuse.local/msp/tlscacerts/tlsca.dc1.swarmfuse.local-cert.pem", "peers/peer0.dc1.swarmfuse.local/tls/", "peers/peer0.dc1.swarmfuse.local/tls/ca.crt", "peers/peer0.dc1.swarmfuse.local/tls/server.crt", "peers/peer0.dc1.swarmfuse.local/tls/server.key", "tlsca/", "tlsca/priv_sk", "tlsca/tlsca.dc1.swarmfuse.local-cert.pem", "users/", "users/Admin@dc1.swarmfuse.local/", "users/Admin@dc1.swarmfuse.local/msp/", "users/Admin@dc1.swarmfuse.local/msp/admincerts/", "users/Admin@dc1.swarmfuse.local/msp/cacerts/", "users/Admin@dc1.swarmfuse.local/msp/cacerts/ca.dc1.swarmfuse.local-cert.pem", "users/Admin@dc1.swarmfuse.local/msp/config.yaml", "users/Admin@dc1.swarmfuse.local/msp/keystore/", "users/Admin@dc1.swarmfuse.local/msp/keystore/priv_sk", "users/Admin@dc1.swarmfuse.local/msp/signcerts/", "users/Admin@dc1.swarmfuse.local/msp/signcerts/Admin@dc1.swarmfuse.local-cert.pem", "users/Admin@dc1.swarmfuse.local/msp/tlscacerts/", "users/Admin@dc1.swarmfuse.local/msp/tlscacerts/tlsca.dc1.swarmfuse.local-cert.pem", "users/Admin@dc1.swarmfuse.local/tls/", "users/Admin@dc1.swarmfuse.local/tls/ca.crt", "users/Admin@dc1.swarmfuse.local/tls/client.crt", "users/Admin@dc1.swarmfuse.local/tls/client.key", "users/User1@dc1.swarmfuse.local/", "users/User1@dc1.swarmfuse.local/msp/", "users/User1@dc1.swarmfuse.local/msp/admincerts/", "users/User1@dc1.swarmfuse.local/msp/cacerts/", "users/User1@dc1.swarmfuse.local/msp/cacerts/ca.dc1.swarmfuse.local-cert.pem", "users/User1@dc1.swarmfuse.local/msp/config.yaml", "users/User1@dc1.swarmfuse.local/msp/keystore/", "users/User1@dc1.swarmfuse.local/msp/keystore/priv_sk", "users/User1@dc1.swarmfuse.local/msp/signcerts/", "users/User1@dc1.swarmfuse.local/msp/signcerts/User1@dc1.swarmfuse.local-cert.pem", "users/User1@dc1.swarmfuse.local/msp/tlscacerts/", "users/User1@dc1.swarmfuse.local/msp/tlscacerts/tlsca.dc1.swarmfuse.local-cert.pem", "users/User1@dc1.swarmfuse.local/tls/", "users/User1@dc1.swarmfuse.local/tls/ca.crt", "users/User1@dc1.swarmfuse.local/tls/client.crt", "users/User1@dc1.swarmfuse.local/tls/client.key"]

# The orderer org (generateOrdererOrg): one folder per Specs entry and only an Admin user.
EXPECTED_ORDERER_ORG = ["ca/", "ca/ca.orderer.swarmfuse.local-cert.pem", "ca/priv_sk", "msp/", "msp/admincerts/", "msp/cacerts/", "msp/cacerts/ca.orderer.swarmfuse.local-cert.pem", "msp/config.yaml", "msp/tlscacerts/", "msp/tlscacerts/tlsca.orderer.swarmfuse.local-cert.pem", "orderers/", "tlsca/", "tlsca/priv_sk", "tlsca/tlsca.orderer.swarmfuse.local-cert.pem", "users/"]
EXPECTED_ORDERER_NODE = ["{n}/", "{n}/msp/", "{n}/msp/admincerts/", "{n}/msp/cacerts/", "{n}/msp/cacerts/ca.orderer.swarmfuse.local-cert.pem", "{n}/msp/config.yaml", "{n}/msp/keystore/", "{n}/msp/keystore/priv_sk", "{n}/msp/signcerts/", "{n}/msp/signcerts/{cn}-cert.pem", "{n}/msp/tlscacerts/", "{n}/msp/tlscacerts/tlsca.orderer.swarmfuse.local-cert.pem", "{n}/tls/", "{n}/tls/ca.crt", "{n}/tls/{side}.crt", "{n}/tls/{side}.key"]

# go-yaml v4 Marshal of msp.Configuration (msp/configbuilder.go), as cryptogen's exportConfig writes it.
EXPECTED_CONFIG_YAML = """NodeOUs:
    Enable: true
    ClientOUIdentifier:
        Certificate: cacerts/ca.dc1.swarmfuse.local-cert.pem
        OrganizationalUnitIdentifier: client
    PeerOUIdentifier:
        Certificate: cacerts/ca.dc1.swarmfuse.local-cert.pem
        OrganizationalUnitIdentifier: peer
    AdminOUIdentifier:
        Certificate: cacerts/ca.dc1.swarmfuse.local-cert.pem
        OrganizationalUnitIdentifier: admin
    OrdererOUIdentifier:
        Certificate: cacerts/ca.dc1.swarmfuse.local-cert.pem
        OrganizationalUnitIdentifier: orderer
"""


@pytest.fixture(scope="module", params=["raft", "bft"])
def network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Topology, Layout]:
    """3 DC orgs + auditor, material made through ``crypto.generate`` without a Fabric release."""
    topology = Topology(n_orgs=3, auditor=True, consensus=request.param, port_base=30000)
    layout = Layout(tmp_path_factory.mktemp(f"home-{request.param}"))
    crypto.generate(None, topology, layout)
    return topology, layout


def _tree(root: Path) -> list[str]:
    return sorted(f"{p.relative_to(root)}/" if p.is_dir() else str(p.relative_to(root)) for p in root.rglob("*"))


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    return key


def _org_dirs(layout: Layout) -> list[Path]:
    return [*sorted((layout.crypto / "peerOrganizations").iterdir()), layout.orderer_org_dir]


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _home_paths(value: object, layout: Layout) -> set[Path]:
    """Crypto material paths (MSPs, TLS, chaincode TLS) in a document or environment (``[a]`` lists and Fabric's
    space-separated ``*_FILES`` lists included)."""
    roots = (str(layout.crypto), str(layout.home / "chaincode"))
    return {Path(part) for s in _strings(value) for part in s.strip("[]").split() if part.startswith(roots)}


def test_peer_org_tree_is_cryptogens(network: tuple[Topology, Layout]) -> None:
    topology, layout = network
    assert _tree(layout.org_dir(topology.orgs[0])) == sorted(EXPECTED_DC1)
    assert sorted(p.name for p in (layout.crypto / "peerOrganizations").iterdir()) == sorted(o.domain for o in topology.orgs)
    assert sorted(p.name for p in layout.crypto.iterdir()) == ["ordererOrganizations", "peerOrganizations"]
    assert list((layout.org_dir(topology.orgs[0]) / "msp" / "admincerts").iterdir()) == []


def test_orderer_org_tree_is_cryptogens(network: tuple[Topology, Layout]) -> None:
    topology, layout = network
    expected = list(EXPECTED_ORDERER_ORG)
    for name in topology.orderers:
        host = topology.orderer_host(name)
        expected += [e.format(n=f"orderers/{host}", cn=host, side="server") for e in EXPECTED_ORDERER_NODE]
    admin = f"Admin@{ORDERER_DOMAIN}"
    expected += [e.format(n=f"users/{admin}", cn=admin, side="client") for e in EXPECTED_ORDERER_NODE]
    assert _tree(layout.orderer_org_dir) == sorted(expected)


def test_every_path_the_network_reads_exists(network: tuple[Topology, Layout], tmp_path: Path) -> None:
    topology, layout = network
    fabric = Fabric(home=tmp_path / "fabric")
    read: set[Path] = set()
    for org in topology.orgs:
        for engine in ("fabric", "embedded"):
            profile = profiles.build(topology, layout, org, engine)
            read |= _home_paths(profile.model_dump(), layout)
            for identity in profile.identities.values():
                assert Path(identity.key).name == "priv_sk"
                assert Path(identity.cert).name == f"{Path(identity.cert).parents[2].name}-cert.pem"
        read |= _home_paths(nodes.peer_spec(fabric, topology, layout, org).env, layout)
        read |= _home_paths(nodes.chaincode_spec(topology, layout, org, "swarmfuse_1.0:ab").env, layout)
        read |= _home_paths(vars(crypto.chaincode_tls(layout, org)), layout)
        read |= {layout.org_tls_ca(org).parent / "priv_sk", layout.user_dir(org, "Admin") / "msp"}
    for name in topology.orderers:
        read |= _home_paths(nodes.orderer_spec(fabric, topology, layout, name).env, layout)
    read |= _home_paths(configtx.channel_config(topology, layout, topology.orgs), layout)
    admin_tls = layout.orderer_admin_dir / "tls"
    read |= {layout.orderer_tls_ca, admin_tls / "client.crt", admin_tls / "client.key"}
    missing = sorted(str(p) for p in read if not p.exists())
    assert not missing
    assert len(read) > 60


def test_cas_are_cryptogens(network: tuple[Topology, Layout]) -> None:
    _, layout = network
    for org_dir in _org_dirs(layout):
        domain = org_dir.name
        for folder, name in (("ca", f"ca.{domain}"), ("tlsca", f"tlsca.{domain}")):
            cert = _load_cert(org_dir / folder / f"{name}-cert.pem")
            key = _load_key(org_dir / folder / "priv_sk")
            assert cert.subject.rfc4514_string() == f"CN={name},O={domain},L=San Francisco,ST=California,C=US"
            assert cert.issuer == cert.subject
            cert.verify_directly_issued_by(cert)
            assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            assert usage.key_cert_sign and usage.crl_sign and usage.digital_signature
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            assert ski == hashlib.sha256(key.private_numbers().private_value.to_bytes(32, "big")).digest()
            assert (org_dir / "msp" / ("cacerts" if folder == "ca" else "tlscacerts") / f"{name}-cert.pem").read_bytes() == (
                org_dir / folder / f"{name}-cert.pem"
            ).read_bytes()


def _expected_ou(msp: Path) -> str:
    holder = msp.parent
    if holder.parent.name == "peers":
        return "peer"
    if holder.parent.name == "orderers":
        return "orderer"
    return "admin" if holder.name.startswith("Admin@") else "client"


def test_signcerts_chain_to_the_org_ca_with_their_node_ou(network: tuple[Topology, Layout]) -> None:
    _, layout = network
    now = dt.datetime.now(dt.UTC)
    signcerts = sorted(layout.crypto.rglob("msp/signcerts/*-cert.pem"))
    assert len(signcerts) == 4 * 3 + len(network[0].orderers) + 1
    for path in signcerts:
        org_dir = path.parents[4]
        ca = _load_cert(org_dir / "ca" / f"ca.{org_dir.name}-cert.pem")
        cert = _load_cert(path)
        cert.verify_directly_issued_by(ca)  # issuer name and the signature under the CA's public key
        assert decode_dss_signature(cert.signature)[1] <= P256_HALF_ORDER
        cn = path.parents[2].name
        assert path.name == f"{cn}-cert.pem"
        assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [cn]
        ous = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        assert ous == [_expected_ou(path.parents[1])]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert cert.not_valid_before_utc <= now - dt.timedelta(minutes=4)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=crypto.CERT_DAYS)


def test_tls_certs_chain_to_the_tls_ca_with_sans_and_both_usages(network: tuple[Topology, Layout]) -> None:
    _, layout = network
    tls_dirs = sorted(layout.crypto.rglob("tls"))
    assert len(tls_dirs) == 4 * 3 + len(network[0].orderers) + 1
    for tls in tls_dirs:
        org_dir = tls.parents[2]
        ca_path = org_dir / "tlsca" / f"tlsca.{org_dir.name}-cert.pem"
        assert (tls / "ca.crt").read_bytes() == ca_path.read_bytes()
        node = tls.parent.parent.name in ("peers", "orderers")
        cert = _load_cert(tls / ("server.crt" if node else "client.crt"))
        cert.verify_directly_issued_by(_load_cert(ca_path))
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        assert not cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        cn = tls.parent.name
        if node:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert sans.get_values_for_type(x509.DNSName) == [cn, cn.split(".")[0], "localhost"]
            assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        else:
            with pytest.raises(x509.ExtensionNotFound):
                cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_name: str) -> x509.Certificate:
    """A TLS handshake over memory BIOs; returns the client certificate the server saw."""
    pipes = [ssl.MemoryBIO() for _ in range(4)]
    srv = server.wrap_bio(pipes[0], pipes[1], server_side=True)
    cli = client.wrap_bio(pipes[2], pipes[3], server_hostname=server_name)
    done = {"srv": False, "cli": False}
    for _ in range(20):
        for name, end in (("cli", cli), ("srv", srv)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        pipes[0].write(pipes[3].read())
        pipes[2].write(pipes[1].read())
        if all(done.values()):
            break
    assert all(done.values())
    peer = srv.getpeercert(binary_form=True)
    assert peer is not None
    return x509.load_der_x509_certificate(peer)


def _context(side: ssl._SSLMethod, cert: Path, key: Path, trust: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(side)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(trust)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def test_node_tls_pairs_serve_and_authenticate_as_clients(network: tuple[Topology, Layout]) -> None:
    topology, layout = network
    first, second = (layout.orderer_dir(topology, n) / "tls" for n in topology.orderers[:2])
    # Raft/BFT cluster: an orderer's server pair is also its client pair towards the others.
    server = _context(ssl.PROTOCOL_TLS_SERVER, first / "server.crt", first / "server.key", second / "ca.crt")
    client = _context(ssl.PROTOCOL_TLS_CLIENT, second / "server.crt", second / "server.key", first / "ca.crt")
    for name in (topology.orderer_host(topology.orderers[0]), "localhost", "127.0.0.1"):
        assert _handshake(server, client, name) == _load_cert(second / "server.crt")
    org = topology.orgs[0]
    peer, admin = layout.peer_dir(org) / "tls", layout.user_dir(org, "Admin") / "tls"
    server = _context(ssl.PROTOCOL_TLS_SERVER, peer / "server.crt", peer / "server.key", peer / "ca.crt")
    client = _context(ssl.PROTOCOL_TLS_CLIENT, admin / "client.crt", admin / "client.key", layout.org_tls_ca(org))
    assert _handshake(server, client, org.peer_host) == _load_cert(admin / "client.crt")


def test_config_yaml_enables_node_ous(network: tuple[Topology, Layout]) -> None:
    topology, layout = network
    configs = sorted(layout.crypto.rglob("msp/config.yaml"))
    assert len(configs) == 5 + 4 * 3 + len(topology.orderers) + 1
    for path in configs:
        node_ous = yaml.safe_load(path.read_text())["NodeOUs"]
        assert node_ous["Enable"] is True
        for field, ou in (("Client", "client"), ("Peer", "peer"), ("Admin", "admin"), ("Orderer", "orderer")):
            identifier = node_ous[f"{field}OUIdentifier"]
            assert identifier["OrganizationalUnitIdentifier"] == ou
            assert (path.parent / identifier["Certificate"]).is_file()
    assert (layout.org_dir(topology.orgs[0]) / "msp" / "config.yaml").read_text() == EXPECTED_CONFIG_YAML
    assert (layout.peer_dir(topology.orgs[0]) / "msp" / "config.yaml").read_text() == EXPECTED_CONFIG_YAML


def test_keys_match_their_certificates(network: tuple[Topology, Layout]) -> None:
    _, layout = network
    pairs: list[tuple[Path, Path]] = []
    for org_dir in _org_dirs(layout):
        pairs += [(org_dir / f / f"{f}.{org_dir.name}-cert.pem", org_dir / f / "priv_sk") for f in ("ca", "tlsca")]
    for keystore in layout.crypto.rglob("msp/keystore"):
        pairs.append((next((keystore.parent / "signcerts").iterdir()), keystore / "priv_sk"))
    for tls in layout.crypto.rglob("tls"):
        side = "server" if (tls / "server.crt").exists() else "client"
        pairs.append((tls / f"{side}.crt", tls / f"{side}.key"))
    assert len(pairs) == 2 * 5 + 2 * (4 * 3 + len(network[0].orderers) + 1)
    for cert_path, key_path in pairs:
        assert key_path.stat().st_mode & 0o777 == 0o600
        assert key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
        assert _load_key(key_path).public_key() == _load_cert(cert_path).public_key()


def test_generate_keeps_the_tree_for_the_same_topology(tmp_path: Path) -> None:
    topology, layout = Topology(n_orgs=2, port_base=30000), Layout(tmp_path)
    crypto.generate(None, topology, layout)
    ca = layout.org_tls_ca(topology.orgs[0]).read_bytes()
    chaincode = crypto.chaincode_tls(layout, topology.orgs[0])
    _load_cert(chaincode.server_cert).verify_directly_issued_by(_load_cert(chaincode.ca_cert))
    crypto.generate(None, topology, layout)
    assert layout.org_tls_ca(topology.orgs[0]).read_bytes() == ca
    crypto.generate(None, Topology(n_orgs=3, port_base=30000), layout)
    assert layout.org_tls_ca(topology.orgs[0]).read_bytes() != ca
    assert layout.org_dir(Topology(n_orgs=3).orgs[2]).is_dir()


def test_unsupported_crypto_config_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topology = Topology(n_orgs=2, port_base=30000)
    config = crypto.cryptogen_config(topology)
    config["PeerOrgs"][0]["EnableNodeOUs"] = False  # type: ignore[index]
    monkeypatch.setattr(cryptomaterial, "cryptogen_config", lambda _: config)
    with pytest.raises(cryptomaterial.UnsupportedCryptoConfig, match="org DC1: only EnableNodeOUs"):
        cryptomaterial.generate_material(topology, Layout(tmp_path))
    config["PeerOrgs"][0]["EnableNodeOUs"] = True  # type: ignore[index]
    config["PeerOrgs"][0]["CA"] = {"Country": "DE"}  # type: ignore[index]
    with pytest.raises(cryptomaterial.UnsupportedCryptoConfig, match="unsupported crypto-config keys CA"):
        cryptomaterial.generate_material(topology, Layout(tmp_path))
