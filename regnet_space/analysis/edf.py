"""Error EDFs of design spaces, plain and complexity-normalised, with bands, KS tests and best-of-k.

A design space is judged by the distribution of its models' errors, not by one lucky model. The plain EDF is
F(e) = fraction of models with error <= e. The normalised EDF ("On Network Design Spaces", NDS) weights each
model by 1/(k*m_j), m_j the models of its group in its complexity bin, so two spaces are compared as if their
models had the same (uniform over k bins) complexity distribution.

Comparisons of several groups come as a family: each pair's p-value is also given Holm-adjusted over the
family (``p_holm``), with a bootstrap interval for the difference in (weighted) mean error.

A normalised comparison is a comparison at equal complexity, and bins make it one only when models are spread
evenly *within* each bin: if one space's models sit at the top of every bin and error falls with complexity,
binning alone credits it with what its extra complexity buys (issue 27: 26% rejections of a true null at
n = 1,000 under strong within-bin skew). So the normalised tests and intervals work on errors adjusted within
their bin to the bin's mean complexity (``within_bin_adjusted``: one slope, fitted on every model of every
group, so it is the same for every relabelling and the within-bin permutation stays exact). The EDFs drawn are
the plain normalised ones.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError
from .bootstrap import mean_difference_ci
from .table import Columns, as_columns, column_names, group_rows, known_errors, missing

if TYPE_CHECKING:
    import pandas as pd

_PERMUTATION_CHUNK = 64


@dataclass(frozen=True)
class EDF:
    """A (weighted) empirical distribution of errors: F at every distinct error, right-continuous."""

    errors: np.ndarray  # distinct errors, ascending
    cdf: np.ndarray  # F(errors[i]) = total weight of models with error <= errors[i]
    n: int  # models
    n_eff: float  # Kish effective sample size (sum w)^2 / sum w^2; equals n without weights
    mean_error: float

    @property
    def min_error(self) -> float:
        return float(self.errors[0])

    def band(self, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """The (1 - alpha) simultaneous band around F: DKW with n, or with the effective n when weighted."""
        eps = dkw_halfwidth(self.n_eff, alpha)
        return np.clip(self.cdf - eps, 0, 1), np.clip(self.cdf + eps, 0, 1)

    def expected_best(self, ks: np.ndarray) -> np.ndarray:
        """Expected lowest error of a random search drawing k models from this EDF, for each k in ``ks``.

        Exact: E[min of k draws] = e_1 + sum_i (e_{i+1} - e_i) * (1 - F(e_i))^k.
        """
        gaps = np.diff(self.errors)
        log_survival = np.log(np.clip(1.0 - self.cdf[:-1], 1e-300, None))
        ks = np.asarray(ks, dtype=float)
        out = np.empty(len(ks))
        for start in range(0, len(ks), 256):  # bounded memory: a (256, distinct errors) matrix at a time
            chunk = ks[start:start + 256]
            out[start:start + 256] = self.errors[0] + np.exp(chunk[:, None] * log_survival[None, :]) @ gaps
        return out


def edf(errors: np.ndarray, weights: np.ndarray | None = None) -> EDF:
    """The EDF of ``errors``; ``weights`` (any positive scale) default to equal."""
    errors = np.asarray(errors, dtype=float)
    if errors.size == 0:
        raise UserError("an EDF needs at least one model")
    weights = np.full(errors.size, 1.0 / errors.size) if weights is None else np.asarray(weights, float)
    weights = weights / weights.sum()
    order = np.argsort(errors, kind="stable")
    sorted_errors, cumulative = errors[order], np.cumsum(weights[order])
    last_of_tie = np.r_[sorted_errors[1:] != sorted_errors[:-1], True]
    cdf = np.minimum(cumulative[last_of_tie], 1.0)
    cdf[-1] = 1.0
    return EDF(errors=sorted_errors[last_of_tie], cdf=cdf, n=int(errors.size),
               n_eff=float(1.0 / np.sum(weights**2)), mean_error=float(np.dot(weights, errors)))


def dkw_halfwidth(n_eff: float, alpha: float = 0.05) -> float:
    """Dvoretzky-Kiefer-Wolfowitz: P(sup |F_n - F| > eps) <= alpha for eps = sqrt(ln(2/alpha) / 2n)."""
    return float(np.sqrt(np.log(2.0 / alpha) / (2.0 * n_eff)))


@dataclass(frozen=True)
class Binning:
    """Equal-width complexity bins over [lo, hi] (both ends included)."""

    lo: float
    hi: float
    bins: int

    def assign(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value; -1 for values outside [lo, hi]."""
        values = np.asarray(values, dtype=float)
        index = np.minimum(((values - self.lo) / (self.hi - self.lo) * self.bins).astype(int), self.bins - 1)
        return np.where((values >= self.lo) & (values <= self.hi), index, -1)

    def edges(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.bins + 1)


