"""Is a candidate space better, or worse, than its parent at equal complexity? One-sided permutation tests.

The loop accepts a refinement only when its population is significantly *better* than the parent's at equal
flops, and reports when it is significantly *worse*. Both tests work on complexity-adjusted scores:

    s = the models' low-error ranks (both populations pooled) less a cubic in standardised log flops fitted to
        them (``analysis.adjust``): what is left of a model's rank once its complexity is accounted for;
    shift = mean s of the candidate's models - mean s of the parent's, as a share of the pooled models
            (> 0: better at equal flops; 0.1: its models rank 10% of the pool higher, on average).

p_better is the chance of a shift at least as large, p_worse of one at least as small, when the labels are
permuted *within* flops strata (quantiles of the pooled flops): the adjustment is fitted on the pooled models,
whatever their labels, so it is the same for every relabelling, and the strata keep what it leaves of the
complexity effect from making a difference. A difference in mean rank (a rank analysis of covariance) has more
power against the shifts constraints make than a KS distance; the one-sided KS distances of the adjusted
scores' EDFs (``d_better``, ``d_worse``) are reported beside it. Normalising by bins alone (the earlier test)
is exact only when flops are uniform within bins; issue 27 measured it rejecting up to 26% of true nulls with
skew inside bins at n = 1,000. Ranks keep one diverged model from dominating.
Calibration: analysis/design_loop/ and tests/test_design_loop.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis.adjust import adjusted_ranks, complexity_strata
from ..analysis.edf import edf_gaps, permute_within_bins, stratum_weights

_CHUNK = 128


@dataclass(frozen=True)
class OneSided:
    """The shift at equal flops with its one-sided permutation p-values (not adjusted for multiplicity), and
    the one-sided KS distances of the adjusted scores' EDFs."""

    shift: float
    d_better: float
    p_better: float
    d_worse: float
    p_worse: float
    dropped: int  # models left out: without a positive flops value

    @property
    def ks(self) -> float:
        """The two-sided KS statistic, max of the two one-sided ones."""
        return max(self.d_better, self.d_worse)


def one_sided_tests(parent: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray],
                    adjust: bool = True, *, permutations: int = 2000, seed: int = 0) -> OneSided:
    """Compare ``candidate`` = (errors, flops) with ``parent`` = (errors, flops) at equal flops.

    ``adjust`` False (no finite flops window) compares plain error ranks with labels permuted among all models.
    """
    errors = np.concatenate([np.asarray(parent[0], float), np.asarray(candidate[0], float)])
    flops = np.concatenate([np.asarray(parent[1], float), np.asarray(candidate[1], float)])
    is_candidate = np.r_[np.zeros(len(parent[0]), bool), np.ones(len(candidate[0]), bool)]
    keep = np.isfinite(errors) & (np.isfinite(flops) & (flops > 0) if adjust else True)
    dropped = int(np.sum(~keep))
    errors, flops, is_candidate = errors[keep], flops[keep], is_candidate[keep]
    if is_candidate.all() or not is_candidate.any():
        return OneSided(0.0, 0.0, 1.0, 0.0, 1.0, dropped)
    scores = adjusted_ranks(errors, flops if adjust else None) / len(errors)  # a shift of 0.1: 10% of the pool
    strata = complexity_strata(flops) if adjust else np.zeros(len(errors), dtype=np.int64)
    # sort by score, descending, so a cumulative sum walks from the best adjusted model down
    order = np.argsort(-scores, kind="stable")
    scores, is_candidate, strata = scores[order], is_candidate[order], strata[order]
    one_bin = np.zeros(len(scores), dtype=np.int64)
    weights = stratum_weights(is_candidate, one_bin, 1)  # 1/n of each group: permutations keep the counts
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]

    def statistics(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(D_better, D_worse) for each row of labels (True = candidate): the candidate's EDF of scores from
        the top, minus the parent's."""
        gaps = edf_gaps(labels, one_bin, weights, last_of_tie)
        return np.maximum(gaps.max(axis=1), 0.0), np.maximum((-gaps).max(axis=1), 0.0)

    def shifts(labels: np.ndarray) -> np.ndarray:
        """Mean score of the candidate's models minus the parent's, for each row of labels."""
        return (labels @ scores) / is_candidate.sum() - (~labels @ scores) / (~is_candidate).sum()

    observed = float(shifts(is_candidate[None, :])[0])
    d_better, d_worse = (float(s[0]) for s in statistics(is_candidate[None, :]))
    rng = np.random.default_rng(seed)
    at_least = at_most = done = 0
    while done < permutations:
        size = min(_CHUNK, permutations - done)
        null = shifts(permute_within_bins(is_candidate, strata, size, rng))
        at_least += int(np.sum(null >= observed - 1e-12))
        at_most += int(np.sum(null <= observed + 1e-12))
        done += size
    return OneSided(observed, d_better, (1 + at_least) / (1 + permutations), d_worse,
                    (1 + at_most) / (1 + permutations), dropped)
