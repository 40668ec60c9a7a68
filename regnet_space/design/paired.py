"""Controlled (paired) evaluation of a constraint: a model, its projection at equal flops, the same seed.

Estimand: "does imposing C on a model of S, at equal flops, change its error?" (docs/statistics.md): the mean
of d = error(projection) - error(model) over models of S (and projectable into C). Pairs trained with the same
seed and data order share the seed's part of the noise and everything about the model the projection keeps,
so d varies far less than two independent models do; the unpaired comparison (``compare.py``) must see the
constraint's effect through the whole spread of the population.

The test: d is regressed on x = log(flops(projection) / flops(model)) with an intercept, so the few percent
by which a projection misses its model's flops (``projection.TOLERANCE``) are held equal as well; the
intercept is the effect at equal flops (with x = 0 for every pair it is the mean of d). Under "no effect" the
residuals of the reduced model (d on x, no intercept) are symmetric about 0 (a pair's two errors are
exchangeable when the constraint does nothing), so their signs are flipped (Freedman-Lane with sign flips):
exact for symmetric errors, whatever their scale from pair to pair (heteroscedastic, heavy-tailed, tied).
``p_better`` is the one-sided p of a negative effect (the projection has lower error), ``p_worse`` of a
positive one; the interval for the effect is the regression's t interval.

Sequential stopping (``SequentialRule``, ``sequential``): the pairs come in looks (10 pairs at the first, then
batches of 20); after each, the effect's t statistic on all pairs so far, put on the normal scale (z = the normal
quantile of its t probability: a self-normalised sum is bounded by sqrt(n) and could never cross an early boundary),
is compared with a one-sided group-sequential boundary computed for Gaussian increments from Lan-DeMets alpha
spending at information fraction t = pairs / max pairs: O'Brien-Fleming-type (the default; alpha(t) = 2 - 2 Phi(z_{1
- alpha/2} / sqrt(t)), strict early, near the fixed-n test at the end) or Pocock-type. Crossing stops for "better";
from information fraction ``FUTILITY_FROM`` (a third of the maximum of pairs) on, an effect pointing the harmful way
(z < 0) stops for futility, and the boundaries are computed with that stop binding (``boundaries``: the loop always
stops there, so the alpha it would leave unspent goes to lower boundaries). Earlier looks are too noisy for it:
stopping at z < 0 from the first look (10 of 60 pairs) cut a small effect's power to 0.78 however many pairs were
allowed. The small first look still pays in the loop: a round's composition can be decided after it (``loop.py``).
Across the k candidates of a round, Holm applies to the fixed-n p-values (``analysis.edf.holm``); sequential rules
run each at alpha / k (Holm's first step, Bonferroni). The calibration (analysis/design_loop/paired_calibration.py,
tests/test_paired.py) measures the fixed-n test's and the sequential rules' level on null oracles and their power on
planted ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

BATCH = 20  # pairs per look after the first
FIRST_LOOK = 10  # pairs at the first look
FUTILITY_FROM = 1 / 3  # the information fraction (pairs / maximum) from which z < 0 stops for futility
_CHUNK = 512
_Z_MAX = 30.0  # a z beyond any boundary (a batch of identical differences has no spread)
_BOUNDARY_PATHS = 400_000


@dataclass(frozen=True)
class PairedTest:
    """The effect at equal flops (mean paired difference, error points; < 0: the constraint helps), its
    ``level`` interval, one-sided sign-flip p-values, ``z`` (``z_statistic``) and the pairs used."""

    n: int
    effect: float
    low: float
    high: float
    p_better: float
    p_worse: float
    z: float
    level: float = 0.95


def _design(differences: np.ndarray, log_ratios: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(c, r): the intercept's weights (intercept = c @ d) and the reduced model's residuals."""
    n = len(differences)
    if log_ratios is None or n < 4 or np.ptp(log_ratios) == 0:
        return np.full(n, 1.0 / n), differences.copy()
    x = np.asarray(log_ratios, float)
    design = np.stack([np.ones(n), x], axis=1)
    c = np.linalg.pinv(design)[0]
    slope = float(x @ differences / (x @ x)) if x @ x > 0 else 0.0
    return c, differences - slope * x


