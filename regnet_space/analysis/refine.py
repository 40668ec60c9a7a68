"""Narrow a design space from the models sampled from it (the RegNet paper's A -> B -> ... -> E steps), taking
only the steps the data supports, at equal complexity.

``propose`` turns a results table into candidate decisions, each with a permutation p-value:
- ``narrow`` a range: one stage's parameter (column ``d3``, ``w1``, ...), a shareable field in every stage at
  once (``column`` None), or a RegNet parameter (``w0``, ``wm``, ...), to a contiguous range of its values;
- ``share`` a value (AnyNetX_B/C): every stage uses one value of b or g (sharing one value and narrowing the
  field in every stage are one candidate, so the better-supported of the two is proposed);
- ``monotone`` (AnyNetX_D/E): non-decreasing widths or depths.

Every candidate is scored by how strongly a feature of the models marks the low-error ones *among models of
equal complexity and equal other parameters*: the partial correlation of the feature with the models' error
ranks given a smooth function of log flops and the other fields' columns (``adjust.py``). Inside a flops
window, error falls with flops and widths or depths move models up the window; a raw correlation would reward
that (issue 27 measured 30% false narrowings of widths when error depends on flops only). A candidate has many
features (every contiguous range of a column's values, every value to share), and its statistic is the best
of them. Its null distribution comes from Freedman-Lane permutations (the reduced model's residuals shuffled and
the adjustment redone in each), so the choice of range is part of the null too. The p-values are
Holm-adjusted over every candidate of the table, and a decision is taken when its adjusted p is <= alpha.
Calibration: analysis/calibration/.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import UserError
from ..spaces import DesignSpace, Distribution
from ..spaces.distributions import is_number, parse_distribution
from ..spaces.space import REGNET_TYPES, STAGE_ALIASES, STAGE_TYPES
from .adjust import complexity_basis, complexity_strata, parameter_basis, partial_max_test
from .edf import holm
from .table import known_errors, unbuildable

SHAREABLE = ("bottleneck_ratio", "group_width")
MONOTONE = ("width", "depth")
MAX_LEVELS = 8  # a column with more distinct values is cut into this many quantile levels
MIN_MODELS = 5  # a feature must mark at least this many models, and leave at least this many unmarked
COMPLEXITY = "flops"  # the complexity axis decisions hold equal


@dataclass(frozen=True)
class Decision:
    """One proposed constraint, with its evidence.

    ``value``: for ``share`` the shared value (fixed) or a Distribution; for ``narrow`` (low, high) as snapped
    to the support; for ``monotone`` None. ``column`` is the table column of a per-stage narrowing (``d3``),
    None otherwise. ``p_value`` is the permutation p against errors shuffled among the models, ``p_holm`` that
    p Holm-adjusted over every decision proposed from the same table, ``taken`` means p_holm <= alpha.
    ``statistic`` is the observed score (correlation of the chosen feature with low error ranks).
    """

    kind: str
    field: str
    column: str | None
    value: Any
    p_value: float
    p_holm: float
    taken: bool
    why: str
    statistic: float = float("nan")


@dataclass(frozen=True)
class Refinement:
    space: DesignSpace
    rationale: list[str]
    decisions: list[Decision]

    def to_toml(self) -> str:
        """The narrowed space as TOML, its rationale as leading comments."""
        return "".join(f"# {line}\n" for line in self.rationale) + "\n" + self.space.to_toml()


@dataclass
class _Candidate:
    """A decision before its p-value: its features (columns of a models x features matrix) and, per feature,
    the kind and value of the decision it stands for and a phrase for the rationale."""

    kinds: list[str]
    field: str
    column: str | None
    features: np.ndarray
    values: list[Any]
    phrases: list[str]


def narrow(value, low: float, high: float, value_type: type, where: str):
    """``value`` (a fixed value or a Distribution) restricted to the support points covering [low, high]."""
    if not isinstance(value, Distribution) or not all(map(is_number, value.values.tolist())):
        return value
    support = sorted(value.values.tolist())
    lo = max([v for v in support if v <= low], default=support[0])
    hi = min([v for v in support if v >= high], default=support[-1])
    kept = [v for v in support if lo <= v <= hi]
    if not kept:  # [low, high] falls between two support points: the nearest one
        kept = [min(support, key=lambda v: abs(v - (low + high) / 2))]
        lo = hi = kept[0]
    cast = type(value.lo) if is_number(value.lo) else (int if value_type is int else float)  # keep 8, not 8.0
    if len(kept) == 1:
        return cast(kept[0])
    if value.kind == "choice":
        return parse_distribution({"dist": "choice", "values": [o for o in value.options if lo <= o <= hi]},
                                  where, value_type)
    if value.kind == "power2_or_log_uniform" and lo >= value.q:  # its log_uniform part, as pycls would write it
        return parse_distribution({"dist": "log_uniform", "lo": cast(lo), "hi": cast(hi), "q": value.q},
                                  where, value_type)
    if value.kind == "power2_or_log_uniform" and not all(math.log2(v).is_integer() for v in (lo, hi)):
        return parse_distribution({"dist": "choice", "values": [cast(v) for v in kept]}, where, value_type)
    return parse_distribution({**value.to_dict(), "lo": cast(lo), "hi": cast(hi)}, where, value_type)


def propose(space: DesignSpace, frame: pd.DataFrame, *, alpha: float = 0.05, permutations: int = 1000,
            seed: int = 0, complexity: str | None = COMPLEXITY) -> list[Decision]:
    """Every candidate decision for ``space`` from ``frame`` (its models and errors), with p-values at equal
    ``complexity`` (a column of the table; None, or a table without it, compares at any complexity)."""
    if not 0 < alpha < 1:
        raise UserError(f"alpha must be in (0, 1), got {alpha}")
    if permutations < 1:
        raise UserError(f"permutations must be >= 1, got {permutations}")
    columns = _columns(space)
    _require(frame, columns, space)
    frame = _usable(frame, columns, complexity)
    if len(frame) < 4 * MIN_MODELS:
        raise UserError(f"refining {space.name!r} needs at least {4 * MIN_MODELS} models with every sampled "
                        f"parameter, the table has {len(frame)}")
    candidates = _regnet_candidates(space, frame) if space.is_regnet else _anynet_candidates(space, frame)
    candidates = [c for c in candidates if c.features.shape[1]]
    if not candidates:
        return []
    held = complexity if complexity in frame.columns else None
    base = complexity_basis(frame[held].to_numpy(float)) if held else np.ones((len(frame), 1))
    strata = complexity_strata(frame[held].to_numpy(float)) if held else None
    errors = frame["error"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    blocks = _parameter_blocks(frame, columns, space)
    tests = []
    for candidate in candidates:
        nuisance = np.concatenate([base] + [b for field, b in blocks.items() if field != candidate.field], axis=1)
        tests.append(partial_max_test(errors, candidate.features, nuisance, permutations=permutations, rng=rng,
                                      strata=strata))
    adjusted = holm([p for _, _, p in tests])
    equal = f"at equal {held} and other parameters" if held else "at equal other parameters (no complexity column)"
    decisions = []
    for candidate, (each, stat, p), p_holm in zip(candidates, tests, adjusted):
        k = int(np.argmax(each))
        taken = bool(p_holm <= alpha and np.isfinite(stat))
        why = (f"{candidate.phrases[k]}; {_contrast(errors, candidate.features[:, k])}; partial correlation "
               f"{stat:.3f} {equal} (best of {candidate.features.shape[1]}), p={p:.3g}, Holm p={p_holm:.3g} over "
               f"{len(candidates)} -> {'taken' if taken else 'not taken'}")
        decisions.append(Decision(candidate.kinds[k], candidate.field, candidate.column, candidate.values[k],
                                  float(p), float(p_holm), taken, why, float(stat)))
    return decisions


def _usable(frame: pd.DataFrame, columns: list[str], complexity: str | None) -> pd.DataFrame:
    """The models a decision can use: every sampled parameter and a finite error (NaN errors are dropped with
    a warning, never ranked), and a positive complexity when the table has that column."""
    usable = frame.dropna(subset=columns)
    usable = usable[known_errors(usable["error"], "refine's decisions")]
    if complexity and complexity in usable.columns:
        values = usable[complexity].to_numpy(dtype=float)
        if not (np.isfinite(values) & (values > 0)).all():
            raise UserError(f"refining needs a positive {complexity} for every model "
                            f"({int((~(np.isfinite(values) & (values > 0))).sum())} have none); "
                            f"drop them or give complexity=None")
    return usable


def _parameter_blocks(frame: pd.DataFrame, columns: list[str], space: DesignSpace) -> dict[str, np.ndarray]:
    """Each field's nuisance columns (``adjust.parameter_basis``), computed once: a decision about a field holds
    every *other* field's block equal besides complexity. A RegNet space's few parameters enter one by one; an
    AnyNet field enters as one summary over its stages (total depth; the geometric mean width, b or g), since a
    column per stage (16 in AnyNetX_A) costs a population of 100 most of its power while the window couples the
    fields mainly through these summaries (calibration: analysis/calibration/)."""
    if space.is_regnet:
        return {c: parameter_basis({c: frame[c].to_numpy(float)}) for c in columns}
    blocks = {}
    for field, alias in STAGE_ALIASES.items():
        stage_columns = [c for c in columns if c[:1] == alias]
        if not stage_columns:
            continue
        values = frame[stage_columns].to_numpy(float)
        if field == "depth":
            blocks[field] = parameter_basis({"depth": _total_depth(frame, space)})
        else:
            positive = np.all(values > 0)  # geometric mean over the sampled stages (arithmetic if a value is 0)
            mean = np.exp(np.log(np.where(positive, values, 1.0)).mean(axis=1)) if positive else values.mean(1)
            blocks[field] = parameter_basis({alias: mean})
    return blocks


def _total_depth(frame: pd.DataFrame, space: DesignSpace) -> np.ndarray:
    """Each model's total depth, from its d columns (a fixed stage depth from the space)."""
    return sum(frame[f"d{i + 1}"].to_numpy(float) if f"d{i + 1}" in frame.columns
               else np.full(len(frame), float(space.stage_value(i, "depth"))) for i in range(space.num_stages))


