"""The leader's side of split learning: the fusion head and one auxiliary head per feature block, trained a pass
per epoch on the blocks the sites sent, and the per-row gradients it sends back."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from swarmfuse.extractors.fusion.head import FusionHead, HeadConfig
from swarmfuse.extractors.reproducible import reproducible
from swarmfuse.extractors.split.config import SplitConfig
from swarmfuse.files import write_atomic


class SplitLeader:
    """Heads over ``dims``-wide blocks for ``n_classes``; their state is a file (:meth:`save`, :meth:`load`) so a
    leader that restarts goes on from the last epoch it finished."""

    def __init__(self, dims: Sequence[int], n_classes: int, config: SplitConfig = SplitConfig(), seed: int = 0) -> None:
        self.dims, self.config, self.seed = list(dims), config, seed
        head_config = HeadConfig()
        with reproducible(seed):
            self.fused = FusionHead(sum(self.dims), n_classes, head_config)
            self.aux = [FusionHead(dim, n_classes, head_config) for dim in self.dims]
        self.epochs_done = 0
        self._optimiser = torch.optim.Adam([p for head in (self.fused, *self.aux) for p in head.parameters()],
                                           lr=config.head_lr, weight_decay=config.head_weight_decay)

    def epoch(self, blocks: Sequence[np.ndarray], y: np.ndarray, train: np.ndarray) -> list[np.ndarray]:
        """Train the heads ``head_passes`` passes over the ``train`` rows of ``blocks``; per block, float32 gradients of the loss
        (fused plus ``aux_weight`` times the block's own) with respect to each training row's features, zero on
        the other rows."""
        if [b.shape[1] for b in blocks] != self.dims or any(len(b) != len(y) for b in blocks):
            raise ValueError(f"blocks of widths {[b.shape[1] for b in blocks]} and rows {[len(b) for b in blocks]}; "
                             f"expected widths {self.dims} and {len(y)} rows")
        rows = np.flatnonzero(train)
        if not len(rows):
            raise ValueError("no training row to learn from")
        x = torch.from_numpy(np.concatenate(blocks, axis=1).astype(np.float32))
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
        with reproducible(self.seed + self.epochs_done):
            if self.epochs_done == 0:
                self._standardise(x[rows])
            self._train_pass(x, labels, rows)
            gradient = self._gradients(x[rows], labels[rows])
        self.epochs_done += 1
        out, start = [], 0
        for dim in self.dims:
            block = np.zeros((len(y), dim), dtype=np.float32)
            block[rows] = gradient[:, start:start + dim]
            out.append(block)
            start += dim
        return out

    def _standardise(self, x: torch.Tensor) -> None:
        """Fix each head's standardisation from the first epoch's training features."""
        mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
        self.fused.mean.copy_(mean)
        self.fused.std.copy_(std)
        start = 0
        for head, dim in zip(self.aux, self.dims, strict=True):
            head.mean.copy_(mean[start:start + dim])
            head.std.copy_(std[start:start + dim])
            start += dim

    def _loss(self, x: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
        loss = F.cross_entropy(self.fused(x), y, reduction=reduction)
        start = 0
        for head, dim in zip(self.aux, self.dims, strict=True):
            loss = loss + self.config.aux_weight * F.cross_entropy(head(x[:, start:start + dim]), y,
                                                                   reduction=reduction)
            start += dim
        return loss

    def _train_pass(self, x: torch.Tensor, y: torch.Tensor, rows: np.ndarray) -> None:
        for head in (self.fused, *self.aux):
            head.train()
        rng = np.random.default_rng(self.seed + self.epochs_done)
        for _ in range(self.config.head_passes):
            order = rng.permutation(rows)
            for i in range(0, len(order), self.config.batch_size):
                batch = torch.from_numpy(order[i:i + self.config.batch_size])
                loss = self._loss(x[batch], y[batch], "mean")
                self._optimiser.zero_grad()
                loss.backward()
                self._optimiser.step()
        for head in (self.fused, *self.aux):
            head.eval()

    def _gradients(self, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        """d(summed loss)/d(features) per row: each row's own loss gradient."""
        features = x.clone().requires_grad_(True)
        self._loss(features, y, "sum").backward()
        assert features.grad is not None
        return features.grad.numpy().astype(np.float32)

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        torch.save({"fused": self.fused.state_dict(), "aux": [head.state_dict() for head in self.aux],
                    "optimiser": self._optimiser.state_dict(), "epochs_done": self.epochs_done}, buffer)
        write_atomic(path, buffer.getvalue())

    def load(self, path: Path) -> None:
        state = torch.load(path, weights_only=True)
        self.fused.load_state_dict(state["fused"])
        for head, saved in zip(self.aux, state["aux"], strict=True):
            head.load_state_dict(saved)
        self._optimiser.load_state_dict(state["optimiser"])
        self.epochs_done = int(state["epochs_done"])
