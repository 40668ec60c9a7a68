"""Complexity windows: ``--flops 360M:400M`` -> (360e6, 400e6), checked against a model's complexity."""

from __future__ import annotations

import math
import re

from ..errors import UserError

METRICS = ("flops", "params", "acts", "mac")
_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgG]?)\s*$")


def parse_window(text: str) -> tuple[float, float]:
    """"360M:400M" -> (360e6, 400e6). K/M/G suffixes; an open end (":400M", "1G:") is 0 or infinity."""
    lo_text, sep, hi_text = text.partition(":")
    if not sep:
        raise UserError(f"window {text!r}: expected lo:hi, e.g. 360M:400M")
    lo = _parse_number(lo_text, text) if lo_text.strip() else 0.0
    hi = _parse_number(hi_text, text) if hi_text.strip() else math.inf
    if lo > hi:
        raise UserError(f"window {text!r}: lo {lo:g} > hi {hi:g}")
    return lo, hi


def _parse_number(part: str, text: str) -> float:
    match = _NUMBER.match(part)
    if not match:
        raise UserError(f"window {text!r}: {part.strip()!r} is not a number with an optional K/M/G suffix")
    return float(match.group(1)) * _SUFFIX[match.group(2).upper()]


def check_windows(windows: dict[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    """The windows, checked: known metrics only, lo <= hi."""
    windows = dict(windows or {})
    for metric, (lo, hi) in windows.items():
        if metric not in METRICS:
            raise UserError(f"window on {metric!r}: not one of {', '.join(METRICS)}")
        if lo > hi:
            raise UserError(f"window on {metric}: lo {lo:g} > hi {hi:g}")
    return windows
