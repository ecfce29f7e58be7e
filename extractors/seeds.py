"""Seeds given on a command line: ``"0,1,2"`` (shared by ``swarmfuse fuse`` and the benches)."""

from __future__ import annotations

import argparse


def parse_seeds(text: str) -> tuple[int, ...]:
    """Comma-separated integer seeds; a ``ValueError`` naming the problem otherwise."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise ValueError("give at least one seed")
    return seeds


def seeds_argument(text: str) -> tuple[int, ...]:
    """:func:`parse_seeds` as an ``argparse`` type (its message shown as the error)."""
    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