def apply(space: DesignSpace, decisions: Sequence[Decision]) -> DesignSpace:
    """``space`` with every decision in ``decisions`` imposed (whatever ``taken`` says).

    Narrowings compose (each narrows the current value), then shares set their value in every stage, then
    monotone constraints are added. Narrowing one stage of a shared field narrows every stage, so it stays
    shared. The result is re-read through ``DesignSpace.from_dict``; a composition that leaves no model
    (e.g. ranges that contradict a monotone constraint) is an error.
    """
    where = f"{space.name} refined"
    if space.is_regnet:
        regnet = dict(space.regnet)
        for d in decisions:
            if d.kind != "narrow" or d.field not in regnet:
                raise UserError(f"{where}: a RegNet space takes only narrowings of its [regnet] parameters, "
                                f"not {d.kind} {d.field}")
            regnet[d.field] = narrow(regnet[d.field], d.value[0], d.value[1], REGNET_TYPES[d.field],
                                     f"{where}.regnet.{d.field}")
        return _checked(dataclasses.replace(space, regnet=regnet), where)
    stages = range(space.num_stages)
    fields = {d.field for d in decisions} | set(space.stage) | {f for o in space.stages.values() for f in o}
    for d in decisions:
        if d.field not in STAGE_TYPES:
            raise UserError(f"{where}: {d.field!r} is not a stage field")
    per_stage = {f: [space.stage_value(i, f) for i in stages] for f in fields}
    shared, monotone = list(space.shared), list(space.monotone)
    order = {"narrow": 0, "share": 1, "monotone": 2}
    for d in sorted(decisions, key=lambda d: (order[d.kind], d.column is None)):
        values = per_stage[d.field]
        if d.kind == "narrow":
            targets = stages if d.column is None or d.field in shared else [_stage_of(d.column, d.field, space)]
            for i in targets:
                values[i] = narrow(values[i], d.value[0], d.value[1], STAGE_TYPES[d.field],
                                   f"{where}.stages.{i + 1}.{d.field}")
        elif d.kind == "share":
            per_stage[d.field] = [d.value] * space.num_stages
            shared += [d.field] if d.field not in shared else []
        elif d.kind == "monotone":
            monotone += [d.field] if d.field not in monotone else []
        else:
            raise UserError(f"{where}: unknown decision kind {d.kind!r}")
    # A field fixed to one value is the same in every stage already: `shared` matters only for a distribution.
    shared = [f for f in shared if isinstance(per_stage.get(f, [None])[0], Distribution)]
    stage, overrides = {}, {i + 1: {} for i in stages}
    for f, values in per_stage.items():
        if all(v == values[0] for v in values):
            if values[0] is not None:
                stage[f] = values[0]
        else:
            for i, v in enumerate(values):
                overrides[i + 1][f] = v
    refined = _checked(dataclasses.replace(space, stage=stage, stages={i: o for i, o in overrides.items() if o},
                                           shared=tuple(shared), monotone=tuple(monotone)), where)
    if refined.size() == 0:
        raise UserError(f"{where}: the decisions leave no model that meets the constraints "
                        f"(monotone: {', '.join(monotone)})")
    return refined


