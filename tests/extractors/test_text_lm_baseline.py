"""The plain-LSTM baseline is the AWD-LSTM with its regularisers off; the comparison on the real data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from swarmfuse.extractors.data import fetch_emoji
from swarmfuse.extractors.text import (
    AWDConfig,
    AWDLSTMEncoder,
    LMComparison,
    LMConfig,
    TextConfig,
    cached_lm_comparison,
    cached_text_extractor,
)
from swarmfuse.extractors.text.baseline import lm_comparison_dir, unigram_perplexity
from swarmfuse.extractors.text.lm import LMReport

AWD = AWDConfig(vocab_size=50, emb_size=8, hidden_size=16, layers=3)
IDS = torch.randint(3, 50, (4, 7), generator=torch.Generator().manual_seed(1))


def test_plain_lstm_is_the_same_network_with_every_regulariser_off():
    torch.manual_seed(0)
    awd = AWDLSTMEncoder(AWD)
    torch.manual_seed(0)
    plain = AWDLSTMEncoder(AWD.unregularised()).train()
    assert {k: v.shape for k, v in awd.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    assert all(torch.equal(a, b) for a, b in zip(awd.state_dict().values(), plain.state_dict().values()))
    out = plain(IDS)
    assert torch.equal(out.raw, out.dropped)  # no output dropout
    assert torch.equal(out.raw, plain(IDS).raw)  # no random mask anywhere, also in training mode
    assert torch.equal(out.raw, plain.eval()(IDS).raw)


def test_plain_lstm_keeps_the_schedule_and_drops_only_ar_and_tar():
    schedule = LMConfig()
    plain = schedule.unregularised()
    assert (plain.alpha, plain.beta) == (0.0, 0.0)
    assert replace(plain, alpha=schedule.alpha, beta=schedule.beta) == schedule


def test_comparison_round_trips_through_json_and_reads_as_one_line():
    comparison = LMComparison(LMReport(670.8, 358, None, 80.0), LMReport(575.0, 358, 7, 60.0), 746.5, LMConfig(),
                              10_000, 189_776, 9_988, "text-0123456789abcdef")
    assert LMComparison.from_dict(comparison.to_dict()) == comparison
    assert comparison.to_dict()["summary"] == (
        "AWD-LSTM held-out perplexity 670.8 vs plain LSTM 575.0 (same size, same schedule: 2 epochs, "
        "358 NT-ASGD steps; training 80 s vs 60 s); unigram 746.5")
    assert lm_comparison_dir(Path("/c/pipeline/text-0123456789abcdef")) == Path("/c/pipeline/lm-compare-0123456789abcdef")


def test_unigram_perplexity_is_the_vocabulary_size_for_uniform_counts_and_lower_for_skewed_ones():
    uniform = np.arange(4).repeat(10)
    assert unigram_perplexity(uniform, uniform, 4) == pytest.approx(4.0)
    skewed = np.array([0] * 37 + [1, 2, 3])
    assert unigram_perplexity(skewed, skewed, 4) < 2.0
    assert unigram_perplexity(skewed, np.array([3]), 4) == pytest.approx(22.0)  # add-one: p = (1 + 1) / (40 + 4)


@pytest.mark.slow
def test_awd_lstm_held_out_perplexity_beside_a_plain_lstm_of_the_same_size():
    manifest = fetch_emoji()
    comparison, folder = cached_lm_comparison(manifest, TextConfig())
    awd, plain, unigram = comparison.awd.val_perplexity, comparison.plain.val_perplexity, comparison.unigram_perplexity
    assert folder.parent / comparison.text_extractor == cached_text_extractor(manifest, TextConfig())[1]
    assert comparison.awd.steps == comparison.plain.steps > 100  # the same schedule, step for step
    assert (folder / "report.json").is_file()
    # Measured on this 2-core machine (seed 0, 2 threads, the deployed schedule: 2 epochs = 358 steps, no NT-ASGD
    # switch; 199,764 training and 10,003 held-out tokens, vocabulary 10,000): AWD-LSTM 708.1, plain LSTM 740.6,
    # unigram 746.5 (AWD-LSTM 0.95 of unigram, 0.96 of the plain LSTM). At this short schedule both language models
    # are barely past word frequencies, and the regularisers help little. So this does not claim a margin: it
    # asserts that the AWD-LSTM learned context beyond word frequencies, that both beat a uniform guess by far,
    # and that the regularised model stays close to the same network without regularisers (a broken regulariser
    # would blow the ratio up).
    assert max(awd, plain) < comparison.vocab_size / 5  # a uniform guess scores the vocabulary size
    assert awd < 0.98 * unigram
    assert awd < 1.3 * plain
