"""A site's consent policy: which rounds it joins, decided by the site alone (``<site>/policy.json``).

Being named a participant commits a site to nothing; its agent joins a round (``Rounds:Join``) only when the
policy allows the round's leader and the modality asked of the site, and it sends no shard of more rows than
the policy allows. A round the policy refuses gets the site's abort vote, naming the reason, and nothing else.
No file means the default: any participant may lead, every modality the site holds is offered, any size.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from swarmfuse.chaincode.contracts.records import Round
from swarmfuse.errors import SwarmfuseError
from swarmfuse.files import write_atomic

POLICY_FILE = "policy.json"


class PolicyError(SwarmfuseError, ValueError):
    """A policy file or setting that cannot be used; the message names the problem."""


class SitePolicy(BaseModel):
    """What the site consents to; ``None`` places no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    leaders: list[str] | None = Field(default=None, description="MSP IDs of the orgs this site lets lead a round")
    modalities: list[str] | None = Field(default=None, description="modalities the site offers (label included)")
    max_rows: int | None = Field(default=None, ge=1, description="most aligned entities the site sends per round")
    max_split_epochs: int | None = Field(default=None, ge=0, description="most split-learning epochs of a round the "
                                         "site takes part in (0: none); a label holder's gradients carry its labels")

    @field_validator("leaders", "modalities")
    @classmethod
    def _distinct(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else sorted(set(values))

    def refusal(self, rnd: Round, mspid: str) -> str | None:
        """Why the site does not join round ``rnd`` (``None``: it consents)."""
        if self.leaders is not None and rnd.leader != mspid and rnd.leader not in self.leaders:
            return f"leader {rnd.leader} is not one this site lets lead ({', '.join(self.leaders) or 'none'})"
        asked = set(rnd.roles[mspid])
        if self.modalities is not None and not asked <= set(self.modalities):
            return (f"the round asks for {', '.join(sorted(asked))}; this site offers "
                    f"{', '.join(self.modalities) or 'nothing'}")
        if self.max_split_epochs is not None and rnd.split_epochs > self.max_split_epochs:
            return (f"the round asks for {rnd.split_epochs} split-learning epochs; this site takes part in at most "
                    f"{self.max_split_epochs}")
        return None

    def too_many_rows(self, rows: int) -> str | None:
        """Why the site does not send a shard of ``rows`` aligned entities (``None``: it may)."""
        if self.max_rows is not None and rows > self.max_rows:
            return f"{rows} aligned entities exceed this site's limit of {self.max_rows} a round"
        return None


def load_policy(folder: Path) -> SitePolicy:
    """The policy in ``folder`` (the default when there is no file)."""
    path = folder / POLICY_FILE
    if not path.exists():
        return SitePolicy()
    try:
        return SitePolicy.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise PolicyError(f"{path} is not a site policy: {exc}") from exc


def save_policy(folder: Path, policy: SitePolicy) -> Path:
    path = folder / POLICY_FILE
    write_atomic(path, (json.dumps(policy.model_dump(), indent=2) + "\n").encode())
    return path
