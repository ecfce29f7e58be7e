"""A task on the in-memory ledger with named org identities: the stage for consortium contract tests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from cc_identities import AUDITOR, DC1, DC2, DC3, DC4, DC5, identity

from swarmfuse.chaincode.app import create_chaincode
from swarmfuse.chaincode.contract import ContractRouter
from swarmfuse.chaincode.memstub import MemoryLedger
from swarmfuse.chaincode.stub import ClientIdentity, Response

ORGS: dict[str, ClientIdentity] = {"DC1": DC1, "DC2": DC2, "DC3": DC3, "DC4": DC4, "DC5": DC5, "Auditor": AUDITOR}
ORGS |= {f"DC{i}": identity(f"DC{i}MSP") for i in range(6, 10)}
FOUNDERS = ["DC1MSP", "DC2MSP", "DC3MSP"]
MODALITIES = {
    "DC1": ["text"], "DC2": ["image"], "DC3": ["image", "text"], "DC4": ["text"], "DC5": ["image"], "Auditor": ["text"]
} | {f"DC{i}": ["text"] for i in range(6, 10)}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def profile(org: str) -> str:
    return json.dumps(
        {
            "name": f"{org} data centre",
            "endpoint": f"{org.lower()}.example:7443",
            "tls_fingerprint": sha(org),
            "modalities": MODALITIES[org],
        }
    )


def provenance(org: str, modality: str, entities: int = 100, labels: str = "none") -> dict[str, Any]:
    """An extractor's provenance as a site-trained (labels ``none``) or reference (``foreign``) bundle records it."""
    return {
        "recipe": f"site-{modality}-0123456789abcdef",
        "labels": labels,
        "data_sha256": sha(f"{org}/{modality}/manifest/{entities}"),
        "corpus_sha256": sha("20newsgroups") if modality == "text" else None,
        "teacher_sha256": sha("efficientnet-lite0") if modality == "image" else None,
    }


def summary(org: str, modality: str, entities: int = 100, labels: str | None = None) -> str:
    """A summary; with ``labels``, its extractor's provenance says whose labels shaped it."""
    found = {
        "modality": modality,
        "entity_count": entities,
        "feature_dim": 400 if modality == "text" else 2048,
        "manifest_sha256": sha(f"{org}/{modality}/manifest/{entities}"),
        "entity_commitment": sha(f"{org}/ids"),
        "extractor": "awd-lstm" if modality == "text" else "resnet50",
        "extractor_onnx_sha256": sha(f"{modality}.onnx"),
        "labels": ["animals", "food"] if org == "DC3" else None,
    }
    if labels is not None:
        found["extractor_provenance"] = provenance(org, modality, entities, labels)
    return json.dumps(found)


@cache
def chaincode() -> ContractRouter:
    return create_chaincode()


