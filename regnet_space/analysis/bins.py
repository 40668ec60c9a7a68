"""How many complexity bins a normalised EDF can afford.

The NDS weighting 1/(k*m_j) needs every group to have models in every bin, and a bin held by one or two models
gives them a weight that swamps the rest (the effective n collapses). The rule: over the complexity range all
groups share, use the most equal-width bins, up to ``max_bins``, for which every group has at least
``min_per_bin`` models in every bin. It never fails: with too few models even for one bin it says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from .edf import Binning, shared_range
from .table import Columns, as_columns, group_rows

if TYPE_CHECKING:
    import pandas as pd

MIN_PER_BIN = 8  # fewer make a bin's mean, and the interval of a difference, unreliable (issue 27)


@dataclass(frozen=True)
class BinChoice:
    bins: int | None  # None: not even one bin holds min_per_bin models of every group
    lo: float
    hi: float
    max_bins: int
    min_per_bin: int

    def rule(self) -> str:
        return (f"the most equal-width bins (at most {self.max_bins}) with at least {self.min_per_bin} models of "
                f"every space in every bin, over the range all spaces share")


def choose_bins(frame: pd.DataFrame | Columns, metric: str, *, by: str = "space", max_bins: int = 10,
                min_per_bin: int = MIN_PER_BIN, value_range: tuple[float, float] | None = None) -> BinChoice:
    """The bin count the rule above gives for ``frame``'s groups (a DataFrame or ``table.Columns``) on
    ``metric``."""
    columns = as_columns(frame, [by, metric])
    values = np.asarray(columns[metric], dtype=float)
    groups = {name: values[rows][~np.isnan(values[rows])] for name, rows in group_rows(columns[by]).items()}
    lo, hi = value_range or shared_range(groups, metric)
    for bins in range(max_bins, 0, -1):
        binning = Binning(lo, hi, bins)
        enough = True
        for values in groups.values():
            index = binning.assign(values)
            if np.bincount(index[index >= 0], minlength=bins).min() < min_per_bin:
                enough = False
                break
        if enough:
            return BinChoice(bins, lo, hi, max_bins, min_per_bin)
    return BinChoice(None, lo, hi, max_bins, min_per_bin)
