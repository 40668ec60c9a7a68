"""Tables with a known truth, to measure how often the tests and ``refine`` are wrong.

Every decision this package takes from data must be calibrated: on tables where the null hypothesis is true it
must reject at about its level, and on tables with planted structure it must find it. These generators make
both kinds of table (seeded); ``analysis/calibration/run.py`` runs them by the hundred and the tests run a few.

- ``two_space_table``: two spaces, error a function of flops plus noise. With ``mixes="same"`` both draw flops
  from one distribution (the plain KS null is true); with ``mixes="across-bins"`` the spaces put different
  numbers of models in each complexity bin but draw uniformly inside every bin, so after weighting by bin the
  two normalised EDFs are identical (the normalised null is exactly true while the plain one is false).
- ``parameter_table``: the sampled parameters of models drawn from a space (AnyNet: per stage, independently,
  before group compatibility), with errors that are noise, optionally (AnyNet) plus the planted structure
  ``PLANTED``: a penalty for every stage with b != 1, for every stage with g outside 4..16 and for every
  step where the width shrinks. Depths carry no signal. (``within`` > 0 in ``two_space_table`` skews flops
  inside every bin, a's models high and b's low: binning alone then no longer compares at equal flops.)
- ``window_table``: models really sampled from a space under a flops window (widths, depths and the RegNet
  rule's parameters coupled to flops as in a study), with an error that depends on flops only, on total depth
  only, on nothing, or on flops plus planted non-decreasing widths and depths; realistic noise (heavy-tailed,
  heteroscedastic, skewed, tied, 2% diverged). ``false_decisions`` picks the decisions about fields without
  effect.
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
                    slope: float = -1.0, skew: float = 3.0, within: float = 0.0) -> pd.DataFrame:
    """Spaces ``a`` and ``b`` of ``n`` models each, flops in [0, bins], error 25 + slope * flops + N(0, 1).
    With ``mixes="across-bins"``, a's share of models rises linearly from the lowest bin to the highest by the
    factor ``skew`` and b's falls by it. ``within`` > 0 skews the flops *inside* every unit bin: a's models
    toward its top (position 1 - U^(1 + within)), b's toward its bottom (U^(1 + within)), so binning alone no
    longer compares them at equal flops although their errors are equal at every flops value."""
    if mixes == "same":
        flops = rng.uniform(0, bins, size=2 * n)
    elif mixes == "across-bins":
        weights_a = np.linspace(1, skew, bins)  # a leans to high flops, b to low: the mixes differ by bin
        flops = np.concatenate([_binned_uniform(n, weights_a / weights_a.sum(), rng),
                                _binned_uniform(n, weights_a[::-1] / weights_a.sum(), rng)])
    else:
        raise ValueError(f"unknown mixes {mixes!r}")
    if within > 0:
        u = rng.random(2 * n) ** (1 + within)
        flops = np.floor(flops) + np.r_[1 - u[:n], u[n:]]
    error = 25 + slope * flops + rng.normal(0, 1, size=2 * n)
    return pd.DataFrame({"space": np.repeat(["a", "b"], n), "error": error, "flops": flops})


def _binned_uniform(n: int, probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n`` values in [0, k): a bin j drawn with ``probabilities[j]`` (every bin at least once), then uniform
    inside it."""
    k = len(probabilities)
    bins = np.concatenate([np.arange(k), rng.choice(k, size=n - k, p=probabilities)])
    return bins + rng.random(n)


def parameter_table(space: DesignSpace, n: int, rng: np.random.Generator, *, planted: bool = False
                    ) -> pd.DataFrame:
    """``n`` models' sampled parameters drawn from ``space`` (AnyNet: d1.., w1.., b1.., g1.. per stage,
    independently; RegNet: its [regnet] parameters) and their errors: noise, plus ``PLANTED`` (AnyNet only)."""
    columns = {}
    if space.is_regnet:
        if planted:
            raise ValueError("the planted structure is defined for AnyNet spaces")
        for field, value in space.regnet.items():
            if isinstance(value, Distribution):
                columns[field] = value.values[value.draw(rng, n)].astype(float)
    else:
        for field, alias in STAGE_ALIASES.items():
            for i in range(space.num_stages):
                value = space.stage_value(i, field)
                drawn = value.values[value.draw(rng, n)] if isinstance(value, Distribution) else np.full(n, value)
                columns[f"{alias}{i + 1}"] = drawn.astype(float)
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


# Complexity-window tables: models really sampled from a space under a flops window (so widths, depths and the
# RegNet rule's parameters are coupled to flops and to each other as in a study), with errors from an effect.
FORMS = {  # name -> (resolution, in_channels, num_classes, flops window)
    "imagenet": (224, 3, 1000, (200e6, 800e6)),
    "small": (28, 1, 10, (2e6, 8e6)),
}
EFFECTS = ("none", "flops", "depth", "planted")
DIVERGED_SHARE = 0.02  # models whose training diverged: error at chance


def window_table(space: DesignSpace, n: int, seed: int, *, effect: str, form: str = "imagenet") -> pd.DataFrame:
    """``n`` models of ``space`` sampled in the form's flops window, with their sampled parameters, flops and an
    error that depends on ``effect`` only: ``flops`` (-3 log2 of flops over the window's geometric middle),
    ``depth`` (-2 log2 of total depth), ``planted`` (the flops term plus 2 points when some width decreases and 2
    when some depth decreases, AnyNet only), or ``none``. The noise is what real tables have: Student t with 3
    degrees of freedom, its scale growing with the error (heteroscedastic), skewed (a right tail), rounded to
    0.1 (ties, as a 1,000-image validation set gives), and 2% of models diverged (error 90)."""
    from ..models.complexity import complexity
    from ..spaces import sample_models

    resolution, channels, classes, window = FORMS[form]
    models = sample_models(space, n, seed=seed, windows={"flops": window}, resolution=resolution,
                           in_channels=channels, num_classes=classes)
    frame = pd.DataFrame([m.params for m in models])
    flops = np.array([complexity(m.spec).flops for m in models], dtype=float)
    depth = np.array([sum(m.spec.depths) for m in models], dtype=float)
    rng = np.random.default_rng([seed, 1])
    signal = {"none": np.zeros(n), "flops": -3.0 * np.log2(flops / np.sqrt(window[0] * window[1])),
              "depth": -2.0 * np.log2(depth / np.median(depth))}.get(effect)
    if effect == "planted":
        widths = np.array([m.spec.widths for m in models], dtype=float)
        depths = np.array([m.spec.depths for m in models], dtype=float)
        signal = (-3.0 * np.log2(flops / np.sqrt(window[0] * window[1]))
                  + 2.0 * np.any(np.diff(widths, axis=1) < 0, axis=1) + 2.0 * np.any(np.diff(depths, axis=1) < 0, axis=1))
    error = 30.0 + signal
    noise = rng.standard_t(3, size=n) * (0.5 + 0.03 * error) + rng.exponential(0.5, size=n)
    error = np.round(np.clip(error + noise, 0.0, 90.0), 1)
    error[rng.random(n) < DIVERGED_SHARE] = 90.0
    frame.insert(0, "error", error)
    frame.insert(0, "space", space.name)
    frame["flops"] = flops
    return frame


def false_decisions(decisions, effect: str) -> list:
    """The taken decisions about a field that has no effect on the table's error: every one when the error
    depends on flops or on nothing; every one but those on depth when it depends on depth."""
    return [d for d in decisions if d.taken and not (effect == "depth" and d.field == "depth")]
