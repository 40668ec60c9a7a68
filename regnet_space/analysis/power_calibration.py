"""Is the power planner's n worth planning with? Pilots drawn from known error distributions, planned, and the
true power at the planned n measured by fresh simulation from the truth.

A planner is judged by what its n does on the population the pilot came from, not by what it promises: for each
pilot of ``PILOT_N`` models the planner picks n for a nominal power (0.80); the truth's power at that n is known
by simulation (``true_power``, cached per n since it depends on the truth alone), and a pilot counts as well
planned when that power lies within ``WINDOW``. The truths are shaped like proxy error tables: normal,
heavy-tailed (t with 3 degrees of freedom), right-skewed (a gamma tail of bad models) and tied (errors rounded to
half a point, as a 200-image validation set reports them). ``analysis/calibration/power.py`` runs it at full
size; the tests run a few pilots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import optimize, stats

from .power import ASSURANCE, Pilot, ks_counts, ks_critical_count, plan_gap, required_n, shift_for_ks, \
    welch_pvalues

PILOT_N = 40
WINDOW = (0.70, 0.90)


@dataclass
class Truth:
    """A population of errors: ``raw`` draws the underlying values, whose CDF is ``cdf``; a model's reported error
    is ``raw`` rounded to ``step`` points (0: not rounded), after any shift, as a real measurement would be."""

    name: str
    raw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
    cdf: Callable[[np.ndarray], np.ndarray]
    step: float = 0.0
    _power: dict = field(default_factory=dict, repr=False)

    def observe(self, values: np.ndarray) -> np.ndarray:
        return np.round(values / self.step) * self.step if self.step else values

    def shift_for_ks(self, distance: float) -> float:
        """The shift s with sup |F(x) - F(x - s)| = ``distance`` for the unrounded errors."""
        sample = self.raw(np.random.default_rng(0), (20_000,))
        grid = np.linspace(sample.min() - 10, sample.max() + 10, 40_001)
        base = self.cdf(grid)
        return optimize.brentq(lambda s: np.max(base - self.cdf(grid - s)) - distance, 1e-6, 40.0)

    def power(self, n: int, shift: float, test: str, alpha: float, replicates: int = 4000) -> float:
        """The power of ``test`` at n per space against this population shifted by ``shift`` (raw units)."""
        key = (n, round(shift, 9), test, alpha, replicates)
        if key not in self._power:
            rng = np.random.default_rng([n, replicates])
            raw = self.raw(rng, (replicates, n))
            x, y = self.observe(raw), self.observe(self.raw(rng, (replicates, n)) + shift)
            if test == "ks":
                self._power[key] = float(np.mean(ks_counts(x, y) >= ks_critical_count(n, alpha)))
            else:
                self._power[key] = float(np.mean(welch_pvalues(x, y) <= alpha))
        return self._power[key]


def truths() -> list[Truth]:
    """The four populations, errors in % around 20-25 with a spread of about 2 points."""
    t3 = stats.t(3, loc=25, scale=1.5)
    gamma = stats.gamma(2, loc=20, scale=1.5)
    normal = stats.norm(25, 2)
    return [
        Truth("normal", lambda rng, shape: rng.normal(25, 2, shape), normal.cdf),
        Truth("heavy-tailed (t3)", lambda rng, shape: 25 + 1.5 * rng.standard_t(3, shape), t3.cdf),
        Truth("skewed (gamma 2)", lambda rng, shape: 20 + rng.gamma(2, 1.5, shape), gamma.cdf),
        Truth("ties (normal, rounded to 0.5)", lambda rng, shape: rng.normal(25, 2, shape), normal.cdf, step=0.5),
    ]


def calibrate(truth: Truth, pilots: int, *, ks: float = 0.2, gap: float = 1.0, power: float = 0.8,
              alpha: float = 0.05, replicates: int = 400, seed: int = 0) -> dict[str, dict]:
    """For ``pilots`` pilots of ``truth``: the planned n and its true power, for a KS distance ``ks`` (KS test)
    and for a ``gap``-point mean gap (Welch's t; the planner's assured n and, for contrast, the n for the
    pilot's own variance). Returns, per plan, the lists ``n`` and ``true_power``."""
    true_ks_shift = truth.shift_for_ks(ks)
    plans: dict[str, dict] = {name: {"n": [], "true_power": []} for name in
                              (f"ks {ks:g}", f"gap {gap:g} (assured {ASSURANCE:.0%})", f"gap {gap:g} (point)")}
    ks_plan, assured_plan, point_plan = plans.values()

    def record(plan: dict, n: int | None, shift: float, test: str) -> None:
        plan["n"].append(n)
        plan["true_power"].append(None if n is None else truth.power(n, shift, test, alpha))

    for index in range(pilots):
        rng = np.random.default_rng([seed, index])
        pilot = Pilot.of(truth.observe(truth.raw(rng, (PILOT_N,))))
        n_ks = required_n(pilot, pilot, shift=shift_for_ks(pilot, ks), test="ks", power=power, alpha=alpha,
                          replicates=replicates, seed=index)
        record(ks_plan, n_ks, true_ks_shift, "ks")
        planned = plan_gap(pilot, gap, power=power, alpha=alpha, replicates=replicates, seed=index)
        record(assured_plan, planned["n_mean"], gap, "mean")
        record(point_plan, planned["n_mean_point"], gap, "mean")
    return plans


def summary(plan: dict) -> dict:
    """Share of pilots whose true power lies in ``WINDOW`` and at or above its lower end, with Clopper-Pearson 95%
    intervals, and the spread of the planned n."""
    powers = np.array([np.nan if p is None else p for p in plan["true_power"]])
    total = len(powers)
    out = {"pilots": total}
    for name, hits in (("in_window", (powers >= WINDOW[0]) & (powers <= WINDOW[1])),
                       ("at_least_low", powers >= WINDOW[0])):
        k = int(np.sum(hits))
        ci = stats.binomtest(k, total).proportion_ci(0.95)
        out[name] = {"rate": round(k / total, 4), "hits": k, "ci95": [round(ci.low, 4), round(ci.high, 4)]}
    ns = np.array([np.nan if n is None else n for n in plan["n"]], dtype=float)
    out["n_quantiles_10_50_90"] = [float(q) for q in np.nanquantile(ns, [0.1, 0.5, 0.9])]
    out["true_power_quantiles_10_50_90"] = [round(float(q), 3) for q in np.nanquantile(powers, [0.1, 0.5, 0.9])]
    return out
