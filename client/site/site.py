"""Where one org's site lives under a network home, and how other sites reach it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network import state as state_file
from swarmfuse.network.layout import Layout
from swarmfuse.network.topology import HOST, Org, Topology


class SiteError(SwarmfuseError, RuntimeError):
    """A site cannot be set up or used as asked; the message names the problem."""


@dataclass(frozen=True)
class Site:
    """One org's site: its folder ``<home>/sites/<org>``, its agent's port and the task it works on."""

    home: Path
    org_name: str
    task: str

    @cached_property
    def layout(self) -> Layout:
        return Layout(self.home.expanduser().resolve())

    @cached_property
    def topology(self) -> Topology:
        current = state_file.load(self.layout.state_file)
        if current is None:
            raise SiteError(f"no network under {self.layout.home}: run 'swarmfuse network up' first")
        if self.task not in current.tasks:
            raise SiteError(f"no task {self.task!r} in {self.layout.home} (see 'swarmfuse task list')")
        if self.org_name not in current.tasks[self.task].orgs:
            raise SiteError(f"org {self.org_name!r} is not a member of task {self.task!r}")
        return current.topology()

    @property
    def org(self) -> Org:
        return self.topology.org(self.org_name)

    @property
    def mspid(self) -> str:
        return self.org.mspid

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
        return self.layout.profile(self.org)

    @property
    def port(self) -> int:
        return self.topology.peer_ports(self.org).site

    @property
    def host(self) -> str:
        """The address the agent serves on (and its certificate names)."""
        return HOST

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"
