"""Each AWD-LSTM regulariser acts as described, on small random models (fast, no data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swarmfuse.extractors.text.awd_lstm import (
    AWDConfig,
    AWDLSTMEncoder,
    LanguageModel,
    LockedDropout,
    TextFeatures,
    WeightDropLSTM,
    activation_penalty,
    embedded_dropout,
)
from swarmfuse.extractors.text.ntasgd import NTASGD
from swarmfuse.extractors.text.vocab import Vocab, tokenize

OFF = {"dropoute": 0.0, "dropouti": 0.0, "dropouth": 0.0, "dropout": 0.0, "wdrop": 0.0}


def encoder(**overrides) -> AWDLSTMEncoder:
    torch.manual_seed(0)
    return AWDLSTMEncoder(AWDConfig(**{"vocab_size": 50, "emb_size": 8, "hidden_size": 16, "layers": 3, **OFF, **overrides}))


IDS = torch.randint(3, 50, (4, 7), generator=torch.Generator().manual_seed(1))


def test_weight_drop_resamples_hidden_to_hidden_weights_every_training_step():
    rnn = WeightDropLSTM(8, 16, wdrop=0.5).train()
    first, second = rnn.hidden_weight(), rnn.hidden_weight()
    raw = rnn.lstm.weight_hh_l0
    assert not torch.equal(first, second)
    zero_fraction = (first == 0).float().mean().item()
    assert 0.4 < zero_fraction < 0.6
    kept = first != 0
    assert torch.allclose(first[kept], raw[kept] * 2)
    assert torch.equal(rnn.eval().hidden_weight(), raw)


def test_weight_drop_changes_outputs_in_training_only_and_trains_the_raw_weights():
    model = encoder(wdrop=0.5).train()
    a, b = model(IDS).raw, model(IDS).raw
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(IDS).raw, model(IDS).raw)
    model.train()
    model(IDS).raw.sum().backward()
    assert model.rnns[0].lstm.weight_hh_l0.grad.abs().sum() > 0
    without = encoder().train()
    assert torch.equal(without(IDS).raw, without(IDS).raw)


def test_locked_dropout_mask_is_shared_across_time_but_not_across_sequences():
    drop = LockedDropout().train()
    torch.manual_seed(0)
    out = drop(torch.ones(6, 10, 32), 0.5)
    assert torch.equal(out, out[:, :1, :].expand_as(out))  # the same mask at every time step
    assert not torch.equal(out[0], out[1])
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(drop.eval()(torch.ones(2, 3, 4), 0.5), torch.ones(2, 3, 4))


def test_embedding_dropout_drops_whole_words():
    emb = torch.nn.Embedding(20, 6)
    ids = torch.tensor([[3, 4, 3, 5, 3, 4] * 3])
    torch.manual_seed(2)
    out = embedded_dropout(emb, ids, 0.5, training=True)[0]
    dropped = {int(t) for t, row in zip(ids[0], out) if torch.all(row == 0)}
    assert dropped, "with p=0.5 at least one of three words is dropped for this seed"
    for t, row in zip(ids[0], out):
        expected = torch.zeros(6) if int(t) in dropped else emb.weight[t] * 2
        assert torch.allclose(row, expected)
    assert torch.equal(embedded_dropout(emb, ids, 0.5, training=False), emb(ids))


def test_ar_and_tar_penalise_large_and_changing_activations():
    model = encoder(dropout=0.3).train()
    out = model(IDS)
    ar = activation_penalty(out, 1.0, 0.0)
    tar = activation_penalty(out, 0.0, 1.0)
    assert torch.isclose(ar, out.dropped.pow(2).mean())
    assert torch.isclose(tar, (out.raw[:, 1:] - out.raw[:, :-1]).pow(2).mean())
    assert torch.isclose(activation_penalty(out, 2.0, 1.0), 2 * ar + tar)
    tar.backward()
    assert model.rnns[-1].lstm.weight_ih_l0.grad.abs().sum() > 0


def test_decoder_is_tied_to_the_embedding():
    lm = LanguageModel(encoder())
    assert lm.decoder.weight is lm.encoder.embedding.weight
    opt = torch.optim.SGD(lm.parameters(), lr=1.0)
    logits, _ = lm(IDS)
    F.cross_entropy(logits.reshape(-1, 50), IDS.reshape(-1)).backward()
    opt.step()
    assert torch.equal(lm.decoder.weight, lm.encoder.embedding.weight)
    assert len(list(lm.parameters())) == len({id(p) for p in lm.parameters()})


def test_nt_asgd_switches_after_a_non_monotonic_stall_and_averages_weights():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = NTASGD([p], lr=0.1, nonmono=2)
    for loss in (5.0, 4.0, 3.0, 3.5):  # 3.5 is worse than its predecessor but not than 5.0 (older than 2 checks)
        assert not opt.observe(loss)
    assert opt.observe(4.5)  # worse than 4.0, the best older than 2 checks and opt.averaging and isinstance(opt.optimizer, torch.optim.ASGD)
    for target in (1.0, 3.0, -2.0, 4.0):  # steps towards different points: the running average lags behind
        opt.zero_grad()
        (p - target).pow(2).sum().mul(0.5).backward()
        opt.step()
    current = p.detach().clone()
    with opt.averaged():
        averaged = p.detach().clone()
    assert torch.equal(p.detach(), current)
    assert not torch.allclose(averaged, current)
    opt.finalize()
    assert torch.equal(p.detach(), averaged)


def test_pooled_features_ignore_padding():
    features = TextFeatures(encoder()).eval()
    short = torch.tensor([[5, 6, 7, 0, 0, 0]])
    longer_pad = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0, 0]])
    assert features(short).shape == (1, 16)
    assert torch.allclose(features(short), features(longer_pad), atol=1e-6)


def test_vocab_tokenises_pads_and_truncates():
    assert tokenize("Face with Tears-of-Joy: it’s 100%!") == ["face", "with", "tears", "of", "joy", "it", "s", "100"]
    vocab = Vocab.build(["b", "a", "a", "c", "c", "c"], required=["zebra"], max_size=6, min_freq=2)
    assert vocab.itos == ("<pad>", "<unk>", "<eos>", "zebra", "c", "a")
    ids = vocab.encode_batch(["c a b", "a " * 10], max_len=4)
    assert ids.dtype == np.int64 and ids.tolist() == [[4, 5, 1, 2], [5, 5, 5, 5]]


def test_finetune_config_rejects_bad_values():
    from swarmfuse.extractors.text.classify import FinetuneConfig
    with pytest.raises(ValueError, match="epoch"):
        FinetuneConfig(epochs=0)
    for smoothing in (-0.1, 1.0):
        with pytest.raises(ValueError, match="label_smoothing"):
            FinetuneConfig(label_smoothing=smoothing)
