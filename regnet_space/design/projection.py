"""Projections: a model of the parent space moved into a candidate space at its own complexity.

The controlled (paired) evaluation of a constraint C asks "does imposing C on a model of S, at equal flops,
change its error?" (docs/statistics.md). Its pairs are a model m of S and its projection P(m): the nearest
model of the candidate space, as each rule defines "nearest", rescaled so its flops return to m's.

The rules, one per kind of refinement (``Candidate.decisions``, or the RegNet restriction):
- ``share`` a field (b, g, ...): every stage takes one value, the candidate's fixed value, or, when the
  candidate draws it, the model's own value that covers the most blocks (the least change);
- ``narrow`` a field to a range: each value clamped to the narrowed support (nearest value, on a log scale);
- ``monotone`` a field (widths, depths): the stage values sorted, so the model keeps its values and only
  their order changes;
- the RegNet restriction: the quantized-linear fit of the model's per-block widths (``analysis.linear_fit``)
  with its total depth, b and g as the candidate shares them (a free b or g is shared as above);
- a narrowing of a RegNet space's parameters (depth, w0, wa, wm, g, b): the model's own parameters, each moved
  to the nearest value of the narrowed support.
Then every drawn value is snapped to the candidate's support, and widths are rescaled (by s, then snapped:
multiples of 8 within the range) until the flops are within ``TOLERANCE`` of the model's, the factor giving the
nearest flops winning; if no width factor gets there (widths at the edge of their range), depths are rescaled
instead. The group-compatibility rule (``make_compatible``) is applied as the sampler applies it, and the
result must lie in the candidate space (``lies_in``: every drawn value in its support, shared values equal,
monotone fields non-decreasing, a RegNet model with the space's number of stages). For a RegNet candidate
w0 and wa are scaled together (wm kept), so the projection is an exact RegNet model of the candidate space.

A model that cannot be projected (no factor satisfies both the space and the tolerance) is returned with the
reason and no projection: the paired evaluation reports and drops it, never keeps it as it is.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..analysis.linear_fit import fit_quantized_linear
from ..errors import UserError
from ..models.complexity import complexity
from ..models.regnet import RegNetParams, make_compatible, quantized_block_widths, runs
from ..spaces import DesignSpace, Distribution, SampledModel
from ..spaces.sampling import stage_key
from .candidates import REGNET, Candidate

TOLERANCE = 0.05  # |flops(projection) / flops(model) - 1| at most this
_STEPS = 48  # factors s0 * 2^(k / _STEPS), |k| <= _STEPS / 2, tried around the nominal factor s0
STAGE_FIELDS = ("depth", "width", "bottleneck_ratio", "group_width")
_REGNET_FIELDS = ("w0", "wa", "wm", "depth", "group_width", "bottleneck_ratio")


@dataclass(frozen=True)
class Projection:
    """A model, its projection into the candidate space (None when it has none) and ``why`` not;
    ``flops_ratio`` = flops(projection) / flops(model) (nan when none)."""

    model: SampledModel
    projected: SampledModel | None
    flops_ratio: float
    why: str = ""


def project(model: SampledModel, candidate: Candidate, *, tolerance: float = TOLERANCE) -> Projection:
    """``model`` (of the candidate's parent space) moved into ``candidate.space`` at equal flops."""
    target = complexity(model.spec).flops
    if candidate.name == REGNET or candidate.space.is_regnet:
        found = _regnet_projection(model, candidate.space, target, tolerance)
    else:
        values = {f: _drawn(model, f) for f in STAGE_FIELDS}
        depths_weight = list(model.spec.depths)
        for decision in candidate.decisions:
            values[decision.field] = _impose(decision, values[decision.field], depths_weight)
        found = _anynet_projection(model, candidate.space, values, target, tolerance)
    if isinstance(found, str):
        return Projection(model, None, float("nan"), found)
    return Projection(model, found, complexity(found.spec).flops / target)


def lies_in(space: DesignSpace, model: SampledModel) -> str:
    """Why ``model`` is not a model of ``space`` ("" when it is): its drawn values (``params``) must lie in the
    space's supports, shared fields be equal in every stage, monotone fields non-decreasing in the spec (as the
    sampler checks them), a RegNet model have its rule's parameters and the space's number of stages."""
    if space.is_regnet:
        if model.regnet is None:
            return "not a RegNet model"
        for name in _REGNET_FIELDS:
            if not _in_support(getattr(model.regnet, name), space.regnet.get(name, getattr(model.regnet, name))):
                return f"{name}={getattr(model.regnet, name)} outside the space's {name}"
        lo, hi = space.regnet_stages
        if not lo <= len(model.spec.stages) <= hi:
            return f"{len(model.spec.stages)} stages, the space takes {lo}..{hi}"
        return ""
    if len(model.spec.stages) != space.num_stages:
        return f"{len(model.spec.stages)} stages, the space has {space.num_stages}"
    for i in range(space.num_stages):
        for name in STAGE_FIELDS:
            value = model.params.get(stage_key(name, i))
            if value is not None and not _in_support(value, space.stage_value(i, name)):
                return f"{stage_key(name, i)}={value} outside the space's support"
    for name in space.shared:
        if len({model.params.get(stage_key(name, i)) for i in range(space.num_stages)}) > 1:
            return f"{name} differs between stages, the space shares it"
    for name in space.monotone:
        values = getattr(model.spec, _plural(name))
        if any(b < a for a, b in zip(values, values[1:])):
            return f"{name}s decrease, the space's are non-decreasing"
    return ""


# -- the rules --

def _impose(decision, values: list, weights: list[int]) -> list:
    """One decision's rule applied to the per-stage ``values`` of its field."""
    if decision.kind == "share":
        shared = decision.value if not isinstance(decision.value, Distribution) else _majority(values, weights)
        return [shared] * len(values)
    if decision.kind == "monotone":
        return sorted(values)
    if decision.kind == "narrow":
        lo, hi = decision.value
        stage = None if decision.column is None else int(decision.column.lstrip("dwbg")) - 1
        return [min(max(v, lo), hi) if stage is None or i == stage else v for i, v in enumerate(values)]
    raise ValueError(f"no projection rule for a {decision.kind!r} decision")


def _majority(values: list, weights: list[int]):
    """The value covering the most blocks (ties: the smaller value)."""
    blocks = Counter()
    for value, weight in zip(values, weights):
        blocks[value] += weight
    return min(blocks, key=lambda v: (-blocks[v], v))


def _anynet_projection(model: SampledModel, space: DesignSpace, values: dict[str, list], target: float,
                       tolerance: float) -> SampledModel | str:
    """The projected model nearest ``target`` flops with widths (else depths) rescaled, or why there is none."""
    values = {f: [_snap(v, space.stage_value(i, f)) for i, v in enumerate(vs)] for f, vs in values.items()}
    why = ""
    for field in ("width", "depth"):
        def build(s: float, field: str = field) -> tuple[SampledModel, str]:
            return _anynet_model(model, space, {**values, field: [
                _snap(v * s, space.stage_value(i, field)) for i, v in enumerate(values[field])]})

        found = _nearest(build, target, 2.0 if field == "width" else 1.0, tolerance)
        if not isinstance(found, str):
            return found
        why = why or found
    return why


def _anynet_model(model: SampledModel, space: DesignSpace, values: dict[str, list]) -> tuple[SampledModel, str]:
    """The model with these drawn stage values (group compatibility applied as the sampler applies it), and why
    it is not in ``space`` ("" when it is)."""
    widths, groups = make_compatible(values["width"], values["bottleneck_ratio"], values["group_width"])
    stages = tuple(dataclasses.replace(stage, depth=int(d), width=int(w), bottleneck_ratio=float(b),
                                       group_width=int(g))
                   for stage, d, w, b, g in zip(model.spec.stages, values["depth"], widths,
                                                values["bottleneck_ratio"], groups))
    params = dict(model.params)
    params.update({stage_key(f, i): v for f, vs in values.items() for i, v in enumerate(vs)})
    projected = SampledModel(dataclasses.replace(model.spec, stages=stages), params)
    return projected, lies_in(space, projected)


def _regnet_projection(model: SampledModel, space: DesignSpace, target: float, tolerance: float
                       ) -> SampledModel | str:
    """The RegNet model nearest ``model`` in a RegNet ``space``, w0 and wa scaled together to return to
    ``target``. For an AnyNet model: the quantized-linear fit of its per-block widths, with its total depth and
    its b and g shared as above. For a RegNet model (the candidate narrows the rule's parameters): its own
    parameters. Each is moved to the nearest value of the space's support; when the line's wm gives another
    number of stages than the space's, the nearest wm of the support that gives its number (the same line,
    quantized more or less finely)."""
    spec = model.spec
    regnet = space.regnet
    if model.regnet is not None:
        line = model.regnet
        own = {f: getattr(line, f) for f in ("group_width", "bottleneck_ratio")}
    else:
        line = fit_quantized_linear(spec.block_widths())
        own = {f: _majority(_drawn(model, f), list(spec.depths)) for f in ("group_width", "bottleneck_ratio")}
    shared = {f: _snap(v, regnet.get(f, v)) for f, v in own.items()}
    depth = int(_snap(line.depth, regnet.get("depth", line.depth)))
    se = regnet.get("se_ratio", 0.0)
    wm_support = regnet["wm"]
    wms = (sorted(wm_support.values.tolist(), key=lambda v: abs(math.log(v / line.wm)))
           if isinstance(wm_support, Distribution) else [wm_support])
    lo, hi = space.regnet_stages
    wm = next((v for v in wms if lo <= len(runs(quantized_block_widths(depth, line.w0, line.wa, v))[0]) <= hi),
              None)
    if wm is None:
        return f"no wm of the space gives the line of its widths {lo}..{hi} stages"

    def build(s: float) -> tuple[SampledModel | None, str]:
        try:
            params = RegNetParams(depth=depth, w0=int(_snap(line.w0 * s, regnet["w0"])),
                                  wa=float(_snap(line.wa * s, regnet["wa"])), wm=float(wm),
                                  group_width=int(shared["group_width"]),
                                  bottleneck_ratio=float(shared["bottleneck_ratio"]),
                                  se_ratio=float(se if not isinstance(se, Distribution) else se.values[0]),
                                  stem_width=spec.stem.width, stem_type=spec.stem.type,
                                  first_stride=spec.stages[0].stride)
        except UserError as exc:
            return None, str(exc)
        projected = params.to_spec(resolution=spec.resolution, in_channels=spec.in_channels,
                                   num_classes=spec.num_classes)
        projected = dataclasses.replace(projected, stem=spec.stem, head=spec.head)
        drawn = {name: getattr(params, name) for name in _REGNET_FIELDS + ("se_ratio",)}
        found = SampledModel(projected, drawn, params)
        return found, lies_in(space, found)

    return _nearest(build, target, 2.0, tolerance)


def _nearest(build, target: float, power: float, tolerance: float) -> SampledModel | str:
    """Of the models ``build(s)`` for factors s (flops ~ s^power), the one in the space whose flops are nearest
    ``target``, if within ``tolerance``; else why not. Two passes: factors within 2x of the nominal one in steps
    of 2^(1/8), then steps of 2^(1/64) around the best."""
    base, why = build(1.0)
    centre = (target / complexity(base.spec).flops) ** (1 / power) if base is not None else 1.0
    best = None
    for step in (1 / 8, 1 / 64):
        for k in range(-8, 9):
            factor = centre * 2 ** (k * step)
            found, reason = build(factor)
            if reason:
                why = reason
                continue
            gap = abs(math.log(complexity(found.spec).flops / target))
            if best is None or gap < best[0]:
                best = (gap, factor, found)
        if best is None:
            break
        centre = best[1]
    if best is None:
        return f"no rescaled projection lies in the space ({why})"
    if best[0] > math.log1p(tolerance):
        return f"the nearest rescaled projection is {math.expm1(best[0]):.1%} from the model's flops"
    return best[2]


def _drawn(model: SampledModel, field: str) -> list:
    """The model's drawn per-stage values of ``field`` (before group compatibility), or its spec's."""
    keys = [stage_key(field, i) for i in range(len(model.spec.stages))]
    if all(k in model.params for k in keys):
        return [model.params[k] for k in keys]
    return list(getattr(model.spec, _plural(field)))


def _snap(value: float, support):
    """``value`` moved to the nearest value of ``support`` (a fixed value, or a Distribution's values), on a
    log scale."""
    if not isinstance(support, Distribution):
        return support
    values = support.values
    index = int(np.argmin(np.abs(np.log(values.astype(float)) - math.log(max(float(value), 1e-9)))))
    return values[index].item()


def _in_support(value, support) -> bool:
    if not isinstance(support, Distribution):
        return value == support or (isinstance(value, float) and math.isclose(value, support))
    return bool(np.any(np.isclose(support.values.astype(float), float(value))))


def _plural(field: str) -> str:
    return {"depth": "depths", "width": "widths", "bottleneck_ratio": "bottleneck_ratios",
            "group_width": "group_widths"}[field]
