"""Scoring new entities with a round's fused model: every participant whose features the model takes
extracts them for the requested entities at its own site (with its ONNX extractor) and sends them over
mutual TLS; the requesting site runs the head (standardise, Linear-ReLU-Linear, softmax) in NumPy."""

from __future__ import annotations

import json
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


def predict(agent: Any, round_id: str, ids: list[str]) -> list[dict[str, Any]]:
    """Class and probability of each entity in ``ids``, with features from every site the model needs."""
    rnd = agent.ledger.round(round_id)
    if rnd.get("model_sha256") is None:
        raise SiteError(f"round {round_id} has no published model")
    path = agent.model_path(round_id)
    if not path.exists() or sha256_file(path) != rnd["model_sha256"]:
        raise SiteError(f"this site holds no verified model of round {round_id} (its agent fetches it on ModelFused)")
    model = FusedModel.load(path)
    blocks = []
    for part in model.layout:
        if part["org"] == agent.mspid:
            features = agent.features_for(round_id, part["modality"], ids)
        else:
            features = agent.link.features(agent.peer(part["org"]), round_id, ids)
        if features.shape != (len(ids), part["dim"]):
            raise SiteError(f"{part['org']} sent features of shape {features.shape}, expected ({len(ids)}, {part['dim']})")
        blocks.append(features)
    probabilities = model.probabilities(np.concatenate(blocks, axis=1))
    best = probabilities.argmax(axis=1)
    return [{"entity_id": entity, "class": model.classes[k], "probability": round(float(probabilities[i, k]), 4)}
            for i, (entity, k) in enumerate(zip(ids, best, strict=True))]
