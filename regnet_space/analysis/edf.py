"""Error EDFs of design spaces, plain and complexity-normalised, with bands, KS tests and best-of-k.

A design space is judged by the distribution of its models' errors, not by one lucky model. The plain EDF is
F(e) = fraction of models with error <= e. The normalised EDF ("On Network Design Spaces", NDS) weights each
model by 1/(k*m_j), m_j the models of its group in its complexity bin, so two spaces are compared as if their
models had the same (uniform over k bins) complexity distribution.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import UserError

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


def ks_test(errors_a: np.ndarray, errors_b: np.ndarray, bins_a: np.ndarray | None = None,
            bins_b: np.ndarray | None = None, num_bins: int = 0, *, permutations: int = 1000,
            seed: int = 0) -> dict[str, Any]:
    """KS statistic and p-value between two groups: scipy's for plain EDFs, a permutation test for normalised.

    For normalised EDFs the group labels are permuted and each permuted group's weights recomputed from its
    own bin counts (a bin left empty by a permutation drops out of that group's k), so the statistic of every
    permutation is computed exactly like the observed one.
    """
    if bins_a is None:
        result = stats.ks_2samp(errors_a, errors_b)
        return {"statistic": float(result.statistic), "pvalue": float(result.pvalue), "method": "scipy.ks_2samp"}
    errors = np.concatenate([errors_a, errors_b])
    order = np.argsort(errors, kind="stable")
    errors, bins = errors[order], np.concatenate([bins_a, bins_b])[order]
    observed_labels = (order < len(errors_a))[None, :]
    observed = float(_weighted_ks(errors, bins, observed_labels, num_bins)[0])
    rng = np.random.default_rng(seed)
    exceed, done = 0, 0
    while done < permutations:
        size = min(_PERMUTATION_CHUNK, permutations - done)
        labels = rng.permuted(np.repeat(observed_labels, size, axis=0), axis=1)
        exceed += int(np.sum(_weighted_ks(errors, bins, labels, num_bins) >= observed - 1e-12))
        done += size
    return {"statistic": observed, "pvalue": (1 + exceed) / (1 + permutations),
            "method": f"permutation ({permutations}, seed {seed})"}


def _weighted_ks(errors: np.ndarray, bins: np.ndarray, labels: np.ndarray, num_bins: int) -> np.ndarray:
    """sup |F_a - F_b| of normalised EDFs, for each row of ``labels`` (True = group a); errors ascending."""
    rows = np.arange(labels.shape[0])[:, None]
    last_of_tie = np.r_[errors[1:] != errors[:-1], True]
    cdfs = []
    for member in (labels, ~labels):
        cells = (rows * num_bins + bins)[member]
        counts = np.bincount(cells, minlength=labels.shape[0] * num_bins).reshape(-1, num_bins)
        nonempty = np.count_nonzero(counts, axis=1)[:, None]
        weights = np.where(member, 1.0 / (nonempty * np.maximum(counts[rows, bins], 1)), 0.0)
        cdfs.append(np.cumsum(weights, axis=1)[:, last_of_tie])
    return np.abs(cdfs[0] - cdfs[1]).max(axis=1)


@dataclass(frozen=True)
class Comparison:
    """EDFs of every group, the pairwise KS tests, and how models were normalised."""

    edfs: dict[str, EDF]
    ks: list[dict[str, Any]]
    normalize: str | None = None
    binning: Binning | None = None
    dropped: dict[str, int] | None = None

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
        out: dict[str, Any] = {"groups": groups, "ks": self.ks, "alpha": alpha}
        if self.binning is not None:
            out["normalize"] = {"metric": self.normalize, "bins": self.binning.bins,
                                "range": [self.binning.lo, self.binning.hi]}
        return out


def compare(frame: pd.DataFrame, by: str = "space", *, normalize: str | None = None, bins: int = 10,
            value_range: tuple[float, float] | None = None, permutations: int = 1000, seed: int = 0) -> Comparison:
    """The (normalised) EDF of each group of ``frame`` (grouped by column ``by``) and KS tests between them."""
    if by not in frame.columns:
        raise UserError(f"--by {by}: no such column (columns: {', '.join(map(str, frame.columns))})")
    groups = {str(name): g for name, g in frame.groupby(by, sort=True)}
    if normalize is None:
        edfs = {name: edf(g["error"].to_numpy()) for name, g in groups.items()}
        ks = [{"a": a, "b": b, **ks_test(groups[a]["error"].to_numpy(), groups[b]["error"].to_numpy())}
              for a, b in itertools.combinations(groups, 2)]
        return Comparison(edfs, ks)
    if normalize not in frame.columns or frame[normalize].isna().all():
        raise UserError(f"--normalize {normalize}: the table has no {normalize!r} column")
    if bins < 1:
        raise UserError(f"--bins must be >= 1, got {bins}")
    sizes = {name: len(g) for name, g in groups.items()}
    groups = {name: g[g[normalize].notna()] for name, g in groups.items()}
    lo, hi = value_range or shared_range({n: g[normalize].to_numpy() for n, g in groups.items()}, normalize)
    if not lo < hi:
        raise UserError(f"--range {lo:g}:{hi:g}: lo must be below hi")
    binning = Binning(lo, hi, bins)
    kept, dropped = {}, {}
    for name, g in groups.items():
        index = binning.assign(g[normalize].to_numpy())
        counts = np.bincount(index[index >= 0], minlength=bins)
        if not counts.all():
            j = int(np.flatnonzero(counts == 0)[0])
            edges = binning.edges()
            raise UserError(f"group {name!r}: no models with {normalize} in bin {j + 1}/{bins} "
                            f"[{edges[j]:g}, {edges[j + 1]:g}]; use fewer --bins or another --range")
        kept[name] = (g["error"].to_numpy()[index >= 0], index[index >= 0])
        dropped[name] = sizes[name] - len(kept[name][0])  # outside the range, or no value
    edfs = {name: edf(errors, normalised_weights(index, bins)) for name, (errors, index) in kept.items()}
    ks = [{"a": a, "b": b, **ks_test(kept[a][0], kept[b][0], kept[a][1], kept[b][1], bins,
                                     permutations=permutations, seed=seed)}
          for a, b in itertools.combinations(kept, 2)]
    return Comparison(edfs, ks, normalize, binning, dropped)
