"""Analytic oracles: errors from a known rule instead of training, to check what the design loop finds.

``planted`` makes a model good only when its stages share b = 1, its widths never decrease and its group
widths lie in [4, 16] (plus Gaussian noise); ``monotone`` plants non-decreasing widths and depths on top of an
error that falls with flops, as every real study's does (``interaction``: the penalty lifts only when both are
non-decreasing); ``noise`` gives every model pure noise (``heteroscedastic``: its scale differs from model to
model), ``flops_only`` an error that depends on flops alone. Each model's noise is fixed by (oracle seed, the
model's spec), so an oracle is a deterministic function of the model, as training with a fixed seed is.
``recovered`` and ``recovered_monotone`` say which planted constraints a space has.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Sequence

import numpy as np

from ..analysis.linear_fit import fit_quantized_linear
from ..models.complexity import complexity
from ..models.spec import AnyNetSpec
from ..spaces import DesignSpace, Distribution, SampledModel

G_RANGE = (4, 16)


def _noise(model: SampledModel, seed: int, scale: float) -> float:
    return scale * float(np.random.default_rng(zlib.crc32(f"{seed}:{model.spec.to_json()}".encode())).normal())


def _noises(models: Sequence[SampledModel], seed: int, scales: Sequence[float], shared: float) -> list[float]:
    """Each model's noise: its own draw (keyed by the spec), or with ``shared`` > 0 that share of the variance
    keyed by the model's training seed (``models.train_seeds``, a design-loop Population's: a projection
    trains with its source model's seed, so a pair shares it, as two networks trained with the same seed and
    data order share part of their noise)."""
    if shared <= 0:
        return [_noise(model, seed, scale) for model, scale in zip(models, scales)]
    keys = getattr(models, "train_seeds", None) or [None] * len(models)
    out = []
    for model, scale, key in zip(models, scales, keys):
        mine = _noise(model, seed, 1.0) if key is None else \
            float(np.random.default_rng(zlib.crc32(f"{seed}:train:{key}".encode())).normal())
        out.append(scale * (np.sqrt(shared) * mine + np.sqrt(1 - shared) * _noise(model, seed + 1, 1.0)))
    return out


def planted(*, seed: int = 0, noise: float = 1.0, penalty: float = 4.0, base: float = 20.0):
    """error = base + penalty * (share of stages with b != 1 + [some width decreases] + share of stages with g
    outside G_RANGE) + noise."""
    def evaluate(models: Sequence[SampledModel]) -> list[float]:
        return [base + penalty * sum(violation(model.spec, kind) for kind in ("b", "widths", "g"))
                + _noise(model, seed, noise) for model in models]

    return evaluate


def noise(*, seed: int = 0, scale: float = 1.0, base: float = 20.0, heteroscedastic: bool = False,
          shared: float = 0.0):
    """error = base + Gaussian noise: no space is better than another. ``heteroscedastic``: the noise's scale
    runs from 0.25x to 2x ``scale`` with the model's total depth and first width (so spaces that move those
    move the spread, never the centre). ``shared``: the share of the noise's variance a training seed fixes
    (``_noises``)."""
    def evaluate(models: Sequence[SampledModel]) -> list[float]:
        scales = [_spread(model, scale) if heteroscedastic else scale for model in models]
        return [base + e for e in _noises(models, seed, scales, shared)]

    return evaluate


def _spread(model: SampledModel, scale: float) -> float:
    """A noise scale from 0.25x to 2x ``scale``, growing with the model's total depth and first width."""
    depth, width = sum(model.spec.depths), model.spec.widths[0]
    return scale * (0.25 + 1.75 * min(1.0, (depth / 40 + np.log2(width) / 10) / 2))


def _flops_term(model: SampledModel, slope: float, middle: float) -> float:
    """-slope * log2(flops / middle): a model with twice the flops has ``slope`` points less error."""
    return -slope * float(np.log2(complexity(model.spec).flops / middle))


def monotone(*, seed: int = 0, penalty: float = 2.0, slope: float = 3.0, middle: float = 400e6,
             interaction: bool = False, noise: float = 1.0, base: float = 30.0, shared: float = 0.0):
    """error = base - slope * log2(flops / middle) + penalty * [some width decreases] + penalty * [some depth
    decreases] + N(0, noise^2). ``interaction``: 2 * penalty unless widths *and* depths are non-decreasing.
    ``shared``: the share of the noise's variance a training seed fixes (``_noises``)."""
    def evaluate(models: Sequence[SampledModel]) -> list[float]:
        errors = []
        for model, eps in zip(models, _noises(models, seed, [noise] * len(models), shared)):
            widths_down = bool(np.any(np.diff(model.spec.widths) < 0))
            depths_down = bool(np.any(np.diff(model.spec.depths) < 0))
            cost = 2 * (widths_down or depths_down) if interaction else widths_down + depths_down
            errors.append(base + _flops_term(model, slope, middle) + penalty * cost + eps)
        return errors

    return evaluate


