"""Train or fine-tune an image backbone on the emoji images (group labels) at a low resolution.

A linear classifier on the pooled features is trained jointly with the backbone (AdamW, cross-entropy,
random horizontal flips); the backbone with the best validation accuracy is kept and the head dropped.
The per-epoch log is written to ``<out_dir>/image_train.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from swarmfuse.extractors.data import Manifest
from swarmfuse.extractors.image.backbone import FEATURE_DIMS, build_backbone
from swarmfuse.extractors.image.preprocess import preprocess_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    train_loss: float
    val_accuracy: float
    seconds: float


def _split_arrays(manifest: Manifest, split: str, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    entities = manifest.split(split)
    x = preprocess_images([manifest.image_path(e) for e in entities], resolution)
    y = np.array([manifest.label(e) for e in entities], dtype=np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


@torch.inference_mode()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    model.eval()
    correct = sum(int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
                  for i in range(0, len(x), batch_size))
    return correct / max(len(x), 1)


def train_image_backbone(manifest: Manifest, out_dir: Path, resolution: int = 64, epochs: int = 4, seed: int = 0,
                         weights: Path | None = None, backbone: str = "resnet50", batch_size: int = 32,
                         lr: float = 1e-3) -> nn.Module:
    """Train ``backbone`` (from ``weights`` if given) on the training split; return the feature module in eval mode."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    features = build_backbone(backbone, weights)
    model = nn.Sequential(features, nn.Linear(FEATURE_DIMS[backbone], len(manifest.groups)))
    x_train, y_train = _split_arrays(manifest, "train", resolution)
    x_val, y_val = _split_arrays(manifest, "val", resolution)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x_train) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    history: list[EpochLog] = []
    best_state, best_acc = None, -1.0
    for epoch in range(1, epochs + 1):
        start, total = time.perf_counter(), 0.0
        model.train()
        order = torch.from_numpy(rng.permutation(len(x_train)))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            xb = x_train[idx]
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = loss_fn(model(xb), y_train[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
        entry = EpochLog(epoch, total / len(x_train), _accuracy(model, x_val, y_val, 128), time.perf_counter() - start)
        history.append(entry)
        log.info("image epoch %d: loss %.3f, val accuracy %.3f (%.0f s)", epoch, entry.train_loss,
                 entry.val_accuracy, entry.seconds)
        if entry.val_accuracy > best_acc:
            best_acc = entry.val_accuracy
            best_state = {k: v.detach().clone() for k, v in features.state_dict().items()}
    features.load_state_dict(best_state)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "image_train.json").write_text(json.dumps(
        {"backbone": backbone, "resolution": resolution, "best_val_accuracy": best_acc,
         "epochs": [asdict(h) for h in history]}, indent=1) + "\n")
    return features.eval()
