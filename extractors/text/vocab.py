"""Preprocessing for the text extractor: cleaning, tokenising, vocabulary, padding/truncation."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
_TOKEN = re.compile(r"[a-z0-9]+")


def clean(text: str) -> str:
    """Lower-case and fold typographic apostrophes so "it’s" and "it's" tokenise alike."""
    return text.lower().replace("\u2019", "'")


def tokenize(text: str) -> list[str]:
    """Alphanumeric word tokens of the cleaned text (punctuation and symbols are separators)."""
    return _TOKEN.findall(clean(text))


@dataclass(frozen=True)
class Vocab:
    """Token <-> id map; ids 0, 1, 2 are padding, unknown and end-of-sequence."""

    itos: tuple[str, ...]

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int:
        return 2

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, corpus_tokens: Iterable[str], required: Iterable[str], max_size: int, min_freq: int) -> Vocab:
        """The ``required`` tokens plus the most frequent corpus tokens (ties broken alphabetically)."""
        keep = sorted(set(required))
        counts = Counter(corpus_tokens)
        frequent = sorted((t for t, n in counts.items() if n >= min_freq and t not in set(keep)),
                          key=lambda t: (-counts[t], t))
        room = max(0, max_size - 3 - len(keep))
        return cls((PAD, UNK, EOS, *keep, *frequent[:room]))

    @cached_property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.itos)}

    def ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.index.get(t, self.unk_id) for t in tokens]

    def encode_batch(self, texts: Iterable[str], max_len: int) -> np.ndarray:
        """int64 [N, max_len] token ids, truncated, right-padded, ending in ``<eos>`` when room allows."""
        rows = []
        for text in texts:
            ids = (self.ids(tokenize(text)) + [self.eos_id])[:max_len]
            rows.append(ids + [self.pad_id] * (max_len - len(ids)))
        return np.asarray(rows, dtype=np.int64).reshape(-1, max_len)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(list(self.itos), ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> Vocab:
        return cls(tuple(json.loads(path.read_text())))
