"""Where everything lives under a network home."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swarmfuse.network.topology import ORDERER_DOMAIN, Org, Topology


@dataclass(frozen=True)
class Layout:
    """Paths under one home directory."""

    home: Path

    @property
    def state_file(self) -> Path:
        return self.home / "state.json"

    @property
    def crypto(self) -> Path:
        return self.home / "crypto"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def data_dir(self, node: str) -> Path:
        return self.home / "data" / node

    def channel_dir(self, channel: str) -> Path:
        return self.home / "channels" / channel

    @property
    def builder_dir(self) -> Path:
        """The home's copy of the external chaincode builder (``bin/detect|build|release``)."""
        return self.home / "builders" / "ccaas"

    def chaincode_dir(self, org: Org) -> Path:
        return self.home / "chaincode" / org.name

    def profile(self, org: Org | str) -> Path:
        name = org if isinstance(org, str) else org.name
        return self.home / "orgs" / name / "connection.json"

    # --- crypto material written by cryptogen ---
    def org_dir(self, org: Org) -> Path:
        return self.crypto / "peerOrganizations" / org.domain

    def peer_dir(self, org: Org) -> Path:
        return self.org_dir(org) / "peers" / org.peer_host

    def user_dir(self, org: Org, user: str) -> Path:
        return self.org_dir(org) / "users" / f"{user}@{org.domain}"

    def org_tls_ca(self, org: Org) -> Path:
        return self.org_dir(org) / "tlsca" / f"tlsca.{org.domain}-cert.pem"

    @property
    def orderer_org_dir(self) -> Path:
        return self.crypto / "ordererOrganizations" / ORDERER_DOMAIN

    def orderer_dir(self, topology: Topology, name: str) -> Path:
        return self.orderer_org_dir / "orderers" / topology.orderer_host(name)

    @property
    def orderer_tls_ca(self) -> Path:
        return self.orderer_org_dir / "tlsca" / f"tlsca.{ORDERER_DOMAIN}-cert.pem"

    @property
    def orderer_admin_dir(self) -> Path:
        return self.orderer_org_dir / "users" / f"Admin@{ORDERER_DOMAIN}"


def msp_key_pair(msp: Path) -> tuple[Path, Path]:
    """The signing certificate and private key of an MSP folder, as cryptogen lays it out."""
    return next((msp / "signcerts").glob("*.pem")), next((msp / "keystore").iterdir())
