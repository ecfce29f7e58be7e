"""Seeds on a command line: parsed, or refused with a message naming the problem (fast)."""

from __future__ import annotations

import argparse

import pytest

from swarmfuse.extractors.seeds import parse_seeds, seeds_argument


def test_seeds_are_parsed_or_refused_clearly():
    assert parse_seeds("0,1,2") == (0, 1, 2) and parse_seeds(" 3 , 4,") == (3, 4)
    with pytest.raises(ValueError, match="comma-separated integers, got 'a,b'"):
        parse_seeds("a,b")
    with pytest.raises(ValueError, match="at least one seed"):
        parse_seeds(" , ")
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated integers"):
        seeds_argument("0;1")
    assert seeds_argument("7") == (7,)
