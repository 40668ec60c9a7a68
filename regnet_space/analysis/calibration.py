"""Tables with a known truth, to measure how often the tests and ``refine`` are wrong.

Every decision this package takes from data must be calibrated: on tables where the null hypothesis is true it
must reject at about its level, and on tables with planted structure it must find it. These generators make
both kinds of table (seeded); ``analysis/calibration/run.py`` runs them by the hundred and the tests run a few.

- ``two_space_table``: two spaces, error a function of flops plus noise. With ``mixes="same"`` both draw flops
  from one distribution (the plain KS null is true); with ``mixes="across-bins"`` the spaces put different
  numbers of models in each complexity bin but draw uniformly inside every bin, so after weighting by bin the
  two normalised EDFs are identical (the normalised null is exactly true while the plain one is false).
- ``anynet_table``: the per-stage parameters of models drawn from an AnyNet space (independently per stage,
  before group compatibility), with errors that are noise, optionally plus the planted structure
  ``PLANTED``: a penalty for every stage with b != 1, for every stage with g outside 4..16 and for every
  step where the width shrinks. Depths carry no signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..spaces import DesignSpace, Distribution
from ..spaces.space import STAGE_ALIASES

# Error penalties (percentage points) of the planted structure, and the noise's standard deviation.
PLANTED = {"b_not_1": 1.0, "g_outside_4_16": 1.0, "width_shrinks": 1.0}
NOISE_SD = 2.0


def two_space_table(n: int, rng: np.random.Generator, *, mixes: str = "same", bins: int = 5,
                    slope: float = -1.0) -> pd.DataFrame:
    """Spaces ``a`` and ``b`` of ``n`` models each, flops in [0, bins], error 25 + slope * flops + N(0, 1)."""
    if mixes == "same":
        flops = rng.uniform(0, bins, size=2 * n)
    elif mixes == "across-bins":
        weights_a = np.linspace(1, 3, bins)  # a leans to high flops, b to low: the mixes differ by bin
        flops = np.concatenate([_binned_uniform(n, weights_a / weights_a.sum(), rng),
                                _binned_uniform(n, weights_a[::-1] / weights_a.sum(), rng)])
    else:
        raise ValueError(f"unknown mixes {mixes!r}")
    error = 25 + slope * flops + rng.normal(0, 1, size=2 * n)
    return pd.DataFrame({"space": np.repeat(["a", "b"], n), "error": error, "flops": flops})


def _binned_uniform(n: int, probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n`` values in [0, k): a bin j drawn with ``probabilities[j]`` (every bin at least once), then uniform
    inside it."""
    k = len(probabilities)
    bins = np.concatenate([np.arange(k), rng.choice(k, size=n - k, p=probabilities)])
    return bins + rng.random(n)


def anynet_table(space: DesignSpace, n: int, rng: np.random.Generator, *, planted: bool = False) -> pd.DataFrame:
    """``n`` models' per-stage parameters (d1.., w1.., b1.., g1..) drawn from ``space`` and their errors."""
    columns = {}
    for field, alias in STAGE_ALIASES.items():
        for i in range(space.num_stages):
            value = space.stage_value(i, field)
            if isinstance(value, Distribution):
                columns[f"{alias}{i + 1}"] = value.values[value.draw(rng, n)].astype(float)
            else:
                columns[f"{alias}{i + 1}"] = np.full(n, float(value))
    frame = pd.DataFrame(columns)
    error = 20 + rng.normal(0, NOISE_SD, size=n)
    if planted:
        stages = range(1, space.num_stages + 1)
        b = frame[[f"b{i}" for i in stages]].to_numpy()
        g = frame[[f"g{i}" for i in stages]].to_numpy()
        w = frame[[f"w{i}" for i in stages]].to_numpy()
        error += (PLANTED["b_not_1"] * (b != 1).sum(axis=1)
                  + PLANTED["g_outside_4_16"] * ((g < 4) | (g > 16)).sum(axis=1)
                  + PLANTED["width_shrinks"] * (np.diff(w, axis=1) < 0).sum(axis=1))
    frame.insert(0, "error", error)
    frame.insert(0, "space", space.name)
    return frame


def recovered(space: DesignSpace) -> dict[str, bool]:
    """Which parts of ``PLANTED`` a refined AnyNet ``space`` has: b fixed to 1 in every stage, g limited to
    4..16 in every stage (``g_exact``: exactly {4, 8, 16}), non-decreasing widths; and whether any depth range
    was narrowed (depths carry no signal, so that is a false discovery)."""
    def support(i, field):
        value = space.stage_value(i, field)
        return set(value.values.tolist()) if isinstance(value, Distribution) else {value}

    stages = range(space.num_stages)
    g = [support(i, "group_width") for i in stages]
    return {"b_1": all(support(i, "bottleneck_ratio") == {1} for i in stages),
            "g_4_16": all(s <= {4, 8, 16} for s in g),
            "g_exact": all(s == {4, 8, 16} for s in g),
            "width_monotone": "width" in space.monotone,
            "depth_narrowed": any(support(i, "depth") != set(range(1, 17)) for i in stages)}
