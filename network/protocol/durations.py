"""Go's ``time.Duration`` text, as Fabric writes and reads it in configs and messages (``250ms``, ``1m30s``)."""

from __future__ import annotations

import re
from fractions import Fraction

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9}


def _fraction_text(whole: int, frac: int, digits: int) -> str:
    text = str(whole)
    if frac:
        text += "." + str(frac).rjust(digits, "0").rstrip("0")
    return text


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` of a non-negative duration (``250ms``, ``2s``, ``1m30s``)."""
    if ns < 0:
        raise ValueError(f"negative duration: {ns}ns")
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return _fraction_text(ns // 1_000, ns % 1_000, 3) + "µs"
    if ns < 10**9:
        return _fraction_text(ns // 1_000_000, ns % 1_000_000, 6) + "ms"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds = _fraction_text(rest // 10**9, rest % 10**9, 9) + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{minutes}m{seconds}"
    return seconds


def parse_go_duration(text: str) -> int:
    """Nanoseconds of a Go duration string (``time.ParseDuration`` without the sign)."""
    if text == "0":
        return 0
    pos, total = 0, Fraction(0)
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match:
            raise ValueError(f"invalid duration {text!r}")
        total += Fraction(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos == 0:
        raise ValueError(f"invalid duration {text!r}")
    return int(total)
