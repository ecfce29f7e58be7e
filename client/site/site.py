"""Where one org's site lives under a network home, and how other sites reach it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from swarmfuse.client.ledger import task_topology
from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.bundle import SiteBundle
from swarmfuse.network.layout import Layout
from swarmfuse.network.topology import Org, Topology, check_listen_address


class SiteError(SwarmfuseError, RuntimeError):
    """A site cannot be set up or used as asked; the message names the problem."""


@dataclass(frozen=True)
class Site:
    """One org's site: its folder ``<home>/sites/<org>``, its agent's address and port, and the task it works on.
    ``address`` is the IPv4 address the agent binds to and other sites reach (default: the network's). A site
    started from a ``bundle`` takes its org, address, port and connection profile from it, and ``home`` holds
    only its own folder (no network)."""

    home: Path
    org_name: str
    task: str
    address: str | None = None
    bundle: SiteBundle | None = None

    def __post_init__(self) -> None:
        if self.address is not None:
            check_listen_address(self.address)

    @cached_property
    def layout(self) -> Layout:
        return Layout(self.home.expanduser().resolve())

    @cached_property
    def topology(self) -> Topology:
        """The network's topology, once the task and this org are known to be in it (else ``TaskUnknown``)."""
        return task_topology(self.home, self.task, self.org_name)

    @property
    def org(self) -> Org:
        return self.topology.org(self.org_name)

    @property
    def mspid(self) -> str:
        return self.bundle.settings.mspid if self.bundle else self.org.mspid

    @property
    def folder(self) -> Path:
        return self.layout.home / "sites" / self.org_name

    @property
    def artefacts(self) -> Path:
        return self.folder / "artefacts"

    @property
    def extractors(self) -> Path:
        return self.folder / "extractors"

    def round_dir(self, round_id: str) -> Path:
        return self.folder / "rounds" / round_id

    @property
    def profile(self) -> Path:
        return self.bundle.profile if self.bundle else self.layout.profile(self.org)

    @property
    def port(self) -> int:
        return self.bundle.settings.site_port if self.bundle else self.topology.peer_ports(self.org).site

    @property
    def host(self) -> str:
        """The address the agent serves on (and its certificate names)."""
        if self.address:
            return self.address
        return self.bundle.settings.site_address if self.bundle else self.topology.address

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"
