"""Run the ``peer`` CLI as an org's admin (or user) against that org's peer, with TLS."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from swarmfuse.network.binaries import Fabric
from swarmfuse.network.layout import Layout
from swarmfuse.network.procs import run_checked
from swarmfuse.network.topology import Org, Topology


class PeerCli:
    """The ``peer`` command bound to one network home."""

    def __init__(self, fabric: Fabric, topology: Topology, layout: Layout) -> None:
        self.fabric = fabric
        self.topology = topology
        self.layout = layout

    def env(self, org: Org, identity: str = "Admin") -> dict[str, str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "FABRIC_CFG_PATH": str(self.fabric.config_dir),
            "FABRIC_LOGGING_SPEC": "grpc=error:info",
            "CORE_PEER_LOCALMSPID": org.mspid,
            "CORE_PEER_MSPCONFIGPATH": str(self.layout.user_dir(org, identity) / "msp"),
            "CORE_PEER_ADDRESS": f"{self.topology.address}:{self.topology.peer_ports(org).listen}",
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_ROOTCERT_FILE": str(self.layout.org_tls_ca(org)),
        }
        if self.topology.mutual_tls:  # the peers require a client certificate: the identity's own TLS pair
            tls = self.layout.user_dir(org, identity) / "tls"
            env |= {
                "CORE_PEER_TLS_CLIENTAUTHREQUIRED": "true",
                "CORE_PEER_TLS_CLIENTCERT_FILE": str(tls / "client.crt"),
                "CORE_PEER_TLS_CLIENTKEY_FILE": str(tls / "client.key"),
            }
        return env

    def orderer_args(self, name: str | None = None) -> list[str]:
        """``-o`` (first orderer unless named) with the orderer TLS CA."""
        name = name or self.topology.orderers[0]
        port = self.topology.orderer_ports(name).listen
        return ["-o", f"{self.topology.address}:{port}", "--tls", "--cafile", str(self.layout.orderer_tls_ca)]

    def peer_args(self, orgs: Sequence[Org]) -> list[str]:
        """``--peerAddresses``/``--tlsRootCertFiles`` for each org's peer (endorsers of an invoke)."""
        args: list[str] = []
        for org in orgs:
            args += ["--peerAddresses", f"{self.topology.address}:{self.topology.peer_ports(org).listen}",
                     "--tlsRootCertFiles", str(self.layout.org_tls_ca(org))]
        return args

    def run(self, org: Org, *args: str, identity: str = "Admin", timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run ``peer args...`` as ``identity`` of ``org``; the caller checks the exit status."""
        return subprocess.run(
            [self.fabric.bin("peer"), *args], env=self.env(org, identity), capture_output=True, text=True, timeout=timeout,
check=False)

    def check(
        self, org: Org, *args: str, identity: str = "Admin", timeout: float = 120.0, stdout_only: bool = False
    ) -> str:
        """Run ``peer args...``; return its output or raise :class:`CommandFailed`."""
        return run_checked([self.fabric.bin("peer"), *args], env=self.env(org, identity), timeout=timeout, stdout_only=stdout_only)
