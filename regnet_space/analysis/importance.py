"""Which sampled parameters explain a space's errors: Optuna's parameter importances, one space at a time.

A population study keeps every space's models in one Optuna study, and the spaces sample different
parameters (AnyNet: d1.., w1.., b1.., g1..; RegNet: depth, w0, wa, wm, ...). Optuna's fANOVA and MDI evaluators
rank only the parameters every trial shares with one distribution, and across spaces there are none; its
default (PED-ANOVA) rates each parameter on the trials that have it, so one ranking of a whole study puts
different spaces' parameters, each judged on different models, on one scale. The question is a per-space one
(which dimension of *this* space matters), so each space's models are put in a study of their own, in memory,
where each parameter has one distribution: the space's range widened to every value a model uses (the
group-compatibility rule can move a value off its range). The storage is left as it is: one study per
population, which its workers and tools share (optuna-dashboard shows it whole; this is the per-space view).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError
from ..spaces import DesignSpace

# Optuna's default (PED-ANOVA, no extra packages), and fANOVA / mean decrease impurity (need scikit-learn).
EVALUATORS = ("ped-anova", "fanova", "mdi")


def space_study(frame: pd.DataFrame, space: DesignSpace):
    """An in-memory Optuna study of ``frame``'s models (one space's), with the space's sampled parameters."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from ..study.params import space_distributions

    distributions = {}
    for name, dist in space_distributions(space).items():
        if name not in frame.columns or frame[name].isna().any():
            continue
        values = frame[name].tolist()
        if isinstance(dist, CategoricalDistribution):
            choices = tuple(dict.fromkeys([*dist.choices, *values]))
            if len(choices) > 1:
                distributions[name] = CategoricalDistribution(choices)
        elif isinstance(dist, IntDistribution) and all(float(v).is_integer() for v in values):
            low, high = min(dist.low, *map(int, values)), max(dist.high, *map(int, values))
            distributions[name] = IntDistribution(low, high, log=dist.log)
        else:
            low, high = min(dist.low, *values), max(dist.high, *values)
            distributions[name] = FloatDistribution(float(low), float(high), log=dist.log)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per in-memory study
    try:
        study = optuna.create_study(direction="minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for _, row in frame.iterrows():
        params = {name: _plain(row[name], d) for name, d in distributions.items()}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  value=float(row["error"])))
    return study


def importances(frame: pd.DataFrame, spaces: dict[str, DesignSpace], *, evaluator: str = "ped-anova",
                seed: int = 0) -> dict[str, dict[str, float]]:
    """Space label -> {parameter: importance} (normalised to sum 1), each space's models on their own."""
    import optuna

    if evaluator not in EVALUATORS:
        raise UserError(f"--evaluator: one of {', '.join(EVALUATORS)}, got {evaluator!r}")
    if evaluator != "ped-anova":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise UserError(f"--evaluator {evaluator}: Optuna's {evaluator} needs scikit-learn "
                            f"(pip install scikit-learn), or use ped-anova (Optuna's default)") from None
    out = {}
    for label, space in spaces.items():
        models = frame[(frame["space"] == label) & frame["error"].notna()]
        if len(models) < 2:
            raise UserError(f"space {label}: importances need at least 2 models with an error, it has {len(models)}")
        study = space_study(models, space)
        if not study.trials[0].params:
            raise UserError(f"space {label}: none of its sampled parameters is in the table")
        chosen = {"fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=seed),
                  "mdi": lambda: optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=seed),
                  "ped-anova": optuna.importance.PedAnovaImportanceEvaluator}[evaluator]()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks some evaluators experimental
            out[label] = dict(optuna.importance.get_param_importances(study, evaluator=chosen))
    return out


def _plain(value: Any, dist) -> Any:
    """A table value as the distribution holds it (numpy scalars and 4.0-for-4 made Python values)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(dist, IntDistribution):
        return int(value)
    if isinstance(dist, CategoricalDistribution):
        return next(c for c in dist.choices if c == value or (isinstance(c, float) and isinstance(value, float)
                                                               and math.isclose(c, value)))
    return float(value)
