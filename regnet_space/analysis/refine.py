"""Narrow a design space from the models sampled from it (the RegNet paper's A -> B -> ... -> E steps).

Each sampled dimension is narrowed to its bootstrap good range (snapped outward to the values the dimension
can take). For an AnyNet space two kinds of constraint are added when the data supports them:
- shared b / g (AnyNetX_B, C): when the good ranges of every stage overlap, one value range serves all stages;
- non-decreasing widths / depths (AnyNetX_D, E): when models that satisfy it have lower errors than those that
  do not (one-sided Mann-Whitney U test at level alpha, with at least 5 models on each side).
Every decision, taken or not, is written as one line of rationale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import UserError
from ..spaces import DesignSpace, Distribution
from ..spaces.distributions import is_number, parse_distribution
from ..spaces.space import REGNET_TYPES, STAGE_ALIASES, STAGE_TYPES
from .bootstrap import good_ranges

SHAREABLE = ("bottleneck_ratio", "group_width")
MONOTONE = ("width", "depth")
_MIN_SIDE = 5


@dataclass(frozen=True)
class Refinement:
    space: DesignSpace
    rationale: list[str]
    ranges: pd.DataFrame

    def to_toml(self) -> str:
        """The narrowed space as TOML, its rationale as leading comments."""
        return "".join(f"# {line}\n" for line in self.rationale) + "\n" + self.space.to_toml()


def narrow(value, low: float, high: float, value_type: type, where: str):
    """``value`` (a fixed value or a Distribution) restricted to the support points covering [low, high]."""
    if not isinstance(value, Distribution) or not all(map(is_number, value.values.tolist())):
        return value
    support = sorted(value.values.tolist())
    lo = max([v for v in support if v <= low], default=support[0])
    hi = min([v for v in support if v >= high], default=support[-1])
    kept = [v for v in support if lo <= v <= hi]
    cast = type(value.lo) if is_number(value.lo) else (int if value_type is int else float)  # keep 8, not 8.0
    if len(kept) == 1:
        return cast(kept[0])
    if value.kind == "choice":
        return parse_distribution({"dist": "choice", "values": [o for o in value.options if lo <= o <= hi]},
                                  where, value_type)
    return parse_distribution({**value.to_dict(), "lo": cast(lo), "hi": cast(hi)}, where, value_type)


def _describe(value) -> str:
    if not isinstance(value, Distribution):
        return f"fixed {value!r}"
    if value.kind == "choice":
        return f"choice {list(value.options)}"
    return f"{value.kind} {value.lo:g}..{value.hi:g}"


def _require(frame: pd.DataFrame, columns: list[str], space: DesignSpace) -> None:
    missing = [c for c in columns if c not in frame.columns or frame[c].isna().all()]
    if missing:
        raise UserError(f"refining {space.name!r} needs the sampled parameter {missing[0]!r} in the table")


def refine(space: DesignSpace, frame: pd.DataFrame, *, samples: int = 10_000, level: float = 0.95,
           alpha: float = 0.05, seed: int = 0) -> Refinement:
    """The narrowed space and why, from ``frame`` (the models of ``space`` with their errors)."""
    if len(frame) < 2 * _MIN_SIDE:
        raise UserError(f"refining {space.name!r} needs at least {2 * _MIN_SIDE} models, the table has {len(frame)}")
    where = f"refined {space.name}"
    renamed = dataclasses.replace(space, name=f"{space.name}_refined",
                                  description=f"{space.name} narrowed by `regnet-space refine` from {len(frame)} models")
    if space.is_regnet:
        names = [k for k, v in space.regnet.items() if isinstance(v, Distribution)]
        _require(frame, names, space)
        ranges = good_ranges(frame, names, samples=samples, level=level, seed=seed)
        regnet = {**space.regnet, **{n: narrow(space.regnet[n], ranges.loc[n, "low"], ranges.loc[n, "high"],
                                               REGNET_TYPES[n], f"{where}.regnet.{n}") for n in names}}
        rationale = [_range_line(n, ranges.loc[n], space.regnet[n], regnet[n]) for n in names]
        return Refinement(_checked(dataclasses.replace(renamed, regnet=regnet), where),
                          _header(frame, samples, level) + rationale, ranges)
    stages = range(space.num_stages)
    fields = [f for f in STAGE_ALIASES if any(isinstance(space.stage_value(i, f), Distribution) for i in stages)]
    columns = [f"{STAGE_ALIASES[f]}{i + 1}" for f in fields for i in stages]
    _require(frame, columns, space)
    ranges = good_ranges(frame, columns, samples=samples, level=level, seed=seed)
    rationale = _header(frame, samples, level)
    shared, monotone = list(space.shared), list(space.monotone)
    per_stage: dict[int, dict] = {i + 1: {} for i in stages}
    common: dict = {}
    for f in fields:
        cols = [f"{STAGE_ALIASES[f]}{i + 1}" for i in stages]
        lo, hi = ranges.loc[cols, "low"].max(), ranges.loc[cols, "high"].min()  # the range all stages share
        if f in SHAREABLE and f not in shared:
            if lo <= hi:
                shared.append(f)
                rationale.append(f"shared {f}: the good ranges of {', '.join(cols)} overlap in [{lo:g}, {hi:g}], "
                                 f"so one value for all stages keeps each stage in its good range (AnyNetX_B/C)")
            else:
                rationale.append(f"not shared {f}: the good ranges of {', '.join(cols)} do not overlap")
        if f in shared:  # the space's own shared fields have equal columns, so lo <= hi
            common[f] = narrow(space.stage_value(0, f), lo, hi, STAGE_TYPES[f], f"{where}.stage.{f}")
            rationale.append(_range_line(f, {"low": lo, "high": hi, "median": ranges.loc[cols[0], "median"]},
                                         space.stage_value(0, f), common[f]))
            continue
        if f in MONOTONE and f not in monotone:
            line = _monotone_test(frame, f, cols, alpha)
            if line.startswith("monotone"):
                monotone.append(f)
            rationale.append(line)
        for i, col in zip(stages, cols):
            per_stage[i + 1][f] = narrow(space.stage_value(i, f), ranges.loc[col, "low"], ranges.loc[col, "high"],
                                         STAGE_TYPES[f], f"{where}.stages.{i + 1}.{f}")
            rationale.append(_range_line(col, ranges.loc[col], space.stage_value(i, f), per_stage[i + 1][f]))
    stage = {k: v for k, v in space.stage.items() if k not in fields} | common
    overrides = {i: {k: v for k, v in space.stages.get(i, {}).items() if k not in fields} | per_stage[i]
                 for i in per_stage}
    narrowed = _checked(dataclasses.replace(renamed, stage=stage, stages={i: v for i, v in overrides.items() if v},
                                            shared=tuple(shared), monotone=tuple(monotone)), where)
    if narrowed.size() == 0:
        raise UserError(f"{where}: the good ranges leave no model that meets the constraints "
                        f"(monotone: {', '.join(monotone)}); refine with more models")
    return Refinement(narrowed, rationale, ranges)


def _checked(space: DesignSpace, where: str) -> DesignSpace:
    """The space re-read from its own dict form, so it passes every check ``load_space`` makes."""
    return DesignSpace.from_dict(space.to_dict(), where)


def _header(frame: pd.DataFrame, samples: int, level: float) -> list[str]:
    return [f"good ranges: {level:.0%} interval of the best model of {samples} resamples of 25% of the "
            f"{len(frame)} models (errors {frame['error'].min():.2f}..{frame['error'].max():.2f}%)"]


def _range_line(name: str, r, before, after) -> str:
    return (f"{name}: good range [{r['low']:g}, {r['high']:g}], median {r['median']:g}; "
            f"{_describe(before)} -> {_describe(after)}")


def _monotone_test(frame: pd.DataFrame, field: str, cols: list[str], alpha: float) -> str:
    """Impose non-decreasing ``field`` when the models satisfying it have significantly lower errors."""
    values = frame[cols].to_numpy(dtype=float)
    ok = np.all(np.diff(values, axis=1) >= 0, axis=1)
    errors = frame["error"].to_numpy()
    yes, no = errors[ok], errors[~ok]
    counts = f"{len(yes)} of {len(errors)} models satisfy it"
    if min(len(yes), len(no)) < _MIN_SIDE:
        return f"not monotone {field}: too few models on one side to test ({counts})"
    p = float(stats.mannwhitneyu(yes, no, alternative="less").pvalue)
    verdict = "monotone" if p < alpha else "not monotone"
    return (f"{verdict} {field}: non-decreasing {field} models have median error {np.median(yes):.2f} vs "
            f"{np.median(no):.2f} (one-sided Mann-Whitney p={p:.2g}, {counts})"
            + (" (AnyNetX_D/E)" if p < alpha else ""))
