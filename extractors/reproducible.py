"""Training that gives the same weights from the same inputs, and cache keys that change with the training code.

:func:`reproducible` fixes what PyTorch leaves to the machine during a training: the seed of its global
generator, the number of intra-op threads (reductions are split by thread, so the count changes the low bits
of sums) and the choice of deterministic kernels. What can still differ between machines is the CPU's
instruction set (oneDNN and the BLAS pick other kernels for AVX2 and AVX-512), which is why accuracy tests
carry a margin measured over several fresh trainings.

:func:`code_fingerprint` hashes the code of the modules that train a stage (their syntax trees without
docstrings, so a comment or a docstring edit keeps the cache) and is part of each trained stage's cache key:
weights trained by older code are never served for newer code.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import torch

TRAIN_THREADS = 2  # intra-op threads of every training, whatever the machine has (results depend on the count)


@contextmanager
def reproducible(seed: int) -> Iterator[None]:
    """Seed PyTorch's global generator with ``seed``, train on :data:`TRAIN_THREADS` threads with deterministic
    kernels; the previous thread count and kernel choice come back on exit."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(TRAIN_THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _imports_in_order(tree: ast.AST) -> ast.AST:
    """Each run of consecutive import statements, and the names each imports, in one canonical order: sorting
    imports (as the linter does) does not change what the code trains."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            node.names.sort(key=lambda alias: (alias.name, alias.asname or ""))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        ordered: list[ast.stmt] = []
        run: list[ast.stmt] = []
        for statement in [*body, None]:
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                run.append(statement)
                continue
            ordered += sorted(run, key=ast.dump)
            run = []
            if statement is not None:
                ordered.append(statement)
        node.body = ordered
    return tree


def code_fingerprint(*modules: ModuleType) -> str:
    """Short SHA-256 of the code of ``modules`` (in the order given); comments, docstrings, layout and the order of
    imports left out."""
    digest = hashlib.sha256()
    for module in modules:
        tree = _imports_in_order(_without_docstrings(ast.parse(inspect.getsource(module))))
        digest.update(module.__name__.encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    return digest.hexdigest()[:16]
