"""The report's comparison of its spaces: the plain and the normalised EDFs with their tests, and the verdict
drawn from them (which space is better, by how much, how sure, and what the comparison could have seen: its power
for effects stated in advance, never for the difference it observed, whose "power" only restates the p-value).

It is one job a report can hand to a worker process: it needs only each model's space, error and the
normalising metric, and it is the only part of the report that imports scipy.stats (the plain KS test, the power
simulation), which costs a fresh process most of a second. ``power`` is therefore imported inside
``stated_power``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import UserError
from ..models.summary import compact, percent
from .bins import choose_bins
from .edf import Comparison, compare


@dataclass
class SpaceComparison:
    """What ``compare_spaces`` found: the plain comparison, the normalised one (None when it cannot be drawn),
    the sentences saying which bins it used and why, and the verdict (sentences, and whether it is sure)."""

    plain: Comparison
    normalised: Comparison | None
    binning_notes: list[str]
    verdict: list[str]
    sure: bool


def compare_spaces(frame: pd.DataFrame, normalize: str, bins: int, seed: int, *, effect_ks: float | None = None,
                   effect_gap: float | None = None) -> SpaceComparison:
    """The comparisons and the verdict of the report on ``frame`` (columns ``space``, ``error`` and, when the
    table has it, ``normalize``), normalised over at most ``bins`` bins; the verdict's power is for a KS
    distance ``effect_ks`` and a shift of ``effect_gap`` points."""
    plain = compare(frame, seed=seed)
    normalised, notes = normalised_comparison(frame, normalize, bins, seed)
    sentences, sure = verdict(frame, plain, normalised, seed=seed, effect_ks=effect_ks, effect_gap=effect_gap)
    return SpaceComparison(plain, normalised, notes, sentences, sure)


def normalised_comparison(frame: pd.DataFrame, metric: str, max_bins: int, seed: int
                          ) -> tuple[Comparison | None, list[str]]:
    """The normalised comparison with bins chosen by the rule of ``bins.py``, and the sentences that say which
    bins, why, and how many models each space lost to the range (or why there is no normalised EDF)."""
    if metric not in frame.columns or frame[metric].isna().all():
        return None, [f"no EDF normalised by {metric}: the table has no {metric} column"]
    try:
        choice = choose_bins(frame, metric, max_bins=max_bins)
    except UserError as exc:
        return None, [f"no EDF normalised by {metric}: {exc}"]
    rng = f"{compact(choice.lo)}..{compact(choice.hi)}"
    if choice.bins is None:
        return None, [f"no EDF normalised by {metric}: some space has fewer than {choice.min_per_bin} models with "
                      f"{metric} in {rng}, the range every space covers, so not even one bin can be filled."]
    comparison = compare(frame, normalize=metric, bins=choice.bins, value_range=(choice.lo, choice.hi), seed=seed)
    sizes = frame.groupby("space").size()
    lost = "; ".join(f"{name} {comparison.dropped[name]} of {sizes[name]}" for name in comparison.edfs)
    return comparison, [
        f"{choice.bins} bins of {metric} over {rng}: {choice.rule()}. Each model weighs 1/(bins x models of its "
        f"space in its bin), so every space counts as if its {metric} were uniform over the range.",
        f"Models left out because their {metric} lies outside {rng} (the range every space covers) or is unknown: "
        f"{lost}."]


def verdict(frame: pd.DataFrame, plain: Comparison, normalised: Comparison | None, *, seed: int = 0,
            alpha: float = 0.05, effect_ks: float | None = None, effect_gap: float | None = None
            ) -> tuple[list[str], bool]:
    """The report's first words: which space is better, by how much (mean error, with its CI), how sure
    (Holm-adjusted KS p) and how much the comparison could see: the KS test's power, at the study's n, to detect
    effects stated in advance (a KS distance ``effect_ks`` and a shift of ``effect_gap`` points), never the
    observed difference (post-hoc power restates the p-value; issue 27's audit saw 1.5%-94% on two identical
    spaces). Judged at equal complexity when the normalised EDF exists. Returns (sentences, whether the best space
    beats every other significantly)."""
    comparison = normalised or plain
    basis = (f"at equal {normalised.normalize} (normalised EDF)" if normalised is not None else
             "on the plain EDF (no normalised EDF could be drawn)")
    means = {name: e.mean_error for name, e in comparison.edfs.items()}
    if len(means) < 2:
        return [f"One space only ({next(iter(means), 'none')}): nothing to compare."], False
    best = min(means, key=means.get)
    errors = {str(name): g["error"].dropna().to_numpy(dtype=float) for name, g in frame.groupby("space")}
    family = len(comparison.ks)
    sentences, sure = [], True
    for other in sorted((n for n in means if n != best), key=means.get):
        test = comparison.pair(other, best)  # mean_diff = other - best > 0
        lo, hi = test["mean_diff_ci"]
        significant = test["p_holm"] < alpha and lo > 0
        sure &= significant
        head = (f"{best} is better than {other}" if significant else
                f"{best} and {other} cannot be told apart yet")
        sentences.append(
            f"{head} {basis}: mean error {percent(means[best])} vs {percent(means[other])}, "
            f"{test['mean_diff']:.1f} points lower ({1 - alpha:.0%} CI {lo:.1f} to {hi:.1f}); KS D = "
            f"{test['statistic']:.2f}, Holm-adjusted p = {test['p_holm']:.2g} over {family} comparison"
            f"{'s' if family > 1 else ''}.")
        sentence = stated_power(errors[best], errors[other], family, alpha=alpha, seed=seed, effect_ks=effect_ks,
                                effect_gap=effect_gap)
        if sentence:
            sentences.append(sentence)
    return sentences, sure


def stated_power(a: np.ndarray, b: np.ndarray, family: int, *, alpha: float, seed: int, effect_ks: float | None,
                 effect_gap: float | None) -> str | None:
    """The verdict's power sentence for two spaces' errors (None below 5 models a space): the KS test at level
    alpha / family (Holm's first step) with their n, in studies simulated from their pooled shape (each space's
    errors about its own mean, so the observed difference plays no part) shifted by the stated effects (None:
    the planner's defaults, ``power.DEFAULT_KS`` and ``power.DEFAULT_GAP``)."""
    from .power import DEFAULT_GAP, DEFAULT_KS, Pilot, shift_for_ks, simulated_power

    effect_ks = DEFAULT_KS if effect_ks is None else effect_ks
    effect_gap = DEFAULT_GAP if effect_gap is None else effect_gap
    n = min(len(a), len(b))
    if n < 5:
        return None
    pooled = Pilot.of(np.r_[a - a.mean(), b - b.mean()])
    level = alpha / family
    powers = [simulated_power(pooled, pooled, n, shift=shift, test="ks", alpha=level, seed=seed)
              for shift in (shift_for_ks(pooled, effect_ks), effect_gap)]
    return (f"Power for effects stated in advance (not the observed difference): with {n} models per space, the "
            f"KS test at level {alpha:g}/{family} (Holm's first step) detects a KS distance of {effect_ks:g} in "
            f"{powers[0]:.0%} and a shift of {effect_gap:g} point{'s' if effect_gap != 1 else ''} in error in "
            f"{powers[1]:.0%} of 400 studies simulated from the two spaces' pooled error shape (plain EDFs; a "
            f"normalised EDF has fewer effective models); `regnet-space power --ks/--gap` gives the n for 80%.")
