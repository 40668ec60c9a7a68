"""How many models per space does a comparison need? Power by simulation from pilot EDFs, for a stated effect.

A study that samples too few models cannot tell its spaces apart: with 40 models per space the KS test needs a
distance of about 0.30 to reject, and a Holm family of 15 comparisons needs more. From a pilot population,
this module finds the n per space at which a test rejects with a given probability (default 80%) **for an effect
stated in advance**, the smallest difference worth detecting (never the difference the pilot happens to show:
issue 27's audit found plans on an observed difference from 40 models ranging over n 34-1,103):

- ``ks``: the space's error distribution against itself shifted so the two CDFs differ by ``ks`` at most, tested
  by the KS test. The KS test is distribution-free and a KS distance is scale-free, so the n depends on the
  pilot's shape only, hardly on its spread: the plan is as good as the pilot's shape (calibrated in
  ``analysis/calibration/power.py``).
- ``gap``: the mean error differs by ``gap`` points, tested by Welch's t-test. Here n grows with the pilot's
  variance, which 40 models pin only to about +-23% (more with heavy tails), so the plan is for the variance at
  its upper ``assurance`` bootstrap bound: the n that reaches the power in that share of resampled pilots. The
  n from the pilot's own variance and the range of the resampled pilots' n say how reliable the plan is.

Samples are drawn from each pilot's EDF smoothed by a Gaussian kernel (Silverman's bandwidth, shrunk so the
variance stays the pilot's), so a simulated study of more models than the pilot has no artificial ties. The
KS test is the exact two-sample test for equal n; the mean gap uses Welch's t-test. With ``comparisons`` > 1
the level is alpha / comparisons, the first step of Holm's procedure, so the n found is enough for every
comparison of the family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from ..errors import UserError

TESTS = ("ks", "mean")
# The effects planned for, and shown by the report, when none is stated: a KS distance of 0.2 (a shift of about
# half a standard deviation of a normal population) and a 1-point gap in mean error.
DEFAULT_KS = 0.2
DEFAULT_GAP = 1.0
# The gap plan reaches its power in this share of resampled pilots.
ASSURANCE = 0.8
# What analysis/calibration/power.py measured (500 pilots of 40 models per truth: normal, t3, skewed, tied), said
# beside every plan so a reader knows how far to trust it.
RELIABILITY = ("how reliable (analysis/calibration/power.py, pilots of 40): a KS-distance plan gave a true power of "
               "0.70-0.90 in 98.6-99.8% of pilots (it depends on the pilot's shape only); a mean-gap plan follows "
               "the pilot's variance and did so in 50-70% (at least 0.70 in 70-92% with the assured n), so re-plan "
               "a gap study from the models it adds")


@dataclass(frozen=True)
class Pilot:
    """One space's pilot errors, the kernel bandwidth its smoothed EDF uses, and the step its errors are rounded
    to when they are (0: no ties). Rounded errors tie, ties make the KS test conservative, so simulated studies
    round their draws the same way: a 40-model pilot rounded to half a point planned from the unrounded EDF
    reached a true power of 0.71 (median) for a nominal 0.80."""

    errors: np.ndarray
    bandwidth: float
    step: float = 0.0

    @classmethod
    def of(cls, errors: np.ndarray) -> "Pilot":
        errors = np.asarray(errors, dtype=float)
        if errors.size < 5:
            raise UserError(f"a pilot needs at least 5 models, got {errors.size}")
        spread = min(np.std(errors, ddof=1), stats.iqr(errors) / 1.34) or np.std(errors, ddof=1) or 1e-6
        values = np.unique(errors)
        step = float(np.diff(values).min()) if 1 < values.size < errors.size else 0.0
        return cls(errors, 0.9 * spread * errors.size ** -0.2, step)

    def draw(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """Errors from the smoothed EDF, shrunk toward the mean so their variance is the pilot's (the kernel
        alone would add bandwidth^2 and make every n look larger than it is); not yet rounded (``rounded``), so a
        shift can be added first, as it is to the true errors before they are measured."""
        mean, var = self.errors.mean(), self.errors.var()
        raw = self.errors[rng.integers(0, self.errors.size, size=shape)] + rng.normal(0, self.bandwidth, shape)
        return mean + (raw - mean) / np.sqrt(1 + self.bandwidth**2 / var) if var > 0 else raw

    def rounded(self, values: np.ndarray) -> np.ndarray:
        """``values`` on the pilot's grid of reported errors (unchanged when the pilot has no ties)."""
        return np.round(values / self.step) * self.step if self.step else values

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