def flops_only(*, seed: int = 0, slope: float = 3.0, middle: float = 400e6, noise: float = 1.0,
               base: float = 30.0, shared: float = 0.0):
    """error = base - slope * log2(flops / middle) + N(0, noise^2): no constraint helps at equal flops, and a
    space that moves models up the window only looks better. ``shared``: as ``monotone``'s."""
    def evaluate(models: Sequence[SampledModel]) -> list[float]:
        return [base + _flops_term(model, slope, middle) + eps
                for model, eps in zip(models, _noises(models, seed, [noise] * len(models), shared))]

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


def recovered_monotone(space: DesignSpace) -> dict[str, bool]:
    """Which of ``monotone``'s planted constraints ``space`` holds: non-decreasing widths (a RegNet space has
    them by construction) and non-decreasing depths."""
    return {"monotone widths": space.is_regnet or "width" in space.monotone,
            "monotone depths": not space.is_regnet and "depth" in space.monotone}


# -- oracles for pairs: a planted violation per constraint, and noise a pair shares --

VIOLATIONS = ("none", "b", "g", "widths", "regnet")
E_FIT_SCALE = 0.05  # an e_fit at least this large costs the whole penalty


@lru_cache(maxsize=100_000)
def violation(spec: AnyNetSpec, kind: str, regnet: bool = False) -> float:
    """How much a model breaks the constraint ``kind`` (0 = not at all, 1 = fully): the share of stages with
    b != 1 (``b``), with g outside G_RANGE (``g``), [some width decreases] (``widths``), min(1, e_fit /
    E_FIT_SCALE) of its per-block widths (``regnet``; 0 for a model of a RegNet space, ``regnet``). Cached:
    simulations evaluate the same models thousands of times, and a fit takes ~10 ms."""
    if kind == "none":
        return 0.0
    if kind == "b":
        return float(np.mean(np.array(spec.bottleneck_ratios) != 1))
    if kind == "g":
        g = np.array(spec.group_widths)
        return float(np.mean((g < G_RANGE[0]) | (g > G_RANGE[1])))
    if kind == "widths":
        return float(np.any(np.diff(spec.widths) < 0))
    if kind == "regnet":
        return 0.0 if regnet else min(1.0, fit_quantized_linear(spec.block_widths()).e_fit / E_FIT_SCALE)
    raise ValueError(f"unknown violation {kind!r}; use one of {', '.join(VIOLATIONS)}")


@lru_cache(maxsize=100_000)
def _described(spec) -> tuple[str, float]:
    """(JSON, flops) of a spec, cached: simulations evaluate the same models thousands of times."""
    return spec.to_json(), complexity(spec).flops


def paired_oracle(kind: str = "none", *, seed: int = 0, penalty: float = 1.0, slope: float = 3.0,
                  curvature: float = 1.5, middle: float = 400e6, noise: float = 1.0, shared: float = 0.8,
                  tails: str = "normal", heteroscedastic: bool = False, ties: float | None = None,
                  base: float = 30.0):
    """error = base - slope * u + curvature * u^2 (u = log2(flops / middle): a non-linear flops effect)
    + penalty * violation(kind) + noise. ``evaluate(models, keys=None)``: the noise is sqrt(shared) * a draw
    keyed by the model's key (a pair's two models share it: the same seed and data order) + sqrt(1 - shared)
    * a draw keyed by the model itself; without keys each model's key is its own spec, so its noise is one
    independent draw of the same variance. ``tails`` "t3": Student t with 3 degrees of freedom scaled to unit
    variance; ``heteroscedastic``: the scale runs 0.25x to 2x with total depth and first width, as ``noise``'s;
    ``ties``: errors rounded to this step (0.1: a test set of 1,000 images)."""
    if tails not in ("normal", "t3"):
        raise ValueError(f"tails must be normal or t3, got {tails!r}")

    def draw(key: str) -> float:
        rng = np.random.default_rng(zlib.crc32(f"{seed}:{key}".encode()))
        return float(rng.normal()) if tails == "normal" else float(rng.standard_t(3) / np.sqrt(3.0))

    def evaluate(models: Sequence[SampledModel], keys: Sequence[str] | None = None) -> list[float]:
        errors = []
        for i, model in enumerate(models):
            name, flops = _described(model.spec)
            u = float(np.log2(flops / middle))
            mean = base - slope * u + curvature * u * u + penalty * violation(model.spec, kind, model.regnet is not None)
            scale = _spread(model, noise) if heteroscedastic else noise
            eps = np.sqrt(shared) * draw(f"pair:{name if keys is None else keys[i]}") \
                + np.sqrt(1 - shared) * draw(f"own:{name}")
            error = mean + scale * eps
            errors.append(round(error / ties) * ties if ties else error)
        return errors

    return evaluate
