"""Language-model pre-training of the AWD-LSTM encoder on a token stream (truncated BPTT, NT-ASGD)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from swarmfuse.extractors.text.awd_lstm import AWDConfig, AWDLSTMEncoder, LanguageModel, activation_penalty
from swarmfuse.extractors.text.ntasgd import NTASGD

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LMConfig:
    """Pre-training schedule (the paper's SGD learning rate and clipping, small sizes for CPU)."""

    epochs: int = 2
    batch_size: int = 32
    bptt: int = 35
    lr: float = 30.0
    clip: float = 0.25
    weight_decay: float = 1.2e-6
    alpha: float = 2.0
    beta: float = 1.0
    eval_every: int = 40
    nonmono: int = 3

    def unregularised(self) -> LMConfig:
        """The same schedule (NT-ASGD, learning rate, clipping, weight decay) without AR and TAR."""
        return replace(self, alpha=0.0, beta=0.0)


@dataclass(frozen=True)
class LMReport:
    """Outcome of pre-training: validation perplexity, steps, whether/when NT-ASGD switched, seconds."""

    val_perplexity: float
    steps: int
    asgd_switched_at_check: int | None
    seconds: float


def batchify(stream: np.ndarray, batch_size: int) -> torch.Tensor:
    """Cut a 1-d token stream into ``batch_size`` parallel rows: [batch_size, N]."""
    n = len(stream) // batch_size
    if n < 2:
        raise ValueError(f"token stream of {len(stream)} is too short for batch size {batch_size}")
    return torch.from_numpy(stream[: n * batch_size].reshape(batch_size, n).copy())


def _detach(states):
    return [(h.detach(), c.detach()) for h, c in states]


@torch.no_grad()
def evaluate_lm(model: LanguageModel, data: torch.Tensor, bptt: int) -> float:
    """Mean next-token cross-entropy over ``data`` [B, N] in eval mode."""
    model.eval()
    total, count, states = 0.0, 0, None
    for i in range(0, data.size(1) - 1, bptt):
        x, y = data[:, i : i + bptt], data[:, i + 1 : i + 1 + bptt]
        x = x[:, : y.size(1)]
        logits, out = model(x, states)
        states = out.states
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    return total / count


def pretrain(awd: AWDConfig, cfg: LMConfig, train: np.ndarray, valid: np.ndarray, seed: int) -> tuple[AWDLSTMEncoder, LMReport]:
    """Train a language model on ``train`` token ids and return its encoder (averaged weights if switched)."""
    torch.manual_seed(seed)
    model = LanguageModel(AWDLSTMEncoder(awd))
    opt = NTASGD(model.parameters(), cfg.lr, cfg.weight_decay, cfg.nonmono)
    train_data, valid_data = batchify(train, cfg.batch_size), batchify(valid, cfg.batch_size)
    start, step = time.perf_counter(), 0
    for epoch in range(cfg.epochs):
        states = None
        for i in range(0, train_data.size(1) - 1, cfg.bptt):
            model.train()
            x, y = train_data[:, i : i + cfg.bptt], train_data[:, i + 1 : i + 1 + cfg.bptt]
            x = x[:, : y.size(1)]
            logits, out = model(x, None if states is None else _detach(states))
            states = out.states
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
            opt.zero_grad()
            (loss + activation_penalty(out, cfg.alpha, cfg.beta)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            step += 1
            if step % cfg.eval_every == 0:
                with opt.averaged():
                    val = evaluate_lm(model, valid_data, cfg.bptt)
                if opt.observe(val):
                    log.info("NT-ASGD: switched to averaging at check %d", len(opt.history))
                log.info("epoch %d step %d train %.3f val ppl %.1f", epoch, step, loss.item(), math.exp(val))
    opt.finalize()
    val = evaluate_lm(model, valid_data, cfg.bptt)
    return model.encoder, LMReport(math.exp(val), step, opt.switched_at, time.perf_counter() - start)