def ks_counts(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """n * D for each row pair of equal-size samples. Tied values count once, after all of them (the EDFs are
    compared only where both have taken every copy), so rounded errors give the true statistic."""
    n = x.shape[1]
    values = np.concatenate([x, y], axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    steps = np.where(order < n, 1, -1)
    ordered = np.take_along_axis(values, order, axis=1)
    last_of_tie = np.c_[ordered[:, 1:] != ordered[:, :-1], np.ones(len(values), dtype=bool)]
    return np.where(last_of_tie, np.abs(np.cumsum(steps, axis=1)), 0).max(axis=1)


def welch_pvalues(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    vx, vy = x.var(axis=1, ddof=1) / n, y.var(axis=1, ddof=1) / n
    t = (x.mean(axis=1) - y.mean(axis=1)) / np.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (n - 1) + vy**2 / (n - 1))
    return 2 * stats.t.sf(np.abs(t), df)


def simulated_power(a: Pilot, b: Pilot, n: int, *, shift: float = 0.0, test: str = "ks", alpha: float = 0.05,
                    replicates: int = 400, seed: int = 0) -> float:
    """The fraction of ``replicates`` simulated studies (n models from a, n from b + shift) the test rejects."""
    rng = np.random.default_rng(seed)
    x, y = a.rounded(a.draw(rng, (replicates, n))), b.rounded(b.draw(rng, (replicates, n)) + shift)
    if test == "ks":
        return float(np.mean(ks_counts(x, y) >= ks_critical_count(n, alpha)))
    if test == "mean":
        return float(np.mean(welch_pvalues(x, y) <= alpha))
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


def variance_ratios(errors: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap resamples' variance over the pilot's: how far the pilot's variance could be from the truth."""
    errors = np.asarray(errors, dtype=float)
    draws = errors[rng.integers(0, errors.size, size=(resamples, errors.size))]
    return draws.var(axis=1, ddof=1) / errors.var(ddof=1)


def plan_gap(pilot: Pilot, gap: float, *, power: float = 0.8, alpha: float = 0.05, assurance: float = ASSURANCE,
             resamples: int = 1000, replicates: int = 400, seed: int = 0, max_n: int = 5000) -> dict[str, Any]:
    """The n per space for Welch's t-test to detect a ``gap``-point mean difference, planned for the pilot's
    variance at its upper ``assurance`` bootstrap bound.

    The n for the pilot's own variance comes from simulation (it keeps the pilot's shape); the resampled pilots'
    n are that n scaled by their variance ratio (n grows as the variance: n ~ 2 (z_a + z_b)^2 sigma^2 / gap^2),
    so ``n_mean`` reaches ``power`` in an ``assurance`` share of them and ``n_mean_range`` (their 10th and 90th
    percentiles) says how loosely the pilot pins the answer. None where the n passes ``max_n``.
    """
    if not 0 < assurance < 1:
        raise UserError(f"the assurance must be in (0, 1), got {assurance}")
    point = required_n(pilot, pilot, shift=gap, test="mean", power=power, alpha=alpha, replicates=replicates,
                       seed=seed, max_n=max_n)
    ratios = variance_ratios(pilot.errors, resamples, np.random.default_rng(seed))

    def scaled(q: float) -> int | None:
        if point is None:
            return None
        n = int(np.ceil(point * np.quantile(ratios, q)))
        return max(n, 5) if n <= max_n else None

    return {"mean_gap": gap, "n_mean": scaled(assurance), "n_mean_point": point,
            "n_mean_range": [scaled(0.1), scaled(0.9)], "assurance": assurance}


def power_table(frame: pd.DataFrame, by: str = "space", *, ks: float | None = None, gap: float | None = None,
                power: float = 0.8, alpha: float = 0.05, comparisons: int | None = None, replicates: int = 400,
                seed: int = 0, max_n: int = 5000, assurance: float = ASSURANCE, resamples: int = 1000
                ) -> dict[str, Any]:
    """The n per space a comparison needs to detect a stated effect, from the pilot populations in ``frame``
    (grouped by ``by``): one row per space, its EDF against itself shifted by a KS distance ``ks`` (KS test)
    and/or a mean gap of ``gap`` points (Welch's t, planned as ``plan_gap`` does). Neither given: both at their
    defaults (``DEFAULT_KS``, ``DEFAULT_GAP``). ``comparisons`` defaults to the number of pairs of groups.
    """
    if by not in frame.columns:
        raise UserError(f"--by {by}: no such column")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise UserError(f"power and alpha must be in (0, 1), got {power} and {alpha}")
    stated = ks is not None or gap is not None
    if not stated:
        ks, gap = DEFAULT_KS, DEFAULT_GAP
    errors = frame["error"].to_numpy(dtype=float)
    if np.isnan(errors).any():
        raise UserError(f"{int(np.isnan(errors).sum())} models have no error (NaN): drop them from the pilot "
                        f"(a failed model is no evidence of a space's spread)")
    pilots = {str(name): Pilot.of(g["error"].to_numpy()) for name, g in frame.groupby(by, sort=True)}
    family = comparisons if comparisons is not None else max(1, len(pilots) * (len(pilots) - 1) // 2)
    if family < 1:
        raise UserError(f"--comparisons must be >= 1, got {family}")
    level = alpha / family
    options = {"power": power, "alpha": level, "replicates": replicates, "seed": seed, "max_n": max_n}
    rows = []
    for name, pilot in pilots.items():
        row: dict[str, Any] = {"space": name, "pilot_n": int(pilot.errors.size)}
        if ks is not None:
            shift = shift_for_ks(pilot, ks)
            row.update(ks_distance=ks, ks_shift=shift, n_ks=required_n(pilot, pilot, shift=shift, test="ks",
                                                                      **options))
        if gap is not None:
            row.update(plan_gap(pilot, gap, assurance=assurance, resamples=resamples, **options))
        rows.append(row)
    return {"power": power, "alpha": alpha, "comparisons": family, "level": level, "replicates": replicates,
            "seed": seed, "max_n": max_n, "assurance": assurance, "effects_stated": stated, "rows": rows,
            "method": "simulated studies from each pilot's Gaussian-smoothed EDF; exact two-sample KS (equal n) for "
                      "a KS distance, Welch t for a mean gap, planned for the pilot's variance at its upper "
                      f"{assurance:.0%} bootstrap bound ({resamples} resamples); level alpha / comparisons "
                      "(Holm's first step)"}


def format_n(n: int | None, max_n: int) -> str:
    return f"> {max_n}" if n is None else str(n)


def describe(result: dict[str, Any]) -> list[str]:
    """The table as text lines, each effect named as the one planned for (not a difference the pilot showed)."""
    lines = [f"n per space for {result['power']:.0%} power at alpha {result['alpha']:g} / {result['comparisons']} "
             f"comparisons = {result['level']:.3g}; {result['replicates']} simulated studies per n "
             f"(seed {result['seed']})", result["method"], RELIABILITY]
    if not result["effects_stated"]:
        lines.append(f"no effect stated (--ks, --gap): planned for the defaults, a KS distance of {DEFAULT_KS:g} "
                     f"and a mean gap of {DEFAULT_GAP:g} point; state the smallest difference worth detecting")
    cap = result["max_n"]
    for row in result["rows"]:
        parts = []
        if "n_ks" in row:
            parts.append(f"KS distance {row['ks_distance']:g} (a shift of {row['ks_shift']:.2f} points) -> "
                         f"n {format_n(row['n_ks'], cap)}")
        if "n_mean" in row:
            low, high = (format_n(n, cap) for n in row["n_mean_range"])
            parts.append(f"mean gap {row['mean_gap']:g} points -> n {format_n(row['n_mean'], cap)} (enough in "
                         f"{row['assurance']:.0%} of resampled pilots; {format_n(row['n_mean_point'], cap)} for the "
                         f"pilot's own variance; resampled pilots need {low}-{high}, 10th-90th percentile)")
        lines.append(f"{row['space']} (pilot n {row['pilot_n']}): " + "; ".join(parts))
    return lines
