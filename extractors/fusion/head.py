"""The fusion head: an MLP over standardised feature vectors, trained with early stopping on validation.

The same class serves every method (unimodal heads, intermediate fusion on concatenated
penultimate features, early fusion on concatenated raw inputs). Parameters are saved as a
portable NumPy ``.npz`` (no pickle) whose SHA-256 identifies the trained head.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swarmfuse.extractors.reproducible import reproducible


@dataclass(frozen=True)
class HeadConfig:
    """MLP width, regularisation and schedule.

    ``weight_decay`` (L2 in Adam) was chosen on the validation split: over three text-extractor trainings, the
    intermediate head's mean validation accuracy was 0.793 / 0.810 / 0.817 / 0.822 / 0.819 at 1e-4 / 1e-3 /
    1e-2 / 3e-2 / 1e-1. The extractors' features fit the training entities closely, and a head that matches
    them exactly leans on whichever modality fits them best.
    """

    hidden: int = 256
    dropout: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 3e-2
    epochs: int = 60
    batch_size: int = 64
    patience: int = 10


class FusionHead(nn.Module):
    """Standardise, then Linear-ReLU-Dropout-Linear to class logits."""

    def __init__(self, in_dim: int, n_classes: int, config: HeadConfig = HeadConfig()) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.net = nn.Sequential(nn.Linear(in_dim, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
                                 nn.Linear(config.hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.eval()
        return F.softmax(self(torch.from_numpy(np.asarray(x, dtype=np.float32))), dim=1).numpy()

    def save(self, path: Path) -> str:
        """Write weights and config to a portable ``.npz``; return its SHA-256."""
        arrays = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
        meta = {"in_dim": int(self.mean.numel()), "n_classes": int(self.net[-1].out_features), "config": asdict(self.config)}
        with path.open("wb") as fh:
            np.savez(fh, __meta__=np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8), **arrays)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    @classmethod
    def load(cls, path: Path) -> FusionHead:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["__meta__"].tobytes())
            head = cls(meta["in_dim"], meta["n_classes"], HeadConfig(**meta["config"]))
            head.load_state_dict({k: torch.from_numpy(data[k]) for k in data.files if k != "__meta__"})
        return head.eval()


def train_head(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_classes: int,
               seed: int, config: HeadConfig = HeadConfig()) -> FusionHead:
    """Train a head with Adam (:func:`~swarmfuse.extractors.reproducible.reproducible`); keep the epoch with the
    lowest validation loss (early stopping)."""
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError("features and labels differ in length")
    with reproducible(seed):
        return _train(x_train, y_train, x_val, y_val, n_classes, seed, config)


def _train(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_classes: int,
           seed: int, config: HeadConfig) -> FusionHead:
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(np.asarray(x_train, dtype=np.float32))
    y = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    xv = torch.from_numpy(np.asarray(x_val, dtype=np.float32))
    yv = torch.from_numpy(np.asarray(y_val, dtype=np.int64))
    head = FusionHead(x.shape[1], n_classes, config)
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp(min=1e-6))
    opt = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best, best_state, waited = float("inf"), copy.deepcopy(head.state_dict()), 0
    for _ in range(config.epochs):
        head.train()
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(0, len(x), config.batch_size):
            batch = order[i : i + config.batch_size]
            loss = F.cross_entropy(head(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            val = F.cross_entropy(head(xv), yv).item()
        if val < best - 1e-4:
            best, best_state, waited = val, copy.deepcopy(head.state_dict()), 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    head.load_state_dict(best_state)
    return head.eval()
