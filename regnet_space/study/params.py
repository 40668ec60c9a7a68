"""A model's sampled parameters as real Optuna trial parameters, with the distributions they were drawn from.

Optuna's own tools (``trials_dataframe``'s ``params_*`` columns, ``optuna.importance``, optuna-dashboard's
parameter plots) read ``trial.params`` and ``trial.distributions``; a value kept only in a user attribute is
invisible to them. So every model is enqueued as a WAITING trial that already carries its parameters and
their distributions (Optuna's ``enqueue_trial`` would only store them as ``fixed_params`` for a later
``suggest_*`` call, which our workers, claiming trials from the storage, never make).

A space dimension maps onto the Optuna distribution Optuna's samplers and plots treat alike:

- ``choice``: ``CategoricalDistribution`` of the listed values;
- ``uniform``: ``IntDistribution``/``FloatDistribution`` from lo to hi with step q;
- ``log_uniform`` and ``power2``: the same with ``log=True`` (Optuna allows no step on a log scale, so the
  q-grid is not recorded: the values are still on it);
- a fixed value: a one-value ``CategoricalDistribution`` (importance evaluators skip those).

A categorical dimension of a stage field also lists the field's default, the value a block type that lacks
the field resets it to.

A parameter records the value the network *uses*: a drawn b = 4 that a ``res_basic`` stage resets to 1, or a
width the group-compatibility rule moves, is recorded as the spec has it. When such a value falls outside the
dimension's range (or off its step), that trial's distribution is widened to hold it (Optuna allows numeric
ranges to differ between trials). A categorical cannot be widened (Optuna requires the same choices in every
trial of a study), so a value moved off its choices (g fixed at 8 in a stage whose bottleneck is 4 channels
wide uses g = 4) is kept as a ``param_*`` user attribute, which ``decode_params`` reads like any parameter.
"""

from __future__ import annotations

import re
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from ..models.regnet import RegNetParams
from ..models.spec import StageSpec
from ..spaces.distributions import Distribution
from ..spaces.sampling import REGNET_PARAMS, SampledModel, stage_key
from ..spaces.space import (HEAD_TYPES, REGNET_FIELDS, STAGE_ALIASES, STAGE_TYPES, STEM_TYPES, DesignSpace,
                            field_defaults)

CATEGORICAL_TYPES = (str, int, float, bool, type(None))
_UNALIASED = {alias: name for name, alias in STAGE_ALIASES.items()}
_STAGE_KEY = re.compile(r"^([a-z_]+?)(\d+)$")


def space_dimensions(space: DesignSpace) -> dict[str, Any]:
    """Params key -> the space's Distribution or fixed value, for every key a sampled model of it can carry."""
    dims: dict[str, Any] = {}
    for name in STEM_TYPES:
        dims[f"stem_{name}"] = space.stem_value(name)
    for name in HEAD_TYPES:
        dims[f"head_{name}"] = space.head_value(name)
    if space.is_regnet:
        defaults = field_defaults(RegNetParams)
        dims.update({name: space.regnet.get(name, defaults.get(name)) for name in REGNET_FIELDS})
        dims.update(space.stage)
    else:
        for name in STAGE_TYPES:
            shared = space.stage_value(0, name) if name in space.shared else None
            for i in range(space.num_stages):
                dims[stage_key(name, i)] = shared if name in space.shared else space.stage_value(i, name)
    return dims


def optuna_distribution(value: Any, *, default: Any = None) -> BaseDistribution | None:
    """The Optuna distribution of one dimension (a Distribution or a fixed value); None for a fixed value
    Optuna cannot hold (a tuple). ``default``: a value a reset may give, added to a categorical's choices."""
    if not isinstance(value, Distribution) or value.kind == "choice":
        choices = tuple(value.options) if isinstance(value, Distribution) else (value,)
        if not all(isinstance(c, CATEGORICAL_TYPES) for c in choices):
            return None
        if default is not None and default not in choices:
            choices += (default,)
        return CategoricalDistribution(choices)
    numeric = IntDistribution if all(isinstance(v, int) for v in (value.lo, value.hi, value.q)) else FloatDistribution
    if value.kind == "uniform":
        return numeric(value.lo, value.hi, step=value.q)
    return numeric(value.lo, value.hi, log=True)


def space_distributions(space: DesignSpace) -> dict[str, BaseDistribution]:
    """Params key -> Optuna distribution for a space (keys Optuna cannot hold are left out)."""
    stage_defaults = field_defaults(StageSpec)
    out = {}
    for key, value in space_dimensions(space).items():
        match = _STAGE_KEY.match(key)
        field = _UNALIASED.get(match.group(1), match.group(1)) if match and not space.is_regnet else key
        dist = optuna_distribution(value, default=stage_defaults.get(field))
        if dist is not None:
            out[key] = dist
    return out


def used_params(sampled: SampledModel) -> dict[str, Any]:
    """The sampled parameters as the network uses them: stage, stem and head fields read back from the spec
    (after resets and the group-compatibility rule); RegNet's generator parameters as drawn."""
    spec, used = sampled.spec, {}
    for key, value in sampled.params.items():
        if key.startswith("stem_") and hasattr(spec.stem, key[5:]):
            value = getattr(spec.stem, key[5:])
        elif key.startswith("head_") and hasattr(spec.head, key[5:]):
            value = getattr(spec.head, key[5:])
        elif sampled.regnet is not None:
            if key not in REGNET_PARAMS and key in STAGE_TYPES and spec.stages:
                value = getattr(spec.stages[0], key)
        elif (match := _STAGE_KEY.match(key)) is not None:
            field, index = _UNALIASED.get(match.group(1), match.group(1)), int(match.group(2)) - 1
            if field in STAGE_TYPES and index < len(spec.stages):
                value = getattr(spec.stages[index], field)
        used[key] = value
    return used


def containing(dist: BaseDistribution, value: Any) -> BaseDistribution | None:
    """``dist``, or the same kind over a range that holds ``value`` (stepless: the value may be off the step);
    None for a categorical that does not list it (its choices cannot differ between trials)."""
    if isinstance(dist, CategoricalDistribution):
        try:
            dist.to_internal_repr(value)
        except ValueError:
            return None
        return dist
    if dist._contains(dist.to_internal_repr(value)):
        return dist
    return type(dist)(min(dist.low, value), max(dist.high, value), log=dist.log)


def trial_params(sampled: SampledModel, distributions: dict[str, BaseDistribution]
                 ) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """(params, distributions) of a model's trial: every parameter the space gives a distribution that can
    hold the value the network uses (the rest become ``param_*`` user attributes, see the module docstring)."""
    params, dists = {}, {}
    for key, value in used_params(sampled).items():
        if key in distributions and isinstance(value, CATEGORICAL_TYPES):
            dist = containing(distributions[key], value)
            if dist is not None:
                params[key], dists[key] = value, dist
    return params, dists
