"""The text extractor end to end, in the six steps of the seed scheme.

1. preparation: load the emoji manifest and the corpus, fix the seeds;
2. preprocessing: clean and tokenise, build the vocabulary, pad/truncate to ``max_len``;
3. construction: the AWD-LSTM encoder (:mod:`.awd_lstm`);
4. training: language-model pre-training on the corpus (:mod:`.lm`), then classifier fine-tuning;
5. evaluation: accuracy, macro precision/recall/F1 on validation and test;
6. feature extraction: pooled last-layer hidden states (:class:`TextFeatures`).

Artefacts in the output folder: ``config.json``, ``vocab.json``, ``classifier.pt``, ``report.json``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from swarmfuse.extractors.data import Corpus, DataError, Manifest, cache_root, fetch_corpus
from swarmfuse.extractors.data.cache import atomic_dir, config_hash
from swarmfuse.extractors.reproducible import code_fingerprint, reproducible
from swarmfuse.extractors.text import awd_lstm, classify, lm, ntasgd, vocab
from swarmfuse.extractors.text.awd_lstm import AWDConfig, AWDLSTMEncoder, TextClassifier, TextFeatures
from swarmfuse.extractors.text.classify import FinetuneConfig, Metrics, evaluate, finetune
from swarmfuse.extractors.text.lm import LMConfig, pretrain
from swarmfuse.extractors.text.vocab import Vocab, tokenize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextConfig:
    """Everything that determines a trained text extractor (its hash keys the pipeline cache).

    ``labels``: fine-tune a classifier on the entities' group labels, a reference the vertical setting forbids (the
    site holding the texts holds no labels); ``False``: label-free, the language model's encoder, pre-trained on the
    corpus and the texts alone, is the extractor (:func:`train_label_free_text_extractor`).
    """

    seed: int = 0
    labels: bool = True
    max_corpus_tokens: int = 200_000
    valid_fraction: float = 0.05
    vocab_size: int = 10_000
    min_freq: int = 3
    max_len: int = 24
    emb_size: int = 64
    hidden_size: int = 256
    layers: int = 3
    lm: LMConfig = field(default_factory=LMConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> TextConfig:
        return cls(**{**doc, "lm": LMConfig(**doc["lm"]), "finetune": FinetuneConfig(**doc["finetune"])})


@dataclass
class TextExtractor:
    """The feature module exported to ONNX (``features``) with its vocabulary; ``classifier`` is the fine-tuned
    classifier around it when the extractor was trained with labels, ``None`` for a label-free one."""

    config: TextConfig
    vocab: Vocab
    features: TextFeatures
    report: dict
    classifier: TextClassifier | None = None

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.vocab.encode_batch(texts, self.config.max_len)

    def save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(self.config.to_dict(), indent=1))
        self.vocab.save(out_dir / "vocab.json")
        if self.classifier is not None:
            torch.save(self.classifier.state_dict(), out_dir / "classifier.pt")
        else:
            torch.save(self.features.state_dict(), out_dir / "features.pt")
        (out_dir / "report.json").write_text(json.dumps(self.report, indent=1))

    @classmethod
    def load(cls, out_dir: Path, n_classes: int) -> TextExtractor:
        try:
            config = TextConfig.from_dict(json.loads((out_dir / "config.json").read_text()))
            vocab = Vocab.load(out_dir / "vocab.json")
            encoder = AWDLSTMEncoder(awd_config(config, len(vocab)))
            classifier = TextClassifier(encoder, n_classes) if config.labels else None
            features = classifier.features if classifier is not None else TextFeatures(encoder)
            (classifier or features).load_state_dict(
                torch.load(out_dir / ("classifier.pt" if classifier is not None else "features.pt"), weights_only=True))
            report = json.loads((out_dir / "report.json").read_text())
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise DataError(f"text extractor in {out_dir} cannot be loaded: {exc}") from exc
        (classifier or features).eval()
        return cls(config, vocab, features, report, classifier)


def awd_config(config: TextConfig, vocab_size: int) -> AWDConfig:
    return AWDConfig(vocab_size=vocab_size, emb_size=config.emb_size, hidden_size=config.hidden_size, layers=config.layers)


def lm_streams(corpus: Corpus, extra_texts: list[str], config: TextConfig, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled corpus documents (capped) plus ``extra_texts`` as one token stream; the tail is validation."""
    rng = np.random.default_rng(config.seed)
    docs = corpus.lines()
    stream: list[int] = []
    for i in rng.permutation(len(docs)):
        if len(stream) >= config.max_corpus_tokens:
            break
        stream += vocab.ids(tokenize(docs[i])) + [vocab.eos_id]
    n_valid = int(len(stream) * config.valid_fraction)
    train, valid = stream[:-n_valid], stream[-n_valid:]
    extra = [vocab.ids(tokenize(t)) + [vocab.eos_id] for t in extra_texts]
    positions = sorted(rng.integers(0, len(train), len(extra)), reverse=True)
    for pos, ids in zip(positions, extra):
        train[pos:pos] = ids
    return np.asarray(train, dtype=np.int64), np.asarray(valid, dtype=np.int64)


