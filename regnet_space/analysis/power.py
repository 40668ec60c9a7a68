"""How many models per space does a comparison need? Power by simulation from pilot EDFs.

A study that samples too few models cannot tell its spaces apart: with 40 models per space the KS test needs a
distance of about 0.30 to reject, and a Holm family of 15 comparisons needs more. From a pilot population,
this module finds the n per space at which a test rejects with a given probability (default 80%):

- for a target effect, per space: the space's own error distribution against itself shifted by a gap (the mean
  error differs by ``gap`` points) or by the shift that makes the two CDFs differ by ``ks`` at most;
- by default, per pair of spaces: the difference the pilot shows, i.e. the two pilot distributions themselves.

Samples are drawn from each pilot's EDF smoothed by a Gaussian kernel (Silverman's bandwidth), so a simulated
study of more models than the pilot has no artificial ties (and shrunk so the variance stays the pilot's). The KS test is the exact two-sample test for
equal n; the mean gap uses Welch's t-test. With ``comparisons`` > 1 the level is alpha / comparisons, the
first step of Holm's procedure, so the n found is enough for every comparison of the family.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from ..errors import UserError

TESTS = ("ks", "mean")


@dataclass(frozen=True)
class Pilot:
    """One space's pilot errors and the kernel bandwidth its smoothed EDF uses."""

    errors: np.ndarray
    bandwidth: float

    @classmethod
    def of(cls, errors: np.ndarray) -> "Pilot":
        errors = np.asarray(errors, dtype=float)
        if errors.size < 5:
            raise UserError(f"a pilot needs at least 5 models, got {errors.size}")
        spread = min(np.std(errors, ddof=1), stats.iqr(errors) / 1.34) or np.std(errors, ddof=1) or 1e-6
        return cls(errors, 0.9 * spread * errors.size ** -0.2)

    def draw(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """Errors from the smoothed EDF, shrunk toward the mean so their variance is the pilot's (the kernel
        alone would add bandwidth^2 and make every n look larger than it is)."""
        mean, var = self.errors.mean(), self.errors.var()
        raw = self.errors[rng.integers(0, self.errors.size, size=shape)] + rng.normal(0, self.bandwidth, shape)
        return mean + (raw - mean) / np.sqrt(1 + self.bandwidth**2 / var) if var > 0 else raw

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The CDF ``draw`` samples from: the kernels' normal CDFs, averaged, after the same shrinking."""
        mean, var = self.errors.mean(), self.errors.var()
        scale = np.sqrt(1 + self.bandwidth**2 / var) if var > 0 else 1.0
        raw = mean + (np.asarray(x, dtype=float) - mean) * scale
        return stats.norm.cdf((raw[..., None] - self.errors) / self.bandwidth).mean(axis=-1)


def ks_pvalue_equal_n(n: int, k: np.ndarray) -> np.ndarray:
    """Exact P(D_{n,n} >= k/n) of the two-sample KS statistic with n models per group, no ties:
    2 * sum_{j >= 1} (-1)^(j+1) C(2n, n - j*k) / C(2n, n) (the reflection principle)."""
    k = np.atleast_1d(np.asarray(k, dtype=np.int64))
    out = np.ones(k.shape, dtype=float)
    log_total = special.gammaln(2 * n + 1) - 2 * special.gammaln(n + 1)
    for index, h in np.ndenumerate(k):
        if h <= 0:
            continue
        j = np.arange(1, n // h + 1)
        log_terms = (special.gammaln(2 * n + 1) - special.gammaln(n - j * h + 1) - special.gammaln(n + j * h + 1)
                     - log_total)
        out[index] = min(1.0, 2 * np.sum((-1.0) ** (j + 1) * np.exp(log_terms)))
    return out


def ks_critical_count(n: int, alpha: float) -> int:
    """The smallest k with P(D_{n,n} >= k/n) <= alpha: reject when n * D >= k."""
    ks = np.arange(1, n + 1)
    p = ks_pvalue_equal_n(n, ks)
    below = np.flatnonzero(p <= alpha)
    return int(ks[below[0]]) if below.size else n + 1


def _ks_counts(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """n * D for each row pair of equal-size samples (continuous values, so no ties)."""
    n = x.shape[1]
    values = np.concatenate([x, y], axis=1)
    steps = np.where(np.argsort(values, axis=1) < n, 1, -1)
    return np.abs(np.cumsum(steps, axis=1)).max(axis=1)


def _welch_pvalues(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    vx, vy = x.var(axis=1, ddof=1) / n, y.var(axis=1, ddof=1) / n
    t = (x.mean(axis=1) - y.mean(axis=1)) / np.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (n - 1) + vy**2 / (n - 1))
    return 2 * stats.t.sf(np.abs(t), df)


def simulated_power(a: Pilot, b: Pilot, n: int, *, shift: float = 0.0, test: str = "ks", alpha: float = 0.05,
                    replicates: int = 400, seed: int = 0) -> float:
    """The fraction of ``replicates`` simulated studies (n models from a, n from b + shift) the test rejects."""
    rng = np.random.default_rng(seed)
    x, y = a.draw(rng, (replicates, n)), b.draw(rng, (replicates, n)) + shift
    if test == "ks":
        return float(np.mean(_ks_counts(x, y) >= ks_critical_count(n, alpha)))
    if test == "mean":
        return float(np.mean(_welch_pvalues(x, y) <= alpha))
    raise UserError(f"unknown test {test!r} (known: {', '.join(TESTS)})")


def required_n(a: Pilot, b: Pilot, *, shift: float = 0.0, test: str = "ks", power: float = 0.8,
               alpha: float = 0.05, replicates: int = 400, seed: int = 0, max_n: int = 5000) -> int | None:
    """The smallest n per space whose simulated power reaches ``power`` (None: not even at ``max_n``).

    Doubling from 5, then bisection; every n uses the same seed (common random numbers), so the search sees a
    smooth power curve rather than simulation noise."""
    def enough(n: int) -> bool:
        return simulated_power(a, b, n, shift=shift, test=test, alpha=alpha, replicates=replicates,
                               seed=seed) >= power

    lo, hi = 4, 5
    while not enough(hi):
        if hi >= max_n:
            return None
        lo, hi = hi, min(2 * hi, max_n)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi


def shift_for_ks(pilot: Pilot, distance: float) -> float:
    """The shift s for which the smoothed EDF F and F(x - s) differ by ``distance`` at most (bisection)."""
    if not 0 < distance < 1:
        raise UserError(f"a KS distance must be in (0, 1), got {distance}")
    grid = np.linspace(pilot.errors.min() - 4 * pilot.bandwidth, pilot.errors.max() + 4 * pilot.bandwidth, 2001)
    base = pilot.cdf(grid)  # once; shifted copies by interpolation
    lo, hi = 0.0, float(np.ptp(grid))
    for _ in range(40):
        mid = (lo + hi) / 2
        gap = np.max(np.abs(base - np.interp(grid - mid, grid, base, left=0.0, right=1.0)))
        lo, hi = (mid, hi) if gap < distance else (lo, mid)
    return hi


def power_table(frame: pd.DataFrame, by: str = "space", *, ks: float | None = None, gap: float | None = None,
                power: float = 0.8, alpha: float = 0.05, comparisons: int | None = None, replicates: int = 400,
                seed: int = 0, max_n: int = 5000) -> dict[str, Any]:
    """The n per space each comparison needs, from the pilot populations in ``frame`` (grouped by ``by``).

    With ``ks`` and/or ``gap``: one row per space (its EDF against itself shifted). Without: one row per pair
    of spaces (their pilot EDFs as they are). ``comparisons`` defaults to the number of pairs.
    """
    if by not in frame.columns:
        raise UserError(f"--by {by}: no such column")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise UserError(f"power and alpha must be in (0, 1), got {power} and {alpha}")
    pilots = {str(name): Pilot.of(g["error"].to_numpy()) for name, g in frame.groupby(by, sort=True)}
    pairs = list(itertools.combinations(pilots, 2))
    family = comparisons if comparisons is not None else max(1, len(pairs))
    if family < 1:
        raise UserError(f"--comparisons must be >= 1, got {family}")
    level = alpha / family
    options = {"power": power, "alpha": level, "replicates": replicates, "seed": seed, "max_n": max_n}
    rows = []
    if ks is None and gap is None:
        if not pairs:
            raise UserError("the pilot has one group: give --ks or --gap for a target effect")
        for a, b in pairs:
            pa, pb = pilots[a], pilots[b]
            grid = np.linspace(min(pa.errors.min(), pb.errors.min()), max(pa.errors.max(), pb.errors.max()), 801)
            rows.append({"a": a, "b": b, "pilot_n": [int(pa.errors.size), int(pb.errors.size)],
                         "ks_distance": float(np.max(np.abs(pa.cdf(grid) - pb.cdf(grid)))),
                         "mean_gap": float(pa.errors.mean() - pb.errors.mean()),
                         "n_ks": required_n(pa, pb, test="ks", **options),
                         "n_mean": required_n(pa, pb, test="mean", **options)})
    else:
        for name, pilot in pilots.items():
            row: dict[str, Any] = {"space": name, "pilot_n": int(pilot.errors.size)}
            if ks is not None:
                shift = shift_for_ks(pilot, ks)
                row.update(ks_distance=ks, ks_shift=shift, n_ks=required_n(pilot, pilot, shift=shift, test="ks",
                                                                          **options))
            if gap is not None:
                row.update(mean_gap=gap, n_mean=required_n(pilot, pilot, shift=gap, test="mean", **options))
            rows.append(row)
    return {"power": power, "alpha": alpha, "comparisons": family, "level": level, "replicates": replicates,
            "seed": seed, "max_n": max_n, "rows": rows,
            "method": "simulated studies from each pilot's Gaussian-smoothed EDF; exact two-sample KS (equal n), "
                      "Welch t for the mean gap; level alpha / comparisons (Holm's first step)"}


def format_n(n: int | None, max_n: int) -> str:
    return f"> {max_n}" if n is None else str(n)


def describe(result: dict[str, Any]) -> list[str]:
    """The table as text lines."""
    lines = [f"n per space for {result['power']:.0%} power at alpha {result['alpha']:g} / {result['comparisons']} "
             f"comparisons = {result['level']:.3g}; {result['replicates']} simulated studies per n "
             f"(seed {result['seed']})", result["method"]]
    cap = result["max_n"]
    for row in result["rows"]:
        if "a" in row:
            lines.append(f"{row['a']} vs {row['b']} (pilot n {row['pilot_n'][0]}, {row['pilot_n'][1]}): observed "
                         f"KS distance {row['ks_distance']:.3f} -> n {format_n(row['n_ks'], cap)}; mean gap "
                         f"{row['mean_gap']:+.2f} -> n {format_n(row['n_mean'], cap)}")
            continue
        parts = []
        if "n_ks" in row:
            parts.append(f"KS distance {row['ks_distance']:g} (a shift of {row['ks_shift']:.2f} points) -> "
                         f"n {format_n(row['n_ks'], cap)}")
        if "n_mean" in row:
            parts.append(f"mean gap {row['mean_gap']:g} points -> n {format_n(row['n_mean'], cap)}")
        lines.append(f"{row['space']} (pilot n {row['pilot_n']}): " + "; ".join(parts))
    return lines