def normalised_weights(bins: np.ndarray, num_bins: int) -> np.ndarray:
    """Weight 1/(k*m_j) for each model, m_j the models in its bin j; every bin must hold a model."""
    counts = np.bincount(bins, minlength=num_bins)
    return 1.0 / (num_bins * counts[bins])


def shared_range(groups: dict[str, np.ndarray], metric: str) -> tuple[float, float]:
    """The complexity span every group covers: [largest group minimum, smallest group maximum]."""
    lo = max(float(np.min(v)) for v in groups.values())
    hi = min(float(np.max(v)) for v in groups.values())
    if not lo < hi:
        raise UserError(f"the groups share no {metric} range (largest minimum {lo:g} >= smallest maximum {hi:g}); "
                        f"give --range lo:hi")
    return lo, hi


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment: the i-th smallest of m p-values becomes max_{j<=i} min(1, (m-j+1) p_(j)).

    Rejecting every hypothesis whose adjusted p is <= alpha keeps the family-wise error rate <= alpha under any
    dependence between the tests, and rejects at least as much as Bonferroni.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def ks_test(errors_a: np.ndarray, errors_b: np.ndarray, bins_a: np.ndarray | None = None,
            bins_b: np.ndarray | None = None, num_bins: int = 0, *, permutations: int = 1000,
            seed: int = 0) -> dict[str, Any]:
    """KS statistic and p-value between two groups: scipy's for plain EDFs, a stratified permutation test for
    normalised ones.

    For normalised EDFs the group labels are permuted *within* each complexity bin, so every permuted group
    keeps its own number of models per bin, hence its weights, exactly as observed. Shuffling across bins
    instead would give each permuted group the pooled complexity mix and a larger effective n, a null
    distribution too narrow for the observed statistic (35-47% false rejections at alpha = 0.05, issue 13).
    """
    if bins_a is None:
        from scipy import stats  # here: scipy.stats takes 0.7 s to import, and only the plain test needs it

        result = stats.ks_2samp(errors_a, errors_b)
        return {"statistic": float(result.statistic), "pvalue": float(result.pvalue), "method": "scipy.ks_2samp"}
    errors = np.concatenate([errors_a, errors_b])
    order = np.argsort(errors, kind="stable")
    errors, bins = errors[order], np.concatenate([bins_a, bins_b])[order]
    labels = order < len(errors_a)
    weights = stratum_weights(labels, bins, num_bins)
    last_of_tie = np.r_[errors[1:] != errors[:-1], True]
    observed = float(np.abs(edf_gaps(labels[None, :], bins, weights, last_of_tie)).max())
    rng = np.random.default_rng(seed)
    exceed, done = 0, 0
    while done < permutations:
        size = min(_PERMUTATION_CHUNK, permutations - done)
        gaps = edf_gaps(permute_within_bins(labels, bins, size, rng), bins, weights, last_of_tie)
        exceed += int(np.sum(np.abs(gaps).max(axis=1) >= observed - 1e-12))
        done += size
    return {"statistic": observed, "pvalue": (1 + exceed) / (1 + permutations),
            "method": f"permutation within {num_bins} bins of within-bin adjusted errors ({permutations}, seed {seed})"}


