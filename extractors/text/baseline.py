"""The AWD-LSTM's held-out language-model perplexity beside a plain LSTM of the same size trained the same way.

The plain LSTM is the same network (:meth:`AWDConfig.unregularised`: no weight drop, embedding or locked
dropout) trained by the same :func:`pretrain` (:meth:`LMConfig.unregularised`: no AR/TAR; the same NT-ASGD
schedule, learning rate, clipping and weight decay) on the same token streams, vocabulary, seed (hence the same
initial weights) and held-out split, and scored by the same evaluation. The AWD-LSTM side is the language
model of the cached text extractor itself (pre-training is deterministic, so it is not trained again). A
unigram model (add-one smoothed training frequencies) on the same split is the context-free reference.

Cached in ``<cache>/pipeline/lm-compare-<hash>/report.json`` beside ``text-<hash>`` (the same hash).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from swarmfuse.extractors.data import DataError, Manifest, fetch_corpus
from swarmfuse.extractors.data.cache import atomic_dir
from swarmfuse.extractors.reproducible import reproducible
from swarmfuse.extractors.text.extractor import TextConfig, awd_config, cached_text_extractor, lm_streams
from swarmfuse.extractors.text.lm import LMConfig, LMReport, pretrain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LMComparison:
    """Held-out perplexity, steps and training seconds of both language models, what they shared, and the
    unigram model's held-out perplexity."""

    awd: LMReport
    plain: LMReport
    unigram_perplexity: float
    schedule: LMConfig
    vocab_size: int
    train_tokens: int
    valid_tokens: int
    text_extractor: str

    def summary(self) -> str:
        return (f"AWD-LSTM held-out perplexity {self.awd.val_perplexity:.1f} vs plain LSTM "
                f"{self.plain.val_perplexity:.1f} (same size, same schedule: {self.schedule.epochs} epochs, "
                f"{self.awd.steps} NT-ASGD steps; training {self.awd.seconds:.0f} s vs {self.plain.seconds:.0f} s); "
                f"unigram {self.unigram_perplexity:.1f}")

    def to_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary()}

    @classmethod
    def from_dict(cls, doc: dict) -> LMComparison:
        fields = {k: v for k, v in doc.items() if k != "summary"}
        return cls(**{**fields, "awd": LMReport(**doc["awd"]), "plain": LMReport(**doc["plain"]),
                      "schedule": LMConfig(**doc["schedule"])})


def unigram_perplexity(train: np.ndarray, valid: np.ndarray, vocab_size: int) -> float:
    """Held-out perplexity of the add-one smoothed token frequencies of ``train``."""
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    return float(np.exp(-np.log(counts[valid] / counts.sum()).mean()))


def lm_comparison_dir(text_dir: Path) -> Path:
    """``lm-compare-<hash>`` beside the text extractor's ``text-<hash>``."""
    return text_dir.with_name("lm-compare-" + text_dir.name.removeprefix("text-"))


def cached_lm_comparison(manifest: Manifest, config: TextConfig) -> tuple[LMComparison, Path]:
    """The comparison for the text extractor of ``config`` on this data; on first use the plain LSTM is
    trained (the extractor too, if it is not cached yet) and the report written atomically."""
    extractor, text_dir = cached_text_extractor(manifest, config)
    folder = lm_comparison_dir(text_dir)
    if (folder / "report.json").exists():
        try:
            return LMComparison.from_dict(json.loads((folder / "report.json").read_text())), folder
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"cached LM comparison in {folder} is unreadable ({exc}); delete the folder") from exc
    train, valid = lm_streams(fetch_corpus(), [e.text for e in manifest.split("train")], config, extractor.vocab)
    if len(train) != extractor.report["lm_tokens"]:
        raise DataError(f"the LM token stream has {len(train)} tokens but the cached extractor in {text_dir} was "
                        f"pre-trained on {extractor.report['lm_tokens']}; delete that folder to retrain it")
    awd = awd_config(config, len(extractor.vocab))
    with reproducible(config.seed):
        _, plain = pretrain(awd.unregularised(), config.lm.unregularised(), train, valid, config.seed)
    comparison = LMComparison(
        awd=LMReport(**extractor.report["lm"]), plain=plain,
        unigram_perplexity=unigram_perplexity(train, valid, awd.vocab_size), schedule=config.lm,
        vocab_size=awd.vocab_size, train_tokens=len(train), valid_tokens=len(valid), text_extractor=text_dir.name)
    log.info("%s", comparison.summary())
    with atomic_dir(folder) as scratch:
        (scratch / "report.json").write_text(json.dumps(comparison.to_dict(), indent=1) + "\n")
    return comparison, folder
