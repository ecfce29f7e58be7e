"""Reproducible training: same inputs, same weights; the machine's thread setting is restored; cache keys follow
the training code, not its comments and docstrings."""

from __future__ import annotations

import types

import numpy as np
import torch

from swarmfuse.extractors.fusion.head import train_head
from swarmfuse.extractors.reproducible import TRAIN_THREADS, code_fingerprint, reproducible


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    module.__dict__["__source__"] = source
    return module


def _fingerprint(source: str, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    import inspect

    monkeypatch.setattr(inspect, "getsource", lambda module: module.__source__)
    return code_fingerprint(_module("m", source))


def test_two_trainings_give_the_same_weights_whatever_the_thread_setting() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 16)).astype(np.float32), rng.integers(0, 3, 96)
    before = torch.get_num_threads()
    heads = []
    for threads in (1, before):
        torch.set_num_threads(threads)
        heads.append(train_head(x[:64], y[:64], x[64:], y[64:], 3, seed=0))
        assert torch.get_num_threads() == threads  # restored after the training
        assert not torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(before)
    for (name, a), b in zip(heads[0].state_dict().items(), heads[1].state_dict().values()):
        assert torch.equal(a, b), name


def test_training_runs_on_the_fixed_thread_count_with_deterministic_kernels() -> None:
    with reproducible(3):
        assert torch.get_num_threads() == TRAIN_THREADS
        assert torch.are_deterministic_algorithms_enabled()
        first = torch.rand(4)
    with reproducible(3):
        assert torch.equal(torch.rand(4), first)


def test_the_code_fingerprint_follows_code_not_docstrings_or_comments(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    base = _fingerprint('"""Doc."""\ndef f(x):\n    """Doc."""\n    return x + 1\n', monkeypatch)
    reworded = _fingerprint('"""Other."""\n# a comment\ndef f(x):\n    """More."""\n    return x + 1\n', monkeypatch)
    changed = _fingerprint('"""Doc."""\ndef f(x):\n    """Doc."""\n    return x + 2\n', monkeypatch)
    assert base == reworded
    assert base != changed


def test_the_code_fingerprint_ignores_the_order_of_imports(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    base = _fingerprint("import os\nfrom a import b, c\ndef f():\n    import sys\n    import json\n    return 1\n",
                        monkeypatch)
    sorted_ = _fingerprint("from a import (\n    c,\n    b,\n)\nimport os\ndef f():\n    import json\n    import sys\n"
                           "    return 1\n", monkeypatch)
    other = _fingerprint("import os\nfrom a import b, d\ndef f():\n    import sys\n    import json\n    return 1\n",
                         monkeypatch)
    moved = _fingerprint("import os\ndef f():\n    import sys\n    import json\n    return 1\nfrom a import b, c\n",
                         monkeypatch)
    assert base == sorted_
    assert base != other, "another imported name is other code"
    assert base != moved, "an import after other statements stays where it is"
