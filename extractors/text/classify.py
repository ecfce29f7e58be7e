"""Fine-tuning the pre-trained encoder as a classifier, evaluation, and pooled feature extraction."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from swarmfuse.extractors.text.awd_lstm import AWDLSTMEncoder, TextClassifier, TextFeatures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """Classifier fine-tuning: Adam with a smaller rate for the pre-trained encoder; best epoch on val.

    ``label_smoothing``: the fusion head learns from the training entities' features, which plain cross-entropy
    fits to certainty, so the head trusts the text and gains little from the images; smoothing the labels raises
    intermediate fusion (``scripts/bench_text_finetune.sh`` measures by how much).
    """

    epochs: int = 25
    batch_size: int = 32
    lr_head: float = 3e-3
    lr_encoder: float = 2e-3
    weight_decay: float = 1e-5
    dropout_scale: float = 0.5
    label_smoothing: float = 0.2

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("fine-tuning needs at least one epoch and a positive batch size")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass(frozen=True)
class Metrics:
    """Accuracy and macro-averaged precision, recall and F1."""

    accuracy: float
    precision: float
    recall: float
    f1: float

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray) -> Metrics:
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
        return cls(float(accuracy_score(y_true, y_pred)), float(p), float(r), float(f))


@dataclass(frozen=True)
class FinetuneReport:
    best_epoch: int
    val: Metrics
    seconds: float


def _scale_dropout(encoder: AWDLSTMEncoder, factor: float) -> None:
    """Fine-tune with milder regularisation than pre-training (the data set is small)."""
    c = encoder.config
    encoder.config = type(c)(**{**c.to_dict(), **{k: getattr(c, k) * factor
                                                 for k in ("dropoute", "dropouti", "dropouth", "dropout", "wdrop")}})
    for rnn in encoder.rnns:
        rnn.wdrop = encoder.config.wdrop


@torch.no_grad()
def predict(model: TextClassifier, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities [N, C] in eval mode."""
    model.eval()
    out = [F.softmax(model(torch.from_numpy(ids[i : i + batch_size])), dim=1) for i in range(0, len(ids), batch_size)]
    return torch.cat(out).numpy()


def evaluate(model: TextClassifier, ids: np.ndarray, labels: np.ndarray) -> Metrics:
    return Metrics.of(labels, predict(model, ids).argmax(1))


@torch.no_grad()
def extract_features(features: TextFeatures, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Pooled last-layer hidden states [N, 2 * emb_size], float32."""
    features.eval()
    out = [features(torch.from_numpy(ids[i : i + batch_size])) for i in range(0, len(ids), batch_size)]
    return torch.cat(out).numpy().astype(np.float32)


def finetune(encoder: AWDLSTMEncoder, n_classes: int, train: tuple[np.ndarray, np.ndarray],
             val: tuple[np.ndarray, np.ndarray], cfg: FinetuneConfig, seed: int) -> tuple[TextClassifier, FinetuneReport]:
    """Train a classifier on (ids, labels); keep the weights of the epoch with the best validation accuracy."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    _scale_dropout(encoder, cfg.dropout_scale)
    model = TextClassifier(encoder, n_classes)
    opt = torch.optim.Adam([
        {"params": model.features.parameters(), "lr": cfg.lr_encoder},
        {"params": model.head.parameters(), "lr": cfg.lr_head},
    ], weight_decay=cfg.weight_decay)
    x, y = train
    start = time.perf_counter()
    best: tuple[float, int, dict, Metrics] = (-1.0, -1, {}, Metrics(0, 0, 0, 0))
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(x))
        for i in range(0, len(x), cfg.batch_size):
            batch = order[i : i + cfg.batch_size]
            loss = F.cross_entropy(model(torch.from_numpy(x[batch])), torch.from_numpy(y[batch]),
                                   label_smoothing=cfg.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
        metrics = evaluate(model, *val)
        log.info("fine-tune epoch %d val accuracy %.3f", epoch, metrics.accuracy)
        if metrics.accuracy > best[0]:
            best = (metrics.accuracy, epoch, copy.deepcopy(model.state_dict()), metrics)
    model.load_state_dict(best[2])
    model.eval()
    return model, FinetuneReport(best[1], best[3], time.perf_counter() - start)
