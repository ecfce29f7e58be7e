"""A task on the in-memory ledger with named org identities: the stage for consortium contract tests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from cc_identities import AUDITOR, DC1, DC2, DC3, DC4, DC5

from swarmfuse.chaincode.app import create_chaincode
from swarmfuse.chaincode.contract import ContractRouter
from swarmfuse.chaincode.memstub import MemoryLedger
from swarmfuse.chaincode.stub import ClientIdentity, Response

ORGS: dict[str, ClientIdentity] = {"DC1": DC1, "DC2": DC2, "DC3": DC3, "DC4": DC4, "DC5": DC5, "Auditor": AUDITOR}
FOUNDERS = ["DC1MSP", "DC2MSP", "DC3MSP"]
MODALITIES = {
    "DC1": ["text"], "DC2": ["image"], "DC3": ["image", "text"], "DC4": ["text"], "DC5": ["image"], "Auditor": ["text"]
}


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


def summary(org: str, modality: str, entities: int = 100) -> str:
    return json.dumps(
        {
            "modality": modality,
            "entity_count": entities,
            "feature_dim": 400 if modality == "text" else 2048,
            "manifest_sha256": sha(f"{org}/{modality}/manifest/{entities}"),
            "entity_commitment": sha(f"{org}/ids"),
            "extractor": "awd-lstm" if modality == "text" else "resnet50",
            "extractor_onnx_sha256": sha(f"{modality}.onnx"),
            "labels": ["animals", "food"] if org == "DC3" else None,
        }
    )


@cache
def chaincode() -> ContractRouter:
    return create_chaincode()


@dataclass
class World:
    ledger: MemoryLedger = field(default_factory=MemoryLedger)

    @property
    def now(self) -> datetime:
        return self.ledger.clock

    def submit(self, org: str | ClientIdentity, function: str, *args: str) -> Response:
        who = ORGS[org] if isinstance(org, str) else org
        return self.ledger.submit(chaincode(), who, function, *args)

    def query(self, org: str | ClientIdentity, function: str, *args: str) -> Response:
        who = ORGS[org] if isinstance(org, str) else org
        return self.ledger.evaluate(chaincode(), who, function, *args)

    def ok(self, org: str | ClientIdentity, function: str, *args: str) -> Any:
        response = self.submit(org, function, *args)
        assert response.status == 200, f"{function} by {org}: {response.message}"
        return json.loads(response.payload) if response.payload else None

    def read(self, org: str | ClientIdentity, function: str, *args: str) -> Any:
        response = self.query(org, function, *args)
        assert response.status == 200, f"{function} by {org}: {response.message}"
        return json.loads(response.payload)

    def refused(self, org: str | ClientIdentity, function: str, *args: str, status: int, fragment: str = "") -> str:
        """Submit, expect a refusal with ``status`` mentioning ``fragment``, and check nothing changed."""
        before = self.ledger.snapshot()
        response = self.submit(org, function, *args)
        assert response.status == status, (
            f"{function} by {org}: expected {status}, got {response.status} {response.message}"
        )
        assert fragment in response.message, response.message
        assert self.ledger.snapshot() == before
        return response.message

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


def founded(members: tuple[str, ...] = ("DC1", "DC2", "DC3")) -> World:
    """Task initialised by DC1 with founders DC1-DC3 and the auditor org; ``members`` registered."""
    world = World()
    world.ok("DC1", "Task:Init", json.dumps({"task": "task1", "founders": FOUNDERS, "auditors": ["AuditorMSP"]}))
    for org in members:
        world.ok(org, "Membership:Register", profile(org))
    return world