def within_bin_adjusted(errors: np.ndarray, values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """``errors`` moved to their bin's mean complexity: e - beta (x - mean of x in the bin), beta the pooled
    within-bin slope of error on complexity ``values``. The slope is fitted on errors clipped to their 2.5-97.5
    percentiles, so a diverged model (error at chance) cannot tilt it."""
    errors, values = np.asarray(errors, dtype=float), np.asarray(values, dtype=float)
    low, high = np.percentile(errors, [2.5, 97.5])
    clipped = np.clip(errors, low, high)
    centred_x = values - _bin_means(values, bins)
    centred_e = clipped - _bin_means(clipped, bins)
    spread = float(centred_x @ centred_x)
    slope = float(centred_x @ centred_e) / spread if spread > 0 else 0.0
    return errors - slope * centred_x


def _bin_means(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    sums = np.bincount(bins, weights=values)
    return (sums / np.maximum(np.bincount(bins), 1))[bins]


def permute_within_bins(labels: np.ndarray, bins: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` rows, each ``labels`` shuffled among the models of the same bin (a uniform random permutation
    within every bin). Sorting bin + U[0, 1) orders the models by bin and at random inside a bin; the labels,
    listed in bin order, are then written to those positions."""
    in_bin_order = labels[np.argsort(bins, kind="stable")]
    positions = np.argsort(bins[None, :] + rng.random((size, len(labels))), axis=1)
    out = np.empty((size, len(labels)), dtype=labels.dtype)
    out[np.arange(size)[:, None], positions] = in_bin_order[None, :]
    return out


def stratum_weights(labels: np.ndarray, bins: np.ndarray, num_bins: int) -> np.ndarray:
    """The NDS weight 1/(k*m_j) of one model of each group in each bin, (2, num_bins): row 1 for group a
    (``labels`` True), row 0 for the other; k is the group's count of non-empty bins, m_j its models in bin j
    (0 where it has none). A permutation within bins keeps every group's count in every bin, so these weights
    hold for every permuted labelling too: only which errors carry them moves."""
    weights = np.zeros((2, num_bins))
    for row, member in ((1, labels), (0, ~labels)):
        counts = np.bincount(bins[member], minlength=num_bins)
        filled = counts > 0
        weights[row, filled] = 1.0 / (np.count_nonzero(filled) * counts[filled])
    return weights


def edf_gaps(labels: np.ndarray, bins: np.ndarray, weights: np.ndarray, last_of_tie: np.ndarray) -> np.ndarray:
    """F_a - F_b at every distinct error, for each row of ``labels`` (True = group a), errors ascending;
    ``weights`` from ``stratum_weights`` of a labelling with the same counts per bin, ``last_of_tie`` marks the
    last model of each distinct error. One cumulative sum of the signed weights per row."""
    signed = np.where(labels, weights[1][bins], -weights[0][bins])
    return np.cumsum(signed, axis=1, out=signed)[:, last_of_tie]


@dataclass(frozen=True)
class Comparison:
    """EDFs of every group, the pairwise tests, and how models were normalised.

    Each entry of ``ks`` is one pair: ``a``, ``b``, ``statistic`` (KS D), ``pvalue`` (that test alone),
    ``p_holm`` (Holm-adjusted over all the pairs of this comparison), ``mean_diff`` (mean error of a minus b
    in percent, weighted when normalised), ``mean_diff_ci`` ((lo, hi), the bootstrap interval at ``level``)
    and ``method``.
    """

    edfs: dict[str, EDF]
    ks: list[dict[str, Any]]
    normalize: str | None = None
    binning: Binning | None = None
    dropped: dict[str, int] | None = None
    level: float = 0.95

    def pair(self, a: str, b: str) -> dict[str, Any]:
        """The test of ``a`` against ``b`` (either order; ``mean_diff`` is then a minus b as asked)."""
        for test in self.ks:
            if (test["a"], test["b"]) == (a, b):
                return test
            if (test["a"], test["b"]) == (b, a):
                lo, hi = test["mean_diff_ci"]
                return {**test, "a": a, "b": b, "mean_diff": -test["mean_diff"], "mean_diff_ci": (-hi, -lo)}
        raise KeyError(f"no comparison of {a!r} and {b!r}")

    def holm_note(self) -> str:
        """The sentence that goes beside the p-values of a table of these tests."""
        return (f"p_holm: Holm-adjusted over the {len(self.ks)} pairwise comparisons; mean_diff: mean error "
                f"of a minus b{' (weighted, at equal complexity within bins)' if self.binning else ''} with its "
                f"{self.level:.0%} bootstrap interval")

    def to_json(self, alpha: float = 0.05) -> dict[str, Any]:
        groups = {}
        for name, e in self.edfs.items():
            group = {"n": e.n, "min_error": e.min_error, "mean_error": e.mean_error,
                     "edf": [[float(x), float(f)] for x, f in zip(e.errors, e.cdf)],
                     "n_eff": e.n_eff, "band_halfwidth": dkw_halfwidth(e.n_eff, alpha),
                     "expected_best": [float(v) for v in e.expected_best(np.arange(1, e.n + 1))]}
            if self.dropped is not None:
                group["dropped"] = self.dropped[name]
            groups[name] = group
        ks = [{**t, "mean_diff_ci": list(t["mean_diff_ci"])} for t in self.ks]
        out: dict[str, Any] = {"groups": groups, "ks": ks, "alpha": alpha,
                               "multiple_comparisons": {"method": "holm", "family": len(self.ks),
                                                        "note": self.holm_note()},
                               "mean_diff_level": self.level}
        if self.binning is not None:
            out["normalize"] = {"metric": self.normalize, "bins": self.binning.bins,
                                "range": [self.binning.lo, self.binning.hi]}
        return out


def _pair_tests(kept: dict[str, tuple[np.ndarray, np.ndarray | None]], num_bins: int, *, permutations: int,
                seed: int, level: float, ci_samples: int) -> list[dict[str, Any]]:
    """Every pair's KS test and mean-difference interval, then Holm over the pairs."""
    tests = []
    for a, b in itertools.combinations(kept, 2):
        (errors_a, bins_a), (errors_b, bins_b) = kept[a], kept[b]
        test = ks_test(errors_a, errors_b, bins_a, bins_b, num_bins, permutations=permutations, seed=seed)
        diff, ci = mean_difference_ci(errors_a, errors_b, bins_a, bins_b, num_bins, level=level,
                                      samples=ci_samples, seed=seed)
        tests.append({"a": a, "b": b, **test, "mean_diff": diff, "mean_diff_ci": ci})
    for test, adjusted in zip(tests, holm([t["pvalue"] for t in tests])):
        test["p_holm"] = float(adjusted)
    return tests


def compare(frame: pd.DataFrame | Columns, by: str = "space", *, normalize: str | None = None,
            bins: int | None = None, value_range: tuple[float, float] | None = None, permutations: int = 1000, seed: int = 0,
            level: float = 0.95, ci_samples: int = 2000) -> Comparison:
    """The (normalised) EDF of each group of ``frame`` (a DataFrame or ``table.Columns``, grouped by column
    ``by``), KS tests between every pair (Holm-adjusted over the pairs) and bootstrap intervals at ``level`` for
    their differences in mean error. ``bins`` None: the rule of ``bins.choose_bins`` (the one every command
    uses)."""
    if by not in column_names(frame):
        raise UserError(f"--by {by}: no such column (columns: {', '.join(column_names(frame))})")
    if not 0 < level < 1:
        raise UserError(f"the interval level must be in (0, 1), got {level}")
    columns = as_columns(frame, [by, "error"] + ([normalize] if normalize else []))
    groups = group_rows(columns[by])
    errors = np.asarray(columns["error"], dtype=float)
    known = known_errors(errors, "the comparison")  # issue 27: NaN sorted as the worst gave p 0.032 on a null
    if not known.all():
        groups = {name: rows[known[rows]] for name, rows in groups.items() if known[rows].any()}
    options = {"permutations": permutations, "seed": seed, "level": level, "ci_samples": ci_samples}
    if normalize is None:
        edfs = {name: edf(errors[rows]) for name, rows in groups.items()}
        plain = {name: (errors[rows], None) for name, rows in groups.items()}
        return Comparison(edfs, _pair_tests(plain, 0, **options), level=level)
    if normalize not in columns or missing(columns[normalize]).all():
        raise UserError(f"--normalize {normalize}: the table has no {normalize!r} column")
    metric = np.asarray(columns[normalize], dtype=float)
    if bins is None:
        from .bins import choose_bins

        choice = choose_bins(columns, normalize, by=by, value_range=value_range)
        if choice.bins is None:
            raise UserError(f"too few models for a comparison normalised by {normalize}: {choice.rule()} "
                            f"leaves no bin")
        bins, value_range = choice.bins, (choice.lo, choice.hi)
    if bins < 1:
        raise UserError(f"--bins must be >= 1, got {bins}")
    sizes = {name: len(rows) for name, rows in groups.items()}
    groups = {name: rows[~np.isnan(metric[rows])] for name, rows in groups.items()}
    lo, hi = value_range or shared_range({name: metric[rows] for name, rows in groups.items()}, normalize)
    if not lo < hi:
        raise UserError(f"--range {lo:g}:{hi:g}: lo must be below hi")
    binning = Binning(lo, hi, bins)
    kept, dropped = {}, {}
    for name, rows in groups.items():
        index = binning.assign(metric[rows])
        counts = np.bincount(index[index >= 0], minlength=bins)
        if not counts.all():
            j = int(np.flatnonzero(counts == 0)[0])
            edges = binning.edges()
            raise UserError(f"group {name!r}: no models with {normalize} in bin {j + 1}/{bins} "
                            f"[{edges[j]:g}, {edges[j + 1]:g}]; use fewer --bins or another --range")
        kept[name] = (errors[rows][index >= 0], index[index >= 0], metric[rows][index >= 0])
        dropped[name] = sizes[name] - len(kept[name][0])  # outside the range, or no value
    edfs = {name: edf(errors, normalised_weights(index, bins)) for name, (errors, index, _) in kept.items()}
    pooled = [np.concatenate([k[i] for k in kept.values()]) for i in range(3)]
    adjusted = np.split(within_bin_adjusted(pooled[0], pooled[2], pooled[1]),
                        np.cumsum([len(k[0]) for k in kept.values()])[:-1])
    tested = {name: (a, k[1]) for (name, k), a in zip(kept.items(), adjusted)}
    return Comparison(edfs, _pair_tests(tested, bins, **options), normalize, binning, dropped, level)