def paired_test(differences, log_ratios=None, *, permutations: int = 2000, seed: int = 0,
                level: float = 0.95) -> PairedTest:
    """The paired test of ``differences`` (error(projection) - error(model)), holding ``log_ratios`` (log flops
    ratio of each pair) equal when given."""
    d = np.asarray(differences, float)
    keep = np.isfinite(d) if log_ratios is None else np.isfinite(d) & np.isfinite(np.asarray(log_ratios, float))
    d = d[keep]
    x = None if log_ratios is None else np.asarray(log_ratios, float)[keep]
    n = len(d)
    if n < 2:
        return PairedTest(n, float("nan"), float("nan"), float("nan"), 1.0, 1.0, 0.0, level)
    c, r = _design(d, x)
    effect = float(c @ d)
    rng = np.random.default_rng(seed)
    at_most = at_least = done = 0
    while done < permutations:
        size = min(_CHUNK, permutations - done)
        null = (rng.choice((-1.0, 1.0), size=(size, n)) * r) @ c
        at_most += int(np.sum(null <= effect + 1e-12))
        at_least += int(np.sum(null >= effect - 1e-12))
        done += size
    se, dof = _interval(d, x, c, effect)
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    return PairedTest(n, effect, effect - half, effect + half, (1 + at_most) / (1 + permutations),
                      (1 + at_least) / (1 + permutations), z_statistic(d, x), level)


def _interval(d: np.ndarray, x: np.ndarray | None, c: np.ndarray, effect: float) -> tuple[float, int]:
    """(standard error of the effect, degrees of freedom): the regression's, from the full model's residuals."""
    n = len(d)
    if x is None or np.allclose(c, 1.0 / n):
        residuals, dof = d - effect, n - 1
    else:
        design = np.stack([np.ones(n), x], axis=1)
        residuals, dof = d - design @ np.linalg.lstsq(design, d, rcond=None)[0], n - 2
    dof = max(dof, 1)
    return float(np.sqrt(residuals @ residuals / dof * (c @ c))), dof


def z_statistic(differences, log_ratios=None) -> float:
    """The pairs' evidence so far on the normal scale (< 0: the constraint helps): the effect's t statistic
    turned into the normal quantile of its t probability, so boundaries for Gaussian increments apply
    with an estimated variance, at 20 pairs as at 200."""
    d = np.asarray(differences, float)
    x = None if log_ratios is None else np.asarray(log_ratios, float)
    c, _ = _design(d, x)
    effect = float(c @ d)
    se, dof = _interval(d, x, c, effect)
    if se == 0:
        return 0.0 if effect == 0 else float(np.sign(effect)) * _Z_MAX
    t = effect / se
    return float(np.sign(t) * min(_Z_MAX, stats.norm.isf(stats.t.sf(abs(t), dof))))  # isf: exact in the tails


SPENDING = ("obrien-fleming", "pocock")


def spending(t: np.ndarray, alpha: float, kind: str = "obrien-fleming") -> np.ndarray:
    """Alpha spent by information fraction t (one-sided level ``alpha``), Lan-DeMets forms:
    O'Brien-Fleming-type 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t)) (little early, near the fixed-n test at the
    end) or Pocock-type alpha ln(1 + (e - 1) t) (evenly: stops early more often, needs more at the end)."""
    t = np.asarray(t, float)
    if kind == "obrien-fleming":
        return 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t))
    if kind == "pocock":
        return alpha * np.log1p((np.e - 1) * t)
    raise ValueError(f"spending must be one of {', '.join(SPENDING)}, got {kind!r}")


def futility_applies(look: int, max_pairs: int) -> bool:
    """Whether a look at ``look`` of ``max_pairs`` pairs may stop for futility (from ``FUTILITY_FROM`` on)."""
    return look >= FUTILITY_FROM * max_pairs - 1e-9


