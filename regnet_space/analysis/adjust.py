"""Holding complexity equal: the adjustment every decision about a design parameter makes.

Inside a flops window, error falls with flops, and widths, depths and the RegNet rule's w0/wa are coupled to
flops (and to each other) by the window. A decision from raw errors then rewards whatever parameter moves models
up the window, or whatever is coupled to the parameter that really matters. So every test here asks whether a
feature marks low-error models *among models of equal complexity and equal other parameters*:

- errors become ranks (one diverged model cannot dominate), and the ranks, like every feature, are residualised
  on a nuisance basis: a cubic polynomial in standardised log complexity (the error-complexity curve is smooth
  and monotone over a window; a cubic follows it) plus, for a parameter's decision, the other parameters'
  columns (log scale for widths, group widths and ratios);
- the statistic is the correlation of a residualised feature with the residualised low-error ranks (a partial
  correlation), the best of a candidate's features;
- its null comes from Freedman and Lane's permutation scheme: the residuals of the reduced (nuisance-only) model
  are permuted, within complexity strata, and residualised again, so the adjustment is redone inside every
  permutation. It is exact when the nuisance model holds and robust when it nearly does; ``analysis/calibration/`` measures its level on
  tables whose error depends on flops only, on depth only, with heavy tails and ties.

``docs/statistics.md`` says why this scheme rather than strata or matched pairs.
"""

from __future__ import annotations

import numpy as np

from .edf import permute_within_bins

DEGREE = 3  # of the polynomial in log complexity
STRATA = 5  # complexity strata residuals or labels are permuted within
_CHUNK = 256  # permutations per matrix product
_DEGENERATE = 1e-8  # a residualised feature with less norm than this (relative) is explained by the nuisance


def complexity_basis(values: np.ndarray, degree: int = DEGREE) -> np.ndarray:
    """Columns 1, x, x^2, x^3 of x = standardised log(values): the smooth error-complexity curve to hold equal.
    Non-positive or missing values make the basis meaningless, so they are refused by the callers first."""
    x = np.log(np.asarray(values, dtype=float))
    spread = x.std()
    x = (x - x.mean()) / spread if spread > 0 else np.zeros_like(x)
    return np.stack([x**k for k in range(degree + 1)], axis=1)


def parameter_basis(columns: dict[str, np.ndarray]) -> np.ndarray:
    """The other parameters as nuisance columns: log2 for those that scale (widths, group widths, ratios, the
    RegNet rule's w0/wa/wm), both the value and its log2 for a depth (``depth``), whose effect on error is a
    curve; constant columns are left out."""
    out = []
    for name, values in columns.items():
        values = np.asarray(values, dtype=float)
        if np.ptp(values) == 0:
            continue
        if name == "depth":
            out += [values, np.log2(values)]
        else:
            out.append(np.log2(values) if _scales(name) and np.all(values > 0) else values)
    return np.stack(out, axis=1) if out else np.empty((len(next(iter(columns.values()), [])), 0))


def _scales(name: str) -> bool:
    return name[:1] in ("w", "g", "b") or name in ("wa", "wm", "group_width", "bottleneck_ratio")


class Residualiser:
    """Projects vectors (or the rows of a matrix) onto the orthogonal complement of a nuisance basis."""

    def __init__(self, nuisance: np.ndarray) -> None:
        nuisance = np.asarray(nuisance, dtype=float)
        if nuisance.ndim != 2 or nuisance.shape[1] == 0:
            nuisance = np.ones((len(nuisance), 1))
        q, r = np.linalg.qr(nuisance)
        keep = np.abs(np.diag(r)) > 1e-10 * max(1.0, np.abs(np.diag(r)).max())  # drop collinear columns
        self.q = q[:, keep]

    @property
    def rank(self) -> int:
        return self.q.shape[1]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """``values`` (n,) or (rows, n) less its projection on the nuisance span."""
        values = np.asarray(values, dtype=float)
        return values - (values @ self.q) @ self.q.T


def low_error_scores(errors: np.ndarray) -> np.ndarray:
    """Centred negative ranks of the errors: high for good models, ties averaged."""
    from scipy.stats import rankdata

    ranks = rankdata(np.asarray(errors, dtype=float))
    return -(ranks - ranks.mean())


def partial_max_test(errors: np.ndarray, features: np.ndarray, nuisance: np.ndarray, *, permutations: int,
                     rng: np.random.Generator, strata: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """The best partial correlation of a feature (columns of ``features``) with low errors, given ``nuisance``,
    and its Freedman-Lane permutation p-value (one-sided: a feature that marks good models).

    ``strata`` (an int per model, e.g. ``complexity_strata``) permutes the residuals only among models of the
    same stratum: noise whose spread changes with complexity (it usually does: errors are noisier where they are
    higher) then cannot pass for a feature that is coupled to complexity.
    Returns (each feature's partial correlation, the best, p). Features the nuisance explains get -inf.
    """
    residualise = Residualiser(nuisance)
    scores = residualise(low_error_scores(errors))
    features = residualise(np.asarray(features, dtype=float).T).T
    norms = np.linalg.norm(features, axis=0)
    usable = norms > _DEGENERATE * np.sqrt(len(errors))
    unit = np.where(usable, features / np.where(usable, norms, 1.0), 0.0)
    norm = np.linalg.norm(scores)
    if norm == 0 or not usable.any():
        return np.full(features.shape[1], -np.inf), -np.inf, 1.0
    observed_all = np.where(usable, unit.T @ scores / norm, -np.inf)
    observed = float(observed_all.max())
    exceed = 0
    for done in range(0, permutations, _CHUNK):
        size = min(_CHUNK, permutations - done)
        if strata is None:
            shuffled = rng.permuted(np.broadcast_to(scores, (size, len(scores))), axis=1)
        else:
            shuffled = permute_within_bins(scores, strata, size, rng)
        shuffled = residualise(shuffled)
        shuffled /= np.linalg.norm(shuffled, axis=1, keepdims=True)
        best = np.where(usable[None, :], shuffled @ unit, -np.inf).max(axis=1)
        exceed += int(np.sum(best >= observed - 1e-12))
    return observed_all, observed, (1 + exceed) / (1 + permutations)


def complexity_strata(values: np.ndarray, strata: int = STRATA) -> np.ndarray:
    """Each model's stratum: the quantile group of its complexity among all models (ties kept in order)."""
    ranks = np.argsort(np.argsort(np.asarray(values, dtype=float), kind="stable"), kind="stable")
    return np.minimum(ranks * strata // len(ranks), strata - 1)


def adjusted_ranks(errors: np.ndarray, complexity: np.ndarray | None) -> np.ndarray:
    """Low-error scores with the smooth effect of log complexity removed (the same scores without a
    complexity column): what two populations are compared on at equal complexity."""
    scores = low_error_scores(errors)
    if complexity is None:
        return scores
    return Residualiser(complexity_basis(complexity))(scores)