def build_vocab(corpus: Corpus, texts: list[str], config: TextConfig) -> Vocab:
    corpus_tokens = (t for line in corpus.lines() for t in tokenize(line))
    required = {t for text in texts for t in tokenize(text)}
    return Vocab.build(corpus_tokens, required, config.vocab_size, config.min_freq)


def train_text_extractor(manifest: Manifest, corpus: Corpus, config: TextConfig) -> TextExtractor:
    """Run the six steps on the emoji group labels (:func:`~swarmfuse.extractors.reproducible.reproducible`);
    the report has timings and all metrics. With ``config.labels`` off, the label-free extractor of every
    entity's text instead (:func:`train_label_free_text_extractor`)."""
    if not config.labels:
        return train_label_free_text_extractor([e.text for e in manifest.entities], corpus, config)
    with reproducible(config.seed):
        return _train(manifest, corpus, config)


def train_label_free_text_extractor(texts: list[str], corpus: Corpus, config: TextConfig) -> TextExtractor:
    """A text extractor from ``texts`` and the public corpus alone: the vocabulary, then the AWD-LSTM language
    model pre-trained on the corpus with ``texts`` inserted; its encoder's pooled states are the features. No
    label is read or needed."""
    with reproducible(config.seed):
        vocab = build_vocab(corpus, texts, config)
        lm_train, lm_valid = lm_streams(corpus, texts, config, vocab)
        encoder, lm_report = pretrain(awd_config(config, len(vocab)), config.lm, lm_train, lm_valid, config.seed)
    report = {"vocab_size": len(vocab), "lm_tokens": len(lm_train), "lm": asdict(lm_report), "texts": len(texts),
              "labels": "none (label-free)"}
    log.info("label-free text extractor: %s", report)
    return TextExtractor(config, vocab, TextFeatures(encoder).eval(), report)


def _train(manifest: Manifest, corpus: Corpus, config: TextConfig) -> TextExtractor:
    train, val, test = (manifest.split(s) for s in ("train", "val", "test"))
    vocab = build_vocab(corpus, [e.text for e in train], config)
    lm_train, lm_valid = lm_streams(corpus, [e.text for e in train], config, vocab)
    encoder, lm_report = pretrain(awd_config(config, len(vocab)), config.lm, lm_train, lm_valid, config.seed)
    log.info("LM pre-training: %s", lm_report)

    def xy(entities):
        return vocab.encode_batch([e.text for e in entities], config.max_len), np.array([manifest.label(e) for e in entities])

    classifier, ft_report = finetune(encoder, len(manifest.groups), xy(train), xy(val), config.finetune, config.seed)
    test_metrics: Metrics = evaluate(classifier, *xy(test))
    report = {"vocab_size": len(vocab), "lm_tokens": len(lm_train), "lm": asdict(lm_report),
              "finetune": asdict(ft_report), "test": asdict(test_metrics)}
    log.info("text extractor: %s", report)
    return TextExtractor(config, vocab, classifier.features, report, classifier)


def training_code() -> str:
    """The fingerprint of the code that trains the text extractor (part of its cache key)."""
    return code_fingerprint(vocab, awd_lstm, ntasgd, lm, classify, sys.modules[__name__])


def text_extractor_dir(manifest: Manifest, config: TextConfig) -> Path:
    """The cache folder ``<cache>/pipeline/text-<hash>`` of the text extractor for ``config``, this data and
    this training code."""
    key = config_hash("text", config.to_dict(), manifest.fingerprint(), training_code())
    return cache_root() / "pipeline" / f"text-{key}"


def cached_text_extractor(manifest: Manifest, config: TextConfig) -> tuple[TextExtractor, Path]:
    """The text extractor for ``config`` and this data, from ``<cache>/pipeline/text-<hash>``;
    trained and written there atomically on first use."""
    folder = text_extractor_dir(manifest, config)
    if (folder / "report.json").exists():
        return TextExtractor.load(folder, len(manifest.groups)), folder
    start = time.perf_counter()
    extractor = train_text_extractor(manifest, fetch_corpus(), config)
    extractor.report["train_seconds"] = time.perf_counter() - start
    with atomic_dir(folder) as scratch:
        extractor.save(scratch)
    return extractor, folder
