"""Text extractor: our AWD-LSTM, pre-trained as a language model, fine-tuned as a classifier.

Public interface::

    train_text_extractor(manifest, corpus, TextConfig()) -> TextExtractor
    cached_text_extractor(manifest, TextConfig()) -> (TextExtractor, folder)  # trained once, then cached
    TextExtractor.load(folder, n_classes); .save(folder); .encode(texts) -> int64 [N, max_len]
    TextExtractor.features  # torch module: int64 ids [B, T] -> float32 [B, 2 * emb_size]
    AWDLSTMEncoder(AWDConfig(vocab_size=...)), TextFeatures(encoder)  # e.g. for benchmarks
    cached_lm_comparison(manifest, TextConfig()) -> (LMComparison, folder)  # held-out perplexity vs a plain LSTM
"""

from swarmfuse.extractors.text.awd_lstm import AWDConfig, AWDLSTMEncoder, LanguageModel, TextClassifier, TextFeatures
from swarmfuse.extractors.text.baseline import LMComparison, cached_lm_comparison
from swarmfuse.extractors.text.classify import FinetuneConfig, Metrics, extract_features
from swarmfuse.extractors.text.extractor import TextConfig, TextExtractor, cached_text_extractor, train_text_extractor
from swarmfuse.extractors.text.lm import LMConfig
from swarmfuse.extractors.text.vocab import Vocab, tokenize

__all__ = [
    "AWDConfig", "AWDLSTMEncoder", "FinetuneConfig", "LMComparison", "LMConfig", "LanguageModel", "Metrics",
    "TextClassifier", "TextConfig", "TextExtractor", "TextFeatures", "Vocab", "cached_lm_comparison",
    "cached_text_extractor", "extract_features", "tokenize", "train_text_extractor",
]
