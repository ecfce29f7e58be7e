"""``swarmfuse org init|export``: an org's material made in its own home, and its public definition file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cli_runner import run_cli
from cryptography import x509
from cryptography.x509.oid import NameOID

from swarmfuse.network.errors import InvalidInput
from swarmfuse.network.orgdef import OrgDefinitionFile
from swarmfuse.network.orghome import open_org_home
from swarmfuse.network.protocol.identity import Identity
from swarmfuse.network.protocol.msp import ChannelMSPs


@pytest.fixture(scope="module")
def dc4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """DC4 made in its own home and exported."""
    home = tmp_path_factory.mktemp("dc4-home")
    out = tmp_path_factory.mktemp("out") / "dc4.json"
    code, output = run_cli("org", "init", "DC4", "--home", str(home), "--address", "dc4.example:7051",
                        "--san", "10.1.2.3")
    assert code == 0, output
    code, output = run_cli("org", "export", "--home", str(home), "-o", str(out))
    assert code == 0, output
    return home, out


def test_every_private_key_is_private_and_none_is_exported(dc4: tuple[Path, Path]) -> None:
    home, out = dc4
    keys = [p for p in home.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
    assert len(keys) == 8  # CA, TLS CA, and the MSP and TLS keys of peer0, User1 and Admin
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys)
    exported = out.read_text()
    assert "PRIVATE KEY" not in exported
    flat = exported.replace("\\n", "")
    for key in keys:  # the base64 after the key's common PKCS#8 header: its private scalar
        body = "".join(key.read_text().splitlines()[1:-1])
        assert body[48:] not in flat


def test_the_peer_certificate_carries_the_address_and_names_given(dc4: tuple[Path, Path]) -> None:
    org = open_org_home(dc4[0])
    tls = org.org_dir / "peers" / "peer0.dc4.swarmfuse.local" / "tls" / "server.crt"
    sans = x509.load_pem_x509_certificate(tls.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"peer0.dc4.swarmfuse.local", "peer0", "dc4.example"}
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]


def test_the_definition_validates_the_org_admin_as_a_channel_msp_would(dc4: tuple[Path, Path]) -> None:
    home, out = dc4
    definition = OrgDefinitionFile.load(out)
    org = definition.to_org()
    assert (org.name, org.mspid, org.kind, org.endpoints) == ("DC4", "DC4MSP", "member", ("dc4.example:7051",))
    admin_msp = open_org_home(home).user_dir("Admin") / "msp"
    cert = next((admin_msp / "signcerts").glob("*.pem"))
    principal = ChannelMSPs([org]).identify(Identity.from_pem_file("DC4MSP", cert).serialize())
    assert (principal.mspid, principal.role) == ("DC4MSP", "admin")
    tls_ca = x509.load_pem_x509_certificate(org.tls_ca_certs[0])
    assert tls_ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "tlsca.dc4.swarmfuse.local"


def test_an_org_is_made_once_per_home(dc4: tuple[Path, Path]) -> None:
    before = sorted(p.read_bytes() for p in dc4[0].rglob("priv_sk"))
    code, output = run_cli("org", "init", "DC4", "--home", str(dc4[0]), "--address", "dc4.example:7051")
    assert code == 1 and "already holds an org" in output
    assert sorted(p.read_bytes() for p in dc4[0].rglob("priv_sk")) == before


@pytest.mark.parametrize(("args", "problem"), [
    (("DC4", "--address", "dc4.example"), "is not host:port"),
    (("DC4", "--address", "dc4.example:0"), "is not host:port"),
    (("4DC", "--address", "dc4.example:7051"), "org name '4DC' is not valid"),
])
def test_bad_init_arguments_are_named(tmp_path: Path, args: tuple[str, ...], problem: str) -> None:
    code, output = run_cli("org", "init", *args, "--home", str(tmp_path / "h"))
    assert code == 1 and problem in output
    assert not (tmp_path / "h" / "crypto").exists()


def test_export_from_a_home_without_an_org_is_refused(tmp_path: Path) -> None:
    code, output = run_cli("org", "export", "--home", str(tmp_path), "-o", str(tmp_path / "x.json"))
    assert code == 1 and "holds no org" in output and not (tmp_path / "x.json").exists()


def test_a_definition_carrying_a_key_or_a_leaf_certificate_is_refused(dc4: tuple[Path, Path], tmp_path: Path) -> None:
    home, out = dc4
    document = json.loads(out.read_text())
    key = next((open_org_home(home).user_dir("Admin") / "msp" / "keystore").iterdir()).read_text()
    leaf = next((open_org_home(home).user_dir("Admin") / "msp" / "signcerts").glob("*.pem")).read_text()
    for field, value, problem in (("ca_certs", [document["ca_certs"][0] + key], "expected PEM certificates only"),
                                  ("tls_ca_certs", [leaf], "is not a CA certificate"),
                                  ("anchor_peers", ["nowhere"], "is not host:port")):
        bad = tmp_path / f"{field}.json"
        bad.write_text(json.dumps({**document, field: value}))
        with pytest.raises(InvalidInput, match=problem) as refused:
            OrgDefinitionFile.load(bad)
        assert str(bad) in str(refused.value) and field in str(refused.value)