@dataclass
class World:
    ledger: MemoryLedger = field(default_factory=MemoryLedger)

    @property
    def now(self) -> datetime:
        """The wall-clock time of the last transaction."""
        return self.ledger.clock

    @property
    def next_time(self) -> datetime:
        """The wall-clock time the next transaction runs at (the ledger ticks before each one)."""
        return self.ledger.clock + self.ledger.tick

    def submit(
        self, org: str | ClientIdentity, function: str, *args: str, at: datetime | None = None, tx_id: str | None = None
    ) -> Response:
        """Submit as ``org``; ``at`` forges the proposal timestamp, ``tx_id`` the transaction ID."""
        who = ORGS[org] if isinstance(org, str) else org
        return self.ledger.submit(chaincode(), who, function, *args, at=at, tx_id=tx_id)

    def query(self, org: str | ClientIdentity, function: str, *args: str, at: datetime | None = None) -> Response:
        who = ORGS[org] if isinstance(org, str) else org
        return self.ledger.evaluate(chaincode(), who, function, *args, at=at)

    def ok(self, org: str | ClientIdentity, function: str, *args: str, at: datetime | None = None) -> Any:
        response = self.submit(org, function, *args, at=at)
        assert response.status == 200, f"{function} by {org}: {response.message}"
        return json.loads(response.payload) if response.payload else None

    def read(self, org: str | ClientIdentity, function: str, *args: str) -> Any:
        response = self.query(org, function, *args)
        assert response.status == 200, f"{function} by {org}: {response.message}"
        return json.loads(response.payload)

    def refused(
        self,
        org: str | ClientIdentity,
        function: str,
        *args: str,
        status: int,
        fragment: str = "",
        error: str = "",
        at: datetime | None = None,
        tx_id: str | None = None,
    ) -> str:
        """Submit, expect a refusal with ``status`` (and typed ``error``) mentioning ``fragment``; nothing changed."""
        before = self.ledger.snapshot()
        response = self.submit(org, function, *args, at=at, tx_id=tx_id)
        assert response.status == status, (
            f"{function} by {org}: expected {status}, got {response.status} {response.message}"
        )
        assert fragment in response.message, response.message
        if error:
            assert response.message.startswith(f"{error}: "), response.message
        assert self.ledger.snapshot() == before
        return response.message

    def join_all(self, round_id: str) -> dict[str, Any]:
        """Every participant that has not joined ``round_id`` joins it; the round as it then stands."""
        rnd = self.read("DC1", "Rounds:Get", round_id)
        for participant in rnd["participants"]:
            if participant not in rnd["joined"]:
                self.ok(participant.removesuffix("MSP"), "Rounds:Join", round_id)
        return self.read("DC1", "Rounds:Get", round_id)

    def deadline(self, hours: float = 1) -> str:
        return json.dumps((self.now + timedelta(hours=hours)).isoformat())

    def round_spec(
        self, participants: tuple[str, ...] = ("DC1", "DC2", "DC3"), hours: float = 1, **changes: Any
    ) -> str:
        spec = {
            "participants": [f"{p}MSP" for p in participants],
            "roles": {f"{p}MSP": MODALITIES[p][:1] for p in participants},
            "label_holder": f"{participants[-1]}MSP",
            "method": "intermediate",
            "model_spec_sha256": sha("fusion-head-v1"),
            "deadline": (self.now + timedelta(hours=hours)).isoformat(),
        }
        spec.update(changes)
        return json.dumps(spec)


def task_config(
    founders: list[str] | None = None, auditors: tuple[str, ...] = ("AuditorMSP",), deadline_window_s: int | None = None
) -> str:
    config: dict[str, Any] = {"task": "task1", "founders": founders or FOUNDERS, "auditors": list(auditors)}
    if deadline_window_s is not None:
        config["deadline_window_s"] = deadline_window_s
    return json.dumps(config)


def config_sha256(config: str) -> str:
    """What a founder computes to confirm ``config``: SHA-256 of its canonical JSON (lists sorted)."""
    plain = json.loads(config)
    canonical = {
        "auditors": sorted(plain.get("auditors", [])), "deadline_window_s": plain.get("deadline_window_s", 600),
        "founders": sorted(plain["founders"]), "task": plain["task"]
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def initialised(founders: list[str] | None = None, deadline_window_s: int | None = None) -> World:
    """A task proposed by the first founder and confirmed by every other one (active)."""
    world = World()
    config = task_config(founders, deadline_window_s=deadline_window_s)
    names = sorted(json.loads(config)["founders"])
    world.ok(names[0].removesuffix("MSP"), "Task:Init", config)
    for org in names[1:]:
        world.ok(org.removesuffix("MSP"), "Task:Confirm", config_sha256(config))
    return world


def founded(members: tuple[str, ...] = ("DC1", "DC2", "DC3"), deadline_window_s: int | None = None) -> World:
    """Task of founders DC1-DC3 and the auditor org, active; ``members`` registered."""
    world = initialised(deadline_window_s=deadline_window_s)
    for org in members:
        world.ok(org, "Membership:Register", profile(org))
    return world


def consortium(size: int) -> World:
    """``size`` active members: founders DC1-DC3 (or DC1-DC2 when ``size`` is 2), then DC4... admitted."""
    founders = [f"DC{i}MSP" for i in range(1, min(size, 3) + 1)]
    world = initialised(founders)
    for msp in founders:
        world.ok(msp.removesuffix("MSP"), "Membership:Register", profile(msp.removesuffix("MSP")))
    for i in range(len(founders) + 1, size + 1):
        newcomer = f"DC{i}"
        world.ok(newcomer, "Membership:Register", profile(newcomer))
        for j in range(1, i):
            if world.read("DC1", "Membership:Get", f"{newcomer}MSP")["status"] == "active":
                break
            world.ok(f"DC{j}", "Membership:Approve", f"{newcomer}MSP")
    return world
