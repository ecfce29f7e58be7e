"""One organisation's own home (``swarmfuse org init``): its CA, TLS CA, MSP, peer and user identities made
on its own host, in the tree ``cryptogen`` writes (``crypto/peerOrganizations/<domain>``), and ``org.json``
naming the org. Private keys are written 0600 and never leave the home; ``swarmfuse org export`` writes the
org's public definition (:class:`~swarmfuse.network.orgdef.OrgDefinitionFile`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from swarmfuse.files import write_atomic
from swarmfuse.network.cryptomaterial import generate_peer_org
from swarmfuse.network.errors import InvalidInput
from swarmfuse.network.layout import Layout
from swarmfuse.network.orgdef import OrgDefinitionFile, check_org_name, parse_address

logger = logging.getLogger(__name__)

ORG_FILE = "org.json"


class OrgRecord(BaseModel):
    """``<home>/org.json``: the org this home holds and the address its peer is reached at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    mspid: str
    domain: str
    address: str


@dataclass(frozen=True)
class OrgHome:
    """The paths of one org's home."""

    home: Path
    record: OrgRecord

    @property
    def org_dir(self) -> Path:
        return self.home / "crypto" / "peerOrganizations" / self.record.domain

    def user_dir(self, user: str) -> Path:
        """``Admin`` or ``User1``: the user's ``msp/`` and ``tls/`` folders."""
        return self.org_dir / "users" / f"{user}@{self.record.domain}"

    def definition(self) -> OrgDefinitionFile:
        """The org's public definition: MSP ID, CA and TLS CA certificates, its peer's address as anchor peer."""
        msp = self.org_dir / "msp"
        return OrgDefinitionFile(
            name=self.record.name, mspid=self.record.mspid,
            ca_certs=[path.read_text() for path in sorted((msp / "cacerts").glob("*.pem"))],
            tls_ca_certs=[path.read_text() for path in sorted((msp / "tlscacerts").glob("*.pem"))],
            anchor_peers=[self.record.address],
        )


def init_org(home: Path, name: str, address: str, domain: str | None = None,
             sans: tuple[str, ...] = ()) -> OrgHome:
    """Make org ``name``'s material in a new home: its peer ``peer0.<domain>`` is reached at ``address``
    (``host:port``; the host is a TLS SAN of the peer, with ``sans``). :class:`InvalidInput` when the home
    already holds an org or a network, or an argument is malformed."""
    check_org_name(name)
    host, _ = parse_address(address)
    domain = domain or f"{name.lower()}.swarmfuse.local"
    home = home.expanduser().resolve()
    if (home / ORG_FILE).exists() or (home / "crypto").exists():
        raise InvalidInput(f"{home} already holds an org's material; an org is made once (its keys are its identity)")
    if Layout(home).state_file.exists():
        raise InvalidInput(f"{home} is a network home; make the org in a home of its own")
    record = OrgRecord(name=name, mspid=f"{name}MSP", domain=domain, address=address)
    org_home = OrgHome(home, record)
    generate_peer_org(org_home.org_dir.parent, name, domain, (host, *sans))
    write_atomic(home / ORG_FILE, (record.model_dump_json(indent=2) + "\n").encode())
    logger.info("made org %s (%s) under %s", name, record.mspid, home)
    return org_home


def open_org_home(home: Path) -> OrgHome:
    """The org home under ``home``; :class:`InvalidInput` when there is none."""
    home = home.expanduser().resolve()
    path = home / ORG_FILE
    if not path.is_file():
        raise InvalidInput(f"{home} holds no org (no {ORG_FILE}): run 'swarmfuse org init' first")
    return OrgHome(home, OrgRecord.model_validate_json(path.read_text()))