def refine(space: DesignSpace, frame: pd.DataFrame, *, alpha: float = 0.05, permutations: int = 1000,
           seed: int = 0, complexity: str | None = COMPLEXITY) -> Refinement:
    """``space`` with the decisions the data supports imposed, and the rationale of every decision proposed."""
    decisions = propose(space, frame, alpha=alpha, permutations=permutations, seed=seed, complexity=complexity)
    taken = [d for d in decisions if d.taken]
    refined = dataclasses.replace(apply(space, taken), name=f"{space.name}_refined",
                                  description=f"{space.name} narrowed by `regnet-space refine` from "
                                              f"{len(frame)} models")
    inside = inside_models(refined, frame)
    held = complexity if complexity in frame.columns else "other parameters only (no complexity column)"
    header = (f"{len(decisions)} candidate decisions from {len(frame)} models; each p from {permutations} "
              f"Freedman-Lane permutations at equal {held} (seed {seed}), Holm-adjusted over the "
              f"{len(decisions)}; taken when Holm p <= {alpha:g}: {len(taken)} taken; {int(inside.sum())} of the "
              f"{len(frame)} models lie in the refined space"
              + (f" (median error {frame['error'][inside].median():.2f}% vs {frame['error'].median():.2f}% "
                 f"for all)" if 0 < inside.sum() < len(frame) else ""))
    return Refinement(refined, [header] + [d.why for d in decisions], decisions)


