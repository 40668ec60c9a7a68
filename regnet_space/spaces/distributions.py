"""The distributions a design-space dimension can follow, with pycls's semantics.

Every distribution is discrete: it has a finite, ordered ``values`` array (its support), draws *indices* into
it in bulk from a NumPy generator, and knows its exact probability of each value (``pmf``), which the
statistical tests compare the draws against.

- ``choice``: uniform over the listed values.
- ``uniform``: uniform over lo, lo+q, ..., hi (pycls: U[lo, hi+q) floored to q).
- ``log_uniform``: log-uniform on (lo - min(q, lo/2), hi], then *ceiled* to a multiple of q (pycls).
- ``power2``: uniform over the powers of two lo, 2lo, ..., hi (pycls's power2_uniform).
- ``power2_or_log_uniform``: pycls's sampler of RegNet group widths: a power of two from lo..hi (uniform over
  them) is kept when below q, else replaced by a log_uniform draw on [max(lo, q), hi] quantized to min(hi, q).
  With lo >= q it is that log_uniform; below q (pycls's CIFAR sweep: GROUP_W [1, 32], q = 8) a mixture.
``q`` (the quantum, default 1) is what makes uniform/log_uniform "quantized"; lo and hi must be multiples of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from ..errors import UserError
from ..models.spec import MAX_WIDTH

KINDS = ("choice", "uniform", "log_uniform", "power2", "power2_or_log_uniform")
# A distribution holds its whole support: depth = 1..10^9 in a space file took 22 GB before the first model.
# 65,536 values are every width a layer may have at q = 1 (models/spec.py's MAX_WIDTH), the widest range a
# field of a real network needs.
MAX_SUPPORT = MAX_WIDTH


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Distribution:
    """One dimension's distribution: ``kind`` plus lo/hi/q (numeric kinds) or the choice ``options``."""

    kind: str
    lo: float | int | None = None
    hi: float | int | None = None
    q: float | int = 1
    options: tuple[Any, ...] = ()
    values: np.ndarray = field(init=False, repr=False, compare=False)
    _probabilities: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values, probabilities = _support(self)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_probabilities", probabilities)

    def __len__(self) -> int:
        return len(self.values)

    def pmf(self) -> np.ndarray:
        """The exact probability of each value in ``values``."""
        if self._probabilities is None:
            return np.full(len(self.values), 1.0 / len(self.values))
        return self._probabilities

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` indices into ``values``."""
        if self.kind == "power2_or_log_uniform":
            return rng.choice(len(self.values), size=size, p=self.pmf())
        if self.kind != "log_uniform":
            return rng.integers(0, len(self.values), size)
        lo_open = self.lo - min(self.q, self.lo / 2)
        x = np.exp(rng.uniform(math.log(lo_open), math.log(self.hi), size))
        index = np.ceil(x / self.q) - round(self.lo / self.q)
        return np.clip(index, 0, len(self.values) - 1).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"dist": "choice", "values": list(self.options)}
        data: dict[str, Any] = {"dist": self.kind, "lo": self.lo, "hi": self.hi}
        if self.kind != "power2" and self.q != 1:
            data["q"] = self.q
        return data


def _quantized(lo: float, hi: float, q: float) -> np.ndarray:
    """lo, lo+q, ..., hi, exact in decimal (0.1 steps give 2.3, not 2.3000000000000003)."""
    first, last = round(lo / q), round(hi / q)
    steps = np.arange(first, last + 1)
    if all(isinstance(v, int) for v in (lo, hi, q)):
        return steps * q
    decimals = max(0, -Decimal(str(q)).as_tuple().exponent)
    return np.round(steps * q, decimals)


def _support(dist: Distribution) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, probabilities or None for uniform over the values)."""
    if dist.kind == "choice":
        return np.array(dist.options, dtype=object if any(isinstance(v, str) for v in dist.options) else None), None
    if dist.kind == "power2":
        exponents = np.arange(round(math.log2(dist.lo)), round(math.log2(dist.hi)) + 1)
        powers = 2.0 ** exponents
        return (powers.astype(np.int64) if isinstance(dist.lo, int) else powers), None
    if dist.kind == "power2_or_log_uniform":
        powers = _support(Distribution("power2", dist.lo, dist.hi))[0]
        kept = powers[powers < dist.q]
        tail = Distribution("log_uniform", max(dist.lo, dist.q), dist.hi, min(dist.hi, dist.q))
        tail_mass = 1 - len(kept) / len(powers)
        return (np.concatenate([kept, tail.values]).astype(powers.dtype),
                np.concatenate([np.full(len(kept), 1 / len(powers)), tail_mass * tail.pmf()]))
    values = _quantized(dist.lo, dist.hi, dist.q)
    if dist.kind == "uniform":
        return values, None
    lo_open = dist.lo - min(dist.q, dist.lo / 2)
    edges = np.concatenate([[lo_open], values.astype(float)])
    return values, np.diff(np.log(edges)) / math.log(dist.hi / lo_open)


def parse_distribution(table: dict[str, Any], where: str, value_type: type | None) -> Distribution:
    """A distribution from its TOML inline table, checked against the type of the field it sets.

    ``value_type`` is int, float, str or bool (None: a field of another type, which only ``choice`` may vary).
    Every error names ``where`` and the offending key.
    """
    kind = table.get("dist")
    if kind not in KINDS:
        raise UserError(f"{where}.dist: {kind!r} is not one of {', '.join(KINDS)}")
    allowed = {"choice": {"dist", "values"}, "power2": {"dist", "lo", "hi"}}.get(kind, {"dist", "lo", "hi", "q"})
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UserError(f"{where}.{unknown[0]}: unknown key for a {kind} distribution "
                        f"(known: {', '.join(sorted(allowed))})")
    if kind == "choice":
        options = table.get("values")
        if not isinstance(options, list) or not options:
            raise UserError(f"{where}.values: a choice needs a non-empty list of values")
        for i, option in enumerate(options):
            check_value(option, f"{where}.values[{i}]", value_type)
        if len(set(map(repr, options))) != len(options):
            raise UserError(f"{where}.values: repeated value")
        return Distribution("choice", options=tuple(options))
    if value_type not in (int, float):
        raise UserError(f"{where}.dist: {kind} needs a numeric field; use a choice")
    for key in ("lo", "hi"):
        if key not in table:
            raise UserError(f"{where}.{key}: missing")
    lo, hi, q = table["lo"], table["hi"], table.get("q", 1)
    for key, value in (("lo", lo), ("hi", hi), ("q", q)):
        check_value(value, f"{where}.{key}", value_type)
    if q <= 0:
        raise UserError(f"{where}.q: must be > 0, got {q!r}")
    if lo > hi:
        raise UserError(f"{where}: lo {lo!r} > hi {hi!r}")
    if kind in ("power2", "power2_or_log_uniform"):
        for key, value in (("lo", lo), ("hi", hi)) + ((("q", q),) if kind != "power2" else ()):
            if value <= 0 or not math.log2(value).is_integer():
                raise UserError(f"{where}.{key}: must be a power of two, got {value!r}")
        return Distribution(kind, lo, hi) if kind == "power2" else Distribution(kind, lo, hi, q)
    if kind == "log_uniform" and lo <= 0:
        raise UserError(f"{where}.lo: a log_uniform needs lo > 0, got {lo!r}")
    for key, value in (("lo", lo), ("hi", hi)):
        if abs(value / q - round(value / q)) > 1e-9:
            raise UserError(f"{where}.{key}: {value!r} is not a multiple of q={q!r}")
    values = round((hi - lo) / q) + 1
    if values > MAX_SUPPORT:
        raise UserError(f"{where}: {values:,} values from {lo!r} to {hi!r} in steps of {q!r}; at most "
                        f"{MAX_SUPPORT:,} (a larger q or a narrower range)")
    return Distribution(kind, lo, hi, q)


def check_value(value: Any, where: str, value_type: type | None) -> None:
    """A fixed value (or a distribution bound) must have the field's type; an int is a valid float."""
    if value_type is None:
        return
    if value_type is float:
        ok = is_number(value)
    elif value_type is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, value_type)
    if not ok:
        raise UserError(f"{where}: must be {value_type.__name__}, got {value!r} ({type(value).__name__})")


def draw_non_decreasing(dists: list[Distribution], rng: np.random.Generator, size: int) -> list[np.ndarray]:
    """Values x_1 <= x_2 <= ... (x_i from ``dists[i]``), drawn exactly from the product of the distributions
    restricted to non-decreasing sequences, without rejection.

    Backward pass: B_i(v) = p_i(v) * sum_{u >= v} B_{i+1}(u) weighs v by how many ways the rest can follow;
    then x_1 ~ B_1 and each x_i ~ B_i restricted to v >= x_{i-1}, by inverse CDF.
    """
    support = np.unique(np.concatenate([d.values for d in dists]))
    masses = []
    for d in dists:
        mass = np.zeros(len(support))
        mass[np.searchsorted(support, d.values)] = d.pmf()
        masses.append(mass)
    weights = [masses[-1]]
    for mass in reversed(masses[:-1]):
        tail = np.cumsum(weights[0][::-1])[::-1]
        weights.insert(0, mass * tail)
    previous = np.zeros(size, dtype=np.int64)
    draws = []
    for weight in weights:
        cdf = np.cumsum(weight)
        below = np.where(previous > 0, cdf[previous - 1], 0.0)
        r = below + rng.random(size) * (cdf[-1] - below)
        index = np.maximum(np.minimum(np.searchsorted(cdf, r, side="right"), len(support) - 1), previous)
        draws.append(support[index])
        previous = index
    return draws
