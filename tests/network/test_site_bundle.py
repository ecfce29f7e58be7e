"""A site started from its org's bundle alone (embedded engine).

``network bundle --org DC2 --task T OUT --site-address 127.0.0.3`` on a running network writes DC2's bundle: no
private key in it is another org's (every private key of the bundle is DC2's admin's or user's, or of the site
pairs its TLS CA issued; no private key file of the network home but DC2's users' appears in it, nor any key's
scalar). ``site data add --bundle`` and ``site serve --bundle`` with a separate home (no network in it) register
DC2, and the agent answers its own org's ``GET /status`` on 127.0.0.3 over mutual TLS with the bundle's files.
A bundle with one byte changed, a file removed or one added is refused, naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run_cli
from conftest import free_port_base
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from swarmfuse.client.ledger import open_task
from swarmfuse.network import tasks
from swarmfuse.network.control import Network
from swarmfuse.network.topology import Topology

pytestmark = pytest.mark.integration

TASK = "bundled"
SITE_ADDRESS = "127.0.0.3"
PRIVATE = b"PRIVATE KEY-----"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    network = Network(tmp_path_factory.mktemp("bundle") / "home")
    try:
        network.up(Topology(n_orgs=3, port_base=free_port_base()), "embedded")
        tasks.create(network, TASK, "DC1,DC2,DC3")
        yield network
    finally:
        if network.running():
            network.down()


@pytest.fixture(scope="module")
def bundle(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dc2-host") / "bundle"
    code, output = run_cli("network", "bundle", str(out), "--org", "DC2", "--task", TASK, "--site-address",
                           SITE_ADDRESS, "--home", str(network.home))
    assert code == 0, output
    return out


def _private_keys(folder: Path) -> dict[Path, ec.EllipticCurvePrivateKey]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() and PRIVATE in path.read_bytes():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            found[path] = key
    return found


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def test_the_bundle_holds_no_other_org_s_private_key(network: Network, bundle: Path) -> None:
    home_keys = _private_keys(network.home)
    dc2_users = network.layout.org_dir(network.require_state().topology().org("DC2")) / "users"
    own = {_point(key) for path, key in home_keys.items() if path.is_relative_to(dc2_users)}
    others = {path: key for path, key in home_keys.items() if not path.is_relative_to(dc2_users)}
    assert len(own) == 4 and len(others) > 20  # DC2's admin and user (signing, client TLS); every other key
    bundled = _private_keys(bundle)
    site_keys = {path for path in bundled if path.is_relative_to(bundle / "site")}
    assert {_point(key) for path, key in bundled.items() if path not in site_keys} == own
    assert len(site_keys) == 2
    other_points = {_point(key) for key in others.values()}
    assert not other_points & {_point(key) for key in bundled.values()}
    contents = b"".join(path.read_bytes() for path in bundle.rglob("*") if path.is_file())
    for path, key in others.items():
        assert path.read_bytes().strip() not in contents
        assert key.private_numbers().private_value.to_bytes(32, "big") not in contents
        assert format(key.private_numbers().private_value, "x").encode() not in contents


def test_a_site_runs_from_the_bundle_alone(network: Network, bundle: Path, tmp_path: Path) -> None:
    site_home = tmp_path / "dc2-site"
    labels = tmp_path / "labels.csv"
    labels.write_text("entity_id,label\n" + "".join(f"e{i},{'ab'[i % 2]}\n" for i in range(20)))
    code, output = run_cli("site", "data", "add", str(labels), "--modality", "label", "--bundle", str(bundle),
                           "--home", str(site_home))
    assert code == 0, output
    assert not (site_home / "state.json").exists() and (site_home / "sites" / "DC2").is_dir()

    settings = json.loads((bundle / "site.json").read_text())
    agent = subprocess.Popen([sys.executable, "-m", "swarmfuse", "site", "serve", "--bundle", str(bundle), "--home",
                              str(site_home)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        context = ssl.create_default_context(cafile=str(bundle / "tls" / "orgs" / "DC2MSP.pem"))
        context.load_cert_chain(bundle / "site" / "tls" / "client.crt", bundle / "site" / "tls" / "client.key")
        url = f"https://{SITE_ADDRESS}:{settings['site_port']}/status"
        deadline, answer = time.monotonic() + 60, None
        while answer is None:
            assert agent.poll() is None, agent.stdout.read() if agent.stdout else ""
            try:
                with urllib.request.urlopen(url, context=context, timeout=5) as reply:
                    answer = json.loads(reply.read())
            except OSError:
                assert time.monotonic() < deadline, "the agent did not answer"
                time.sleep(0.5)
        assert answer["mspid"] == "DC2MSP" and answer["url"] == f"https://{SITE_ADDRESS}:{settings['site_port']}"
    finally:
        os.killpg(agent.pid, signal.SIGTERM)
        agent.wait(timeout=30)
    with open_task(network.home, TASK, "DC1") as ledger:
        member = ledger.member("DC2MSP")
    assert member is not None and member.endpoint == f"{SITE_ADDRESS}:{settings['site_port']}"


@pytest.mark.parametrize("change", ["altered", "missing", "added"])
def test_a_changed_bundle_is_refused_naming_the_file(bundle: Path, tmp_path: Path, change: str) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    target = copy / "identities" / "user" / "cert.pem"
    if change == "altered":
        data = bytearray(target.read_bytes())
        data[100] ^= 1
        target.write_bytes(bytes(data))
    elif change == "missing":
        target.unlink()
    else:
        target = copy / "tls" / "orgs" / "EvilMSP.pem"
        target.write_text("not a CA\n")
    code, output = run_cli("site", "serve", "--bundle", str(copy), "--home", str(tmp_path / "site"))
    text = " ".join(output.split())
    assert code == 1 and "was changed since it was made" in text and str(target.relative_to(copy)) in text, output
    assert {"altered": "was altered", "missing": "is missing", "added": "is not in the manifest"}[change] in text