def inside_models(space: DesignSpace, frame: pd.DataFrame) -> np.ndarray:
    """Which models of ``frame`` lie in ``space``: every sampled column within its value's span (fixed
    values: equal), and the monotone constraints met. A model the refinement keeps is evidence that the
    narrowed space still holds good models (and is not empty)."""
    keep = np.ones(len(frame), dtype=bool)
    if space.is_regnet:
        spans = {f: v for f, v in space.regnet.items()}
    else:
        spans = {f"{alias}{i + 1}": space.stage_value(i, f) for f, alias in STAGE_ALIASES.items()
                 for i in range(space.num_stages)}
    for column, value in spans.items():
        if column not in frame.columns or not (is_number(value) or _varies(value)):
            continue
        values = frame[column].to_numpy(dtype=float)
        lo, hi = (value, value) if is_number(value) else (min(value.values), max(value.values))
        keep &= (values >= lo - 1e-9) & (values <= hi + 1e-9)
    for field in space.monotone if not space.is_regnet else ():
        cols = [f"{STAGE_ALIASES[field]}{i + 1}" for i in range(space.num_stages)]
        if all(c in frame.columns for c in cols):
            keep &= np.all(np.diff(frame[cols].to_numpy(dtype=float), axis=1) >= 0, axis=1)
    return keep


