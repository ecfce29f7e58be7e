"""Scoring new entities with a round's fused model, on the record: the requesting site records the request
(``Scoring:Request``: a commitment to the IDs, their count, the sites asked); every participant whose
features the model takes extracts them for exactly those entities at its own site (with its ONNX extractor),
records its reply (``Scoring:Reply``) and sends it over mutual TLS; the requester keeps a reply only if it
matches that record, then runs the head (standardise, Linear-ReLU-Linear, softmax) in NumPy."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swarmfuse.client.site.site import SiteError
from swarmfuse.extractors.data.cache import sha256_file


@dataclass(frozen=True)
class FusedModel:
    """A fused head as published by a round: its weights, the layout of its input and its classes."""

    layout: list[dict[str, Any]]
    classes: list[str]
    arrays: dict[str, np.ndarray]

    @classmethod
    def load(cls, path: Path) -> FusedModel:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["__layout__"].tobytes())
            arrays = {name: data[name] for name in data.files if not name.startswith("__")}
        return cls(meta["layout"], meta["classes"], arrays)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        hidden = np.maximum(((x - a["mean"]) / a["std"]) @ a["net.0.weight"].T + a["net.0.bias"], 0.0)
        logits = hidden @ a["net.3.weight"].T + a["net.3.bias"]
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def scoring_commitment(salt: bytes, ids: list[str]) -> str:
    """What a scoring request commits to on-chain: SHA-256 of the salt and the sorted IDs, one per line."""
    return hashlib.sha256(salt + "\n".join(sorted(ids)).encode()).hexdigest()


def reply_sha256(features: np.ndarray) -> str:
    """What a scoring reply records on-chain: SHA-256 of the features as float32 bytes (rows in request order)."""
    return hashlib.sha256(np.ascontiguousarray(features, dtype=np.float32).tobytes()).hexdigest()


def predict(agent: Any, round_id: str, ids: list[str]) -> list[dict[str, Any]]:
    """Class and probability of each entity in ``ids``, with features from every site the model needs."""
    if len(set(ids)) != len(ids) or not ids:
        raise SiteError("give one or more distinct entity IDs to score")
    rnd = agent.ledger.round(round_id)
    if rnd.model_sha256 is None:
        raise SiteError(f"round {round_id} has no published model")
    path = agent.model_path(round_id)
    if not path.exists() or sha256_file(path) != rnd.model_sha256:
        raise SiteError(f"this site holds no verified model of round {round_id} (its agent fetches it on ModelFused)")
    model = FusedModel.load(path)
    targets = sorted({part["org"] for part in model.layout} - {agent.mspid})
    request_id, salt = secrets.token_hex(16), secrets.token_bytes(32)
    if targets:
        agent.ledger.request_scoring(round_id, request_id, scoring_commitment(salt, ids), len(ids), targets)
    blocks = []
    for part in model.layout:
        if part["org"] == agent.mspid:
            features = agent.features_for(round_id, part["modality"], ids)
        else:
            features = agent.link.features(agent.peer(part["org"]), round_id, request_id, salt, ids)
            view = agent.ledger.scoring(round_id, request_id)
            recorded = {r.sender: r.sha256 for r in view.replies} if view is not None else {}
            if recorded.get(part["org"]) != reply_sha256(features):
                raise SiteError(f"{part['org']} sent features that do not match its on-chain reply to scoring "
                                f"request {request_id}")
        if features.shape != (len(ids), part["dim"]):
            raise SiteError(f"{part['org']} sent features of shape {features.shape}, expected ({len(ids)}, {part['dim']})")
        blocks.append(features)
    probabilities = model.probabilities(np.concatenate(blocks, axis=1))
    best = probabilities.argmax(axis=1)
    return [{"entity_id": entity, "class": model.classes[k], "probability": round(float(probabilities[i, k]), 4)}
            for i, (entity, k) in enumerate(zip(ids, best, strict=True))]
