"""One task across hosts (issue 21), the hosts being Linux network namespaces joined by veth pairs on a bridge.

Each role gets a namespace of its own with a private address (10.87.0.0/24, used only inside them): the ledger (the
embedded engine, ``network up --address 10.87.0.1``), the site agents of DC1, DC2 and DC3 (10.87.0.11-13), and the
auditor (10.87.0.30); the bridge sits in a sixth namespace, so the host's own network is never touched. Every command
runs as ``ip netns exec NS swarmfuse ...``. The ledger's host makes one bundle per org (``network bundle
--site-address``); each DC's folder (bundle, site home, its own data) receives only its own bundle, and no role's
folder holds another org's private key (every PEM private key found is matched to its org). A round opened from DC1's
host through its bundle closes, and every site holds the model the ledger names. In a second round one feature site's
veth goes down for 30 s right after the round opens (the round cannot close without that site) and comes back up:
the round still ends ``closed``. ``audit verify --bundle`` from the auditor's namespace exits 0. Teardown, also after
a failure, stops the agents and the network, kills whatever is still in a namespace and deletes every namespace (their
veths and the bridge go with them); the test then checks that none is left and that no process was.

The same steps on this host's loopback (127.0.0.x, no namespace) give the round's time without them: both figures
are printed (``multihost:`` lines) and recorded as properties. The sites' extractors are the new-DC test's (the same
synthetic data, tests/synthetic_sites.py): trained once per machine, then cached.

Needs root and ``ip`` (Debian's iproute2, installed by scripts/test_deps.sh); without either the test FAILS.
``SWARMFUSE_TEST_MULTIHOST=0`` opts out (scripts/test.sh says so at the end).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pytest
from cli_runner import run_cli
from conftest import free_port_base
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from synthetic_sites import MODALITIES, ORGS, ROLES, make_data

from swarmfuse.client.demo.job import stop_agent
from swarmfuse.network import state as state_file
from swarmfuse.network.layout import Layout

pytestmark = [pytest.mark.multihost, pytest.mark.integration]

OPT_OUT = "SWARMFUSE_TEST_MULTIHOST"
TASK = "hosts"
ROLE_NAMES = ("ledger", *ORGS, "Auditor")
HOST_NUMBERS = {"ledger": 1, "DC1": 11, "DC2": 12, "DC3": 13, "Auditor": 30}
OUTAGE = 30.0
PRIVATE = b"PRIVATE KEY-----"
FIGURES: dict[str, float] = {}


def require_namespaces(loopback: bool = False) -> None:
    """Fail (never skip silently) where namespaces cannot be made, unless the opt-out says to skip (the loopback
    baseline needs neither root nor ip, but is skipped with the rest)."""
    if os.environ.get(OPT_OUT) == "0":
        pytest.skip(f"{OPT_OUT}=0: the multi-host test (network namespaces) opted out")
    if loopback:
        return
    missing = []
    if os.geteuid() != 0:
        missing.append("root (it creates network namespaces, veth pairs and a bridge)")
    if shutil.which("ip") is None:
        missing.append("the ip command (Debian package iproute2; scripts/test_deps.sh installs it)")
    if missing:
        pytest.fail(f"the multi-host test needs {' and '.join(missing)}; {OPT_OUT}=0 opts out of it", pytrace=False)


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Hosts:
    """Where each role runs: a namespace of its own (``isolated``), or this host's loopback."""

    root: Path
    isolated: bool
    tag: str = field(default_factory=lambda: f"sfmh{os.getpid() % 100000}")
    agents: list[subprocess.Popen[bytes]] = field(default_factory=list)
    leftovers: dict[str, list[int]] = field(default_factory=dict)

    def namespace(self, role: str) -> str:
        return f"{self.tag}-{role.lower()}"

    @property
    def hub(self) -> str:
        return f"{self.tag}-hub"

    @property
    def namespaces(self) -> list[str]:
        return [self.hub, *map(self.namespace, ROLE_NAMES)]

    def address(self, role: str) -> str:
        return f"{'10.87.0' if self.isolated else '127.0.0'}.{HOST_NUMBERS[role]}"

    def folder(self, role: str) -> Path:
        """The role's host's files (in namespaces, nothing else of the test is handed to it)."""
        return self.root / role.lower()

    def home(self, role: str) -> Path:
        return self.folder(role) / "home"

    def bundle(self, role: str) -> Path:
        return self.folder(role) / "bundle"

    def command(self, role: str, *args: str) -> list[str]:
        prefix = ["ip", "netns", "exec", self.namespace(role)] if self.isolated else []
        return [*prefix, sys.executable, "-m", "swarmfuse", *args]

    def run(self, role: str, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``swarmfuse *args`` on ``role``'s host; the test fails on a non-zero exit (with the output) if ``check``."""
        done = subprocess.run(self.command(role, *args), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "COLUMNS": "200"}, check=False)
        assert not check or done.returncode == 0, (f"[{role}] swarmfuse {' '.join(args)} exited {done.returncode}:\n"
                                                   f"{done.stdout}\n{done.stderr}")
        return done

    def serve(self, role: str) -> None:
        """``site serve --bundle`` on ``role``'s host, in a session of its own, logging to its folder."""
        with (self.folder(role) / "agent.log").open("ab") as log:
            self.agents.append(subprocess.Popen(
                self.command(role, "site", "serve", "--bundle", str(self.bundle(role)), "--home", str(self.home(role))),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def set_link(self, role: str, up: bool) -> None:
        ip("-n", self.hub, "link", "set", f"h-{role.lower()}", "up" if up else "down")

    # --- set-up and teardown ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        for role in ROLE_NAMES:
            self.folder(role).mkdir(parents=True)
        if not self.isolated:
            return self
        try:
            for name in self.namespaces:
                if name in ip("netns", "list").split():  # a run of this pid that was killed outright
                    ip("netns", "del", name)
                ip("netns", "add", name)
            ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            ip("-n", self.hub, "link", "set", "br0", "up")
            for role in ROLE_NAMES:
                namespace, veth = self.namespace(role), f"h-{role.lower()}"
                ip("-n", self.hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
                ip("-n", self.hub, "link", "set", veth, "master", "br0", "up")
                ip("-n", namespace, "addr", "add", f"{self.address(role)}/24", "dev", "eth0")
                ip("-n", namespace, "link", "set", "eth0", "up")
                ip("-n", namespace, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the agents and the network; in namespaces, kill what is left in each (noted in ``leftovers``) and
        delete them all."""
        for agent in self.agents:
            stop_agent(agent)
        if (self.home("ledger") / "state.json").exists():
            self.run("ledger", "network", "down", "--home", str(self.home("ledger")), timeout=300, check=False)
        if not self.isolated:
            return
        listed = ip("netns", "list", check=False).split()
        for name in self.namespaces:
            if name not in listed:
                continue
            pids = [int(pid) for pid in ip("netns", "pids", name, check=False).split()]
            if pids:
                self.leftovers[name] = pids
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            ip("netns", "del", name, check=False)


def host_links() -> set[str]:
    """The veth and bridge interfaces of the host's own namespace, by name."""
    return {line.split(":")[1].strip().split("@")[0] for kind in ("veth", "bridge")
            for line in ip("-o", "link", "show", "type", kind).splitlines()}


def private_keys(folder: Path) -> dict[Path, ec.EllipticCurvePrivateKey]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() and PRIVATE in path.read_bytes():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey), path
            found[path] = key
    return found


def point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def key_owner(path: Path, key: ec.EllipticCurvePrivateKey, home_keys: dict[bytes, str],
              tls_cas: dict[str, x509.Certificate]) -> str:
    """The org whose key this is: the one under whose folder of the network home it is, or (a site's pair, issued
    by ``network bundle``) the org whose TLS CA signed the certificate beside it that carries its public key."""
    mine = point(key.public_key())
    if mine in home_keys:
        return home_keys[mine]
    for cert_path in path.parent.glob("*.crt"):
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if point(cert.public_key()) == mine:  # type: ignore[arg-type]
            for org, ca in tls_cas.items():
                try:
                    cert.verify_directly_issued_by(ca)
                except (ValueError, TypeError):
                    continue
                return org
    return "nobody known"


def home_key_owners(home: Path) -> tuple[dict[bytes, str], dict[str, x509.Certificate]]:
    """Every private key of the network home by its public point, with its org (``orderer`` for the orderer org's),
    and each org's TLS CA certificate."""
    layout = Layout(home)
    state = state_file.load(layout.state_file)
    assert state is not None
    orgs = state.topology().orgs
    owners: dict[bytes, str] = {}
    for path, key in private_keys(home).items():
        owner = next((org.name for org in orgs if path.is_relative_to(layout.org_dir(org))), "orderer")
        owners[point(key.public_key())] = owner
    cas = {org.name: x509.load_pem_x509_certificate(layout.org_tls_ca(org).read_bytes()) for org in orgs}
    return owners, cas


def round_state(hosts: Hosts, round_id: str) -> tuple[str, str]:
    """The round's state and the output of ``round status`` from DC1's host (through its bundle)."""
    out = hosts.run("DC1", "round", "status", round_id, "--bundle", str(hosts.bundle("DC1")), "--home",
                    str(hosts.home("DC1")), timeout=120).stdout
    found = re.search(rf"round {round_id}: (\w+)", out)
    assert found is not None, out
    return found.group(1), out


def wait_until_ended(hosts: Hosts, round_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state, out = round_state(hosts, round_id)
        if state in ("closed", "aborted") or time.monotonic() > deadline:
            return out
        assert all(agent.poll() is None for agent in hosts.agents), "a site agent exited; see its agent.log"
        time.sleep(1)


def bring_up(hosts: Hosts, data: Path, port_base: int) -> None:
    """The network on the ledger's host, one bundle per org handed to its host, each DC's data and extractor added,
    its agent serving."""
    ledger = ("--home", str(hosts.home("ledger")))
    hosts.run("ledger", "network", "up", "--orgs", "3", "--auditor", "--engine", "embedded", "--address",
              hosts.address("ledger"), "--port-base", str(port_base), *ledger)
    hosts.run("ledger", "task", "create", TASK, "--orgs", f"{','.join(ORGS)},Auditor", *ledger)
    for role in (*ORGS, "Auditor"):
        # files only (no listener, no connection): made in this process from the ledger host's home
        made = hosts.folder("ledger") / f"bundle-{role}"
        code, output = run_cli("network", "bundle", str(made), "--org", role, "--task", TASK, "--site-address",
                               hosts.address(role), *ledger)
        assert code == 0, output
        shutil.copytree(made, hosts.bundle(role))  # what reaches the org's host: its bundle alone
        shutil.rmtree(made)
    manifests = make_data(data)
    for org in ORGS:
        own = hosts.folder(org) / "data"
        if org == "DC3":
            shutil.copytree(data / "images", own / "images")
        else:
            own.mkdir()
        manifest = shutil.copy(manifests[org], own / manifests[org].name)
        if MODALITIES[org] != "label":
            # Trained outside the namespaces (they have no route out: the public corpus and teacher may be fetched
            # on first use), into the DC's own site home; cached, as in the new-DC test (same data, same options).
            epochs = ("--epochs", "2") if MODALITIES[org] == "image" else ()
            done = subprocess.run([sys.executable, "-m", "swarmfuse", "site", "extractor", "train", str(manifest),
                                   "--modality", MODALITIES[org], *epochs, "--org", org, "--task", TASK, "--home",
                                   str(hosts.home(org))], capture_output=True, text=True, timeout=1800, check=False)
            assert done.returncode == 0, done.stdout + done.stderr
        hosts.run(org, "site", "data", "add", str(manifest), "--modality", MODALITIES[org], "--bundle",
                  str(hosts.bundle(org)), "--home", str(hosts.home(org)))
    for org in ORGS:
        hosts.serve(org)


def open_round(hosts: Hosts, round_id: str) -> str:
    """Open a round from DC1's host; its leader's org name."""
    out = hosts.run("DC1", "round", "open", round_id, "--roles", ROLES, "--label-holder", "DC1", "--bundle",
                    str(hosts.bundle("DC1")), "--home", str(hosts.home("DC1"))).stdout
    leader = re.search(r"leader (DC\d)MSP", out)
    assert leader is not None, out
    return leader.group(1)


def closed_round(hosts: Hosts, round_id: str) -> float:
    """Open ``round_id``, wait until it closes, check every site holds the model the ledger names; seconds taken."""
    started = time.monotonic()
    open_round(hosts, round_id)
    status = wait_until_ended(hosts, round_id)
    seconds = time.monotonic() - started
    assert f"round {round_id}: closed" in status, status
    model = re.search(r"model ([0-9a-f]{64})", status)
    assert model is not None, status
    for org in ORGS:
        held = hosts.home(org) / "sites" / org / "rounds" / round_id / "model.npz"
        assert hashlib.sha256(held.read_bytes()).hexdigest() == model.group(1), org
    return seconds


def report(capsys: pytest.CaptureFixture[str], record_property: object, name: str, seconds: float) -> None:
    FIGURES[name] = seconds
    record_property(name, round(seconds, 1))  # type: ignore[operator]
    with capsys.disabled():
        print(f"\nmultihost: {name} {seconds:.1f} s", file=sys.stderr)


@pytest.mark.timeout(900)
def test_the_round_on_loopback(tmp_path: Path, capsys: pytest.CaptureFixture[str], record_property: object) -> None:
    """The baseline: the same steps with every role on this host's loopback addresses."""
    require_namespaces(loopback=True)
    started = time.monotonic()
    with Hosts(tmp_path / "hosts", isolated=False) as hosts:
        bring_up(hosts, tmp_path / "data", free_port_base())
        seconds = closed_round(hosts, "R1")
    report(capsys, record_property, "round time on loopback", seconds)
    report(capsys, record_property, "loopback test time", time.monotonic() - started)


@pytest.mark.timeout(900)
def test_a_round_across_namespaces_closes_through_an_outage_and_verifies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], record_property: object) -> None:
    require_namespaces()
    started, links_before = time.monotonic(), host_links()
    with Hosts(tmp_path / "hosts", isolated=True) as hosts:
        bring_up(hosts, tmp_path / "data", 17000)
        seconds = closed_round(hosts, "R1")

        # one feature site's link down for 30 s right after the round opens: the round cannot close without it
        opened = time.monotonic()
        leader = open_round(hosts, "R2")
        victim = next(org for org in ("DC3", "DC2") if org != leader)
        hosts.set_link(victim, up=False)
        cut = time.monotonic()
        try:
            time.sleep(max(0.0, OUTAGE - 3))
            state, out = round_state(hosts, "R2")
            assert state not in ("closed", "aborted"), f"R2 ended while {victim} was cut off:\n{out}"
            time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut)))
        finally:
            hosts.set_link(victim, up=True)
        status = wait_until_ended(hosts, "R2")
        assert "round R2: closed" in status, status
        outage_round = time.monotonic() - opened

        verified = hosts.run("Auditor", "audit", "verify", "--bundle", str(hosts.bundle("Auditor")), "--out",
                             str(hosts.folder("Auditor") / "report"), "--home", str(hosts.home("Auditor")))
        assert "verified" in verified.stdout, verified.stdout
        checked = (hosts.folder("Auditor") / "report" / "report.json").read_text()
        assert f"is the genesis block of {hosts.bundle('Auditor') / 'genesis.block'}" in checked  # block 0 checked

        home_keys, tls_cas = home_key_owners(hosts.home("ledger"))
        for role in (*ORGS, "Auditor"):
            keys = private_keys(hosts.folder(role))
            owners = {str(path.relative_to(hosts.folder(role))): key_owner(path, key, home_keys, tls_cas)
                      for path, key in keys.items()}
            assert len(keys) >= 6, owners  # admin and user (signing, client TLS), the site's server and client TLS
            assert set(owners.values()) == {role}, f"{role}'s folder holds keys of others: {owners}"
        pids = {name: ip("netns", "pids", name).split() for name in hosts.namespaces}
        assert any(pids.values()), "no process ran in the namespaces"
    listed = ip("netns", "list").split()
    assert [name for name in hosts.namespaces if name in listed] == [], "a namespace was left"
    assert hosts.leftovers == {}, f"processes left in the namespaces after the agents and the network stopped: " \
                                  f"{hosts.leftovers}"
    assert all(agent.poll() is not None for agent in hosts.agents)
    assert host_links() <= links_before, "a veth or bridge was left in the host's own namespace"
    report(capsys, record_property, "round time across namespaces", seconds)
    report(capsys, record_property, f"round time across namespaces with a {OUTAGE:.0f} s outage", outage_round)
    report(capsys, record_property, "namespaces test time", time.monotonic() - started)
    if "round time on loopback" in FIGURES:
        with capsys.disabled():
            print(f"multihost: round {seconds:.1f} s across namespaces vs {FIGURES['round time on loopback']:.1f} s "
                  "on loopback", file=sys.stderr)