# -- candidates --


def _columns(space: DesignSpace) -> list[str]:
    """The table columns of the space's sampled parameters."""
    if space.is_regnet:
        return [f for f, v in space.regnet.items() if _varies(v)]
    return [f"{STAGE_ALIASES[f]}{i + 1}" for f in STAGE_ALIASES for i in range(space.num_stages)
            if _varies(space.stage_value(i, f))]


def _varies(value) -> bool:
    return isinstance(value, Distribution) and len(value) > 1 and all(map(is_number, value.values.tolist()))


def _require(frame: pd.DataFrame, columns: list[str], space: DesignSpace) -> None:
    missing = [c for c in columns + ["error"] if c not in frame.columns or frame[c].isna().all()]
    if missing:
        why = unbuildable(frame)
        raise UserError(f"refining {space.name!r} needs the sampled parameter {missing[0]!r} in the table"
                        + (f" ({why})" if why else ""))


def _stage_of(column: str, field: str, space: DesignSpace) -> int:
    alias, number = column[:1], column[1:]
    if STAGE_ALIASES.get(field) != alias or not number.isdigit() or not 1 <= int(number) <= space.num_stages:
        raise UserError(f"{space.name}: column {column!r} is not a stage column of {field}")
    return int(number) - 1


def _levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(level of each value, lowest and highest value of each level): the distinct values, or MAX_LEVELS
    quantile groups of them when there are more."""
    flat = values.ravel()
    distinct = np.unique(flat)
    if len(distinct) <= MAX_LEVELS:
        return np.searchsorted(distinct, values), distinct, distinct
    cuts = np.quantile(flat, np.arange(1, MAX_LEVELS) / MAX_LEVELS)
    raw = np.searchsorted(cuts, values, side="right")
    used, level = np.unique(raw, return_inverse=True)
    level = level.reshape(values.shape)
    lows = np.array([flat[level.ravel() == k].min() for k in range(len(used))])
    highs = np.array([flat[level.ravel() == k].max() for k in range(len(used))])
    return level, lows, highs


def _ranges(count: int):
    """Every contiguous run [i, j] of ``count`` levels except the whole."""
    return [(i, j) for i in range(count) for j in range(i, count) if (i, j) != (0, count - 1)]


def _enough(feature: np.ndarray) -> bool:
    """The feature marks at least MIN_MODELS models and leaves at least MIN_MODELS unmarked (or lower)."""
    return np.sum(feature > feature.min()) >= MIN_MODELS and np.sum(feature < feature.max()) >= MIN_MODELS


def _snapped(dists: list, low: float, high: float, value_type: type) -> tuple[Any, Any]:
    """(low, high) snapped outward to the support of every stage's distribution: the narrowed span."""
    spans = []
    for dist in dists:
        narrowed = narrow(dist, low, high, value_type, "refine")
        if isinstance(narrowed, Distribution):
            support = narrowed.values.tolist()
            spans.append((min(support), max(support)))
        else:
            spans.append((narrowed, narrowed))
    lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
    cast = int if value_type is int else float
    return cast(lo), cast(hi)


def _range_candidate(field: str, column: str | None, values: np.ndarray, dists: list, value_type: type,
                     name: str, share: bool = False) -> _Candidate:
    """Narrow ``name`` to a contiguous range of levels; ``values`` is models x stages (1 column: one value).

    With several stages a model is scored by how many of its stages lie in the range, and separately by
    whether all do. With ``share``, a range of one value is the decision to share that value (AnyNetX_B/C),
    so sharing and narrowing compete in one candidate and the better-supported one is proposed: b = 1
    alone beats b in {1, 2}, g in {4, 8, 16} beats g = 4 alone.
    """
    level, lows, highs = _levels(values)
    kinds, features, decided, phrases = [], [], [], []
    for i, j in _ranges(len(lows)):
        inside = (level >= i) & (level <= j)
        if share and i == j and lows[i] == highs[i]:
            kind, value = "share", (int if value_type is int else float)(lows[i])
            what = f"share {field} = {value:g}"
        else:
            low = -math.inf if i == 0 else lows[i]
            high = math.inf if j == len(lows) - 1 else highs[j]
            kind, value = "narrow", _snapped(dists, low, high, value_type)
            what = f"narrow {name} to [{value[0]:g}, {value[1]:g}]"
        options = [(inside.sum(axis=1).astype(float), "count of stages")]
        if values.shape[1] > 1:
            options.append((inside.all(axis=1).astype(float), "all stages"))
        for feature, how in options:
            if _enough(feature):
                kinds.append(kind)
                features.append(feature)
                decided.append(value)
                phrases.append(what if values.shape[1] == 1 else f"{what} ({how})")
    return _Candidate(kinds, field, column, _matrix(features, len(values)), decided, phrases)


