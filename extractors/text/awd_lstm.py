"""AWD-LSTM (Merity, Keskar and Socher, 2017), our own implementation, batch-first.

Regularisers, each switchable by its probability / coefficient:

* weight drop (DropConnect) on every layer's hidden-to-hidden matrix, a fresh mask per forward pass;
* embedding dropout: whole rows of the embedding matrix (i.e. words) dropped;
* locked (variational) dropout: one mask per sequence, shared over all time steps, on the
  embedding output (``dropouti``), between layers (``dropouth``) and on the output (``dropout``);
* AR / TAR on the last layer's outputs (see :func:`activation_penalty`);
* tied weights: the language-model decoder reuses the embedding matrix.

NT-ASGD lives in :mod:`swarmfuse.extractors.text.ntasgd`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call


@dataclass(frozen=True)
class AWDConfig:
    """Sizes and regularisation of the encoder. The last layer's width equals ``emb_size`` (tying)."""

    vocab_size: int
    emb_size: int = 64
    hidden_size: int = 256
    layers: int = 3
    dropoute: float = 0.1
    dropouti: float = 0.4
    dropouth: float = 0.25
    dropout: float = 0.4
    wdrop: float = 0.5
    pad_id: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def unregularised(self) -> AWDConfig:
        """The same network with weight drop, embedding dropout and locked dropout off: a plain LSTM."""
        return replace(self, dropoute=0.0, dropouti=0.0, dropouth=0.0, dropout=0.0, wdrop=0.0)


class LockedDropout(nn.Module):
    """Dropout whose mask is drawn once per sequence and reused at every time step."""

    def forward(self, x: Tensor, p: float) -> Tensor:  # x: [B, T, D]
        if not self.training or p == 0.0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - p) / (1 - p)
        return x * mask


def embedded_dropout(embedding: nn.Embedding, ids: Tensor, p: float, training: bool) -> Tensor:
    """Look up ``ids`` with whole embedding rows dropped (and the rest rescaled) during training."""
    weight = embedding.weight
    if training and p > 0.0:
        mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)
        weight = weight * mask
    return F.embedding(ids, weight, embedding.padding_idx)


class WeightDropLSTM(nn.Module):
    """A one-layer LSTM whose hidden-to-hidden weights get DropConnect while training."""

    def __init__(self, input_size: int, hidden_size: int, wdrop: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.wdrop = wdrop

    def hidden_weight(self) -> Tensor:
        """The hidden-to-hidden matrix this forward pass uses (a new DropConnect sample in training)."""
        raw = self.lstm.weight_hh_l0
        return F.dropout(raw, self.wdrop, training=True) if self.training and self.wdrop > 0 else raw

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        if not self.training or self.wdrop == 0.0:
            return self.lstm(x, state)
        return functional_call(self.lstm, {"weight_hh_l0": self.hidden_weight()}, (x, state))


@dataclass
class EncoderOutput:
    """Last layer outputs before (``raw``) and after (``dropped``) the output dropout, and the states."""

    raw: Tensor
    dropped: Tensor
    states: list[tuple[Tensor, Tensor]]


class AWDLSTMEncoder(nn.Module):
    """Embedding plus a stack of weight-dropped LSTMs with locked dropout in between."""

    def __init__(self, config: AWDConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.emb_size, padding_idx=config.pad_id)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        sizes = [config.emb_size] + [config.hidden_size] * (config.layers - 1) + [config.emb_size]
        self.rnns = nn.ModuleList(WeightDropLSTM(sizes[i], sizes[i + 1], config.wdrop) for i in range(config.layers))
        self.locked = LockedDropout()

    def forward(self, ids: Tensor, states: list[tuple[Tensor, Tensor]] | None = None) -> EncoderOutput:
        c = self.config
        x = self.locked(embedded_dropout(self.embedding, ids, c.dropoute, self.training), c.dropouti)
        new_states = []
        for i, rnn in enumerate(self.rnns):
            x, state = rnn(x, None if states is None else states[i])
            new_states.append(state)
            raw = x
            if i < len(self.rnns) - 1:
                x = self.locked(x, c.dropouth)
        return EncoderOutput(raw=raw, dropped=self.locked(raw, c.dropout), states=new_states)


class LanguageModel(nn.Module):
    """Next-token prediction with the decoder tied to the embedding matrix."""

    def __init__(self, encoder: AWDLSTMEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = nn.Linear(encoder.config.emb_size, encoder.config.vocab_size)
        self.decoder.weight = encoder.embedding.weight

    def forward(self, ids: Tensor, states: list[tuple[Tensor, Tensor]] | None = None) -> tuple[Tensor, EncoderOutput]:
        out = self.encoder(ids, states)
        return self.decoder(out.dropped), out


def activation_penalty(out: EncoderOutput, alpha: float, beta: float) -> Tensor:
    """AR (``alpha`` times the mean square of the dropped outputs) plus TAR (``beta`` times the mean
    square of the step-to-step change of the raw outputs)."""
    ar = out.dropped.pow(2).mean()
    tar = (out.raw[:, 1:] - out.raw[:, :-1]).pow(2).mean() if out.raw.size(1) > 1 else out.raw.new_zeros(())
    return alpha * ar + beta * tar


def masked_pool(hidden: Tensor, ids: Tensor, pad_id: int) -> Tensor:
    """Concatenated mean and max of the hidden states over the non-padding positions: [B, 2H]."""
    mask = (ids != pad_id).unsqueeze(-1)
    count = mask.sum(1).clamp(min=1).to(hidden.dtype)
    mean = (hidden * mask).sum(1) / count
    maxed = hidden.masked_fill(~mask, -1e4).amax(1)
    return torch.cat([mean, maxed], dim=1)


class TextFeatures(nn.Module):
    """Token ids [B, T] -> pooled last-layer hidden states [B, 2 * emb_size] (the exported extractor)."""

    def __init__(self, encoder: AWDLSTMEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    @property
    def dim(self) -> int:
        return 2 * self.encoder.config.emb_size

    def forward(self, ids: Tensor) -> Tensor:
        return masked_pool(self.encoder(ids).raw, ids, self.encoder.config.pad_id)


class TextClassifier(nn.Module):
    """Pooled AWD-LSTM features followed by a small classification head."""

    def __init__(self, encoder: AWDLSTMEncoder, n_classes: int, hidden: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = TextFeatures(encoder)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.features.dim, hidden), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, ids: Tensor) -> Tensor:
        return self.head(self.features(ids))