@lru_cache(maxsize=64)
def boundaries(looks: tuple[int, ...], alpha: float, kind: str = "obrien-fleming") -> tuple[float, ...]:
    """One-sided efficacy boundaries for z at the cumulative pair counts ``looks``: each look spends what
    ``spending`` allows by its information fraction, for Gaussian increments (simulated, fixed seed), with the
    futility stop (z < 0 from ``FUTILITY_FROM`` on) binding: a path that stops for futility spends nothing
    later, so the boundaries are lower than without it and the rule spends all of ``alpha`` (left non-binding,
    a futility stop at every look held the O'Brien-Fleming-type rule at 2.65-2.80% for alpha 5%)."""
    rng = np.random.default_rng(20281)
    sizes = np.diff(np.r_[0, np.asarray(looks)])
    sums = np.cumsum(rng.normal(size=(_BOUNDARY_PATHS, len(looks))) * np.sqrt(sizes), axis=1)
    z = sums / np.sqrt(np.asarray(looks, float))
    spent = spending(np.asarray(looks) / looks[-1], alpha, kind)
    alive = np.ones(_BOUNDARY_PATHS, bool)
    out, used = [], 0.0
    for k in range(len(looks)):
        allowed = int(round((spent[k] - used) * _BOUNDARY_PATHS))
        values = np.sort(z[alive, k])[::-1]
        bound = float(values[allowed]) if 0 <= allowed < len(values) else float("inf")
        crossed = alive & (z[:, k] > bound)
        used += crossed.sum() / _BOUNDARY_PATHS
        alive &= ~crossed
        if futility_applies(looks[k], looks[-1]):
            alive &= z[:, k] >= 0
        out.append(bound)
    return tuple(out)


@dataclass(frozen=True)
class Sequential:
    """How a sequential paired evaluation ended: ``decision`` "better" (crossed the boundary), "futile"
    (stopped early, effect in the wrong direction) or "not better" (every look used); the ``pairs`` used, the
    ``looks`` taken, the last z and boundary, and the fixed-n test of the pairs used (for the interval and
    p_worse, which are descriptive after a sequential stop)."""

    decision: str
    pairs: int
    looks: int
    z: float
    boundary: float
    test: PairedTest


class SequentialRule:
    """The stopping rule of one sequential paired evaluation, applied look by look: ``looks`` are the cumulative
    pair counts (``first``, then every ``batch`` up to ``max_pairs``, the last look at ``max_pairs`` itself);
    ``decide`` says at look k "better" when z crosses the ``spend`` boundary (one-sided at ``alpha``), "futile"
    when the effect points the harmful way from ``FUTILITY_FROM`` of the pairs on, "not better" at the last
    look, else "" (go on). The design loop drives several such rules at once, a look of each in turn
    (``loop.py``); ``sequential`` drives one."""

    def __init__(self, max_pairs: int, *, alpha: float = 0.05, batch: int = BATCH, first: int = FIRST_LOOK,
                 spend: str = "obrien-fleming"):
        self.looks = tuple(sorted({min(first, max_pairs), *range(batch, max_pairs, batch), max_pairs}))
        self.bounds = boundaries(self.looks, alpha, spend)

    def decide(self, k: int, differences, log_ratios=None) -> tuple[str, float]:
        """(decision, z) at look ``k`` (0-based) from the pairs so far (> 0 z: the constraint helps)."""
        z = -z_statistic(differences, log_ratios)
        if z > self.bounds[k]:
            return "better", z
        if z < 0 and futility_applies(self.looks[k], self.looks[-1]):
            return "futile", z
        return ("not better" if k == len(self.looks) - 1 else ""), z


def sequential(next_pairs: Callable[[int, int], tuple[np.ndarray, np.ndarray | None]], max_pairs: int, *,
               alpha: float = 0.05, batch: int = BATCH, first: int = FIRST_LOOK, spend: str = "obrien-fleming",
               permutations: int = 2000, seed: int = 0) -> Sequential:
    """Evaluate pairs look by look (``next_pairs(start, stop)`` returns the differences and log flops ratios of
    pairs start..stop-1) up to ``max_pairs`` under ``SequentialRule``."""
    rule = SequentialRule(max_pairs, alpha=alpha, batch=batch, first=first, spend=spend)
    d: list[float] = []
    x: list[float] = []
    with_ratios = True
    for k, look in enumerate(rule.looks):
        diffs, ratios = next_pairs(len(d), look)
        d.extend(np.asarray(diffs, float).tolist())
        if ratios is None:
            with_ratios = False
        else:
            x.extend(np.asarray(ratios, float).tolist())
        d_so_far = np.asarray(d)
        x_so_far = np.asarray(x) if with_ratios else None
        decision, z = rule.decide(k, d_so_far, x_so_far)
        if decision:
            test = paired_test(d_so_far, x_so_far, permutations=permutations, seed=seed)
            return Sequential(decision, look, k + 1, z, rule.bounds[k], test)
    raise AssertionError("unreachable: the last look always decides")