def _monotone_candidate(field: str, values: np.ndarray) -> _Candidate:
    steps = np.diff(values, axis=1) >= 0
    features, phrases = [], []
    for feature, how in ((steps.all(axis=1).astype(float), "all steps"),
                         (steps.sum(axis=1).astype(float), "count of non-decreasing steps")):
        if _enough(feature):
            features.append(feature)
            phrases.append(f"non-decreasing {field} ({how})")
    return _Candidate(["monotone"] * len(features), field, None, _matrix(features, len(values)),
                      [None] * len(features), phrases)


def _anynet_candidates(space: DesignSpace, frame: pd.DataFrame) -> list[_Candidate]:
    candidates = []
    stages = range(space.num_stages)
    for field, alias in STAGE_ALIASES.items():
        varying = [i for i in stages if _varies(space.stage_value(i, field))]
        if not varying:
            continue
        kind = STAGE_TYPES[field]
        if field in SHAREABLE or field in space.shared:
            cols = [f"{alias}{i + 1}" for i in varying]
            values = frame[cols].to_numpy(dtype=float)
            dists = [space.stage_value(i, field) for i in varying]
            can_share = field not in space.shared and len(varying) == space.num_stages
            candidates.append(_range_candidate(field, None, values, dists, kind, f"{field} in every stage",
                                               share=can_share))
        if field not in space.shared:
            for i in varying:
                col = f"{alias}{i + 1}"
                candidates.append(_range_candidate(field, col, frame[[col]].to_numpy(dtype=float),
                                                   [space.stage_value(i, field)], kind, col))
        if field in MONOTONE and field not in space.monotone and space.num_stages > 1:
            cols = [f"{alias}{i + 1}" for i in stages]
            if all(c in frame.columns for c in cols):
                candidates.append(_monotone_candidate(field, frame[cols].to_numpy(dtype=float)))
    return candidates


def _regnet_candidates(space: DesignSpace, frame: pd.DataFrame) -> list[_Candidate]:
    return [_range_candidate(f, None, frame[[f]].to_numpy(dtype=float), [space.regnet[f]], REGNET_TYPES[f], f)
            for f in _columns(space)]


def _matrix(features: list[np.ndarray], n: int) -> np.ndarray:
    return np.stack(features, axis=1) if features else np.empty((n, 0))


def _contrast(errors: np.ndarray, feature: np.ndarray) -> str:
    """Median error of the models the feature marks vs the rest, or by count (0, 1, ... stages), for the
    rationale."""
    levels = np.unique(feature)
    if len(levels) == 2:
        top = feature == levels[1]
        return (f"median error {np.median(errors[top]):.2f}% ({int(top.sum())} models) vs "
                f"{np.median(errors[~top]):.2f}% ({int((~top).sum())})")
    medians = "/".join(f"{np.median(errors[feature == v]):.2f}" for v in levels)
    counts = "/".join(str(int(np.sum(feature == v))) for v in levels)
    return f"median error by count {'/'.join(f'{v:g}' for v in levels)}: {medians}% ({counts} models)"


def _checked(space: DesignSpace, where: str) -> DesignSpace:
    """The space re-read from its own dict form, so it passes every check ``load_space`` makes."""
    return DesignSpace.from_dict(space.to_dict(), where)
