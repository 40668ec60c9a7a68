"""Analytic oracles: errors from a known rule instead of training, to check what the design loop finds.

``planted`` makes a model good only when its stages share b = 1, its widths never decrease and its group
widths lie in [4, 16] (plus Gaussian noise); ``noise`` gives every model pure noise. Each model's noise is
fixed by (oracle seed, the model's spec), so an oracle is a deterministic function of the model, as training
with a fixed seed is. ``recovered`` says which of the planted constraints a space has.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from ..spaces import DesignSpace, Distribution, SampledModel

G_RANGE = (4, 16)


def _noise(model: SampledModel, seed: int, scale: float) -> float:
    return scale * float(np.random.default_rng(zlib.crc32(f"{seed}:{model.spec.to_json()}".encode())).normal())


def planted(*, seed: int = 0, noise: float = 1.0, penalty: float = 4.0, base: float = 20.0):
    """error = base + penalty * (share of stages with b != 1 + [some width decreases] + share of stages with g
    outside G_RANGE) + noise."""
    lo, hi = G_RANGE

    def evaluate(models: Sequence[SampledModel]) -> list[float]:
        errors = []
        for model in models:
            b = np.array(model.spec.bottleneck_ratios)
            w = np.array(model.spec.widths)
            g = np.array(model.spec.group_widths)
            cost = np.mean(b != 1) + float(np.any(np.diff(w) < 0)) + np.mean((g < lo) | (g > hi))
            errors.append(base + penalty * cost + _noise(model, seed, noise))
        return errors

    return evaluate


def noise(*, seed: int = 0, scale: float = 1.0, base: float = 20.0):
    """error = base + Gaussian noise: no space is better than another."""
    def evaluate(models: Sequence[SampledModel]) -> list[float]:
        return [base + _noise(model, seed, scale) for model in models]

    return evaluate


def _support(space: DesignSpace, field: str) -> set:
    values = set()
    for i in range(space.num_stages):
        value = space.stage_value(i, field)
        values |= set(value.values.tolist()) if isinstance(value, Distribution) else {value}
    return values


def recovered(space: DesignSpace) -> dict[str, bool]:
    """Which planted constraints ``space`` holds: b = 1 in every stage, non-decreasing widths (a RegNet space
    has them by construction), and every stage's g inside G_RANGE."""
    if space.is_regnet:
        b = space.regnet.get("bottleneck_ratio", 1.0)
        g = space.regnet["group_width"]
        b_values = set(b.values.tolist()) if isinstance(b, Distribution) else {b}
        g_values = set(g.values.tolist()) if isinstance(g, Distribution) else {g}
        monotone = True
    else:
        b_values, g_values = _support(space, "bottleneck_ratio"), _support(space, "group_width")
        monotone = "width" in space.monotone
    return {"b=1": b_values == {1}, "monotone widths": monotone,
            "g range": all(G_RANGE[0] <= g <= G_RANGE[1] for g in g_values)}
