"""The refinements a round of the design loop tries: the calibrated decisions of ``refine.propose``, grouped
by the field they constrain; the RegNet paper's own steps that the parent population cannot judge; and the
RegNet restriction when the good models' widths look like a quantized line at equal flops.

Grouping by field follows the paper's steps (B: share b, C: share g, D: non-decreasing widths, E: non-decreasing
depths): a candidate is every decision the data supports about one field (sharing b and fixing it to 1, say,
or narrowing w1..w4 and making widths non-decreasing). A paper step no decision covers is tried as it is (its
own population decides), because a parent population often cannot see it: about 1 AnyNetX_A model in 24 has
non-decreasing widths, too few to mark. Accepted candidates compose: their decisions are applied to the parent
together (``refine.apply``), then the RegNet restriction if it was accepted (it turns an AnyNet space into a
RegNet space, after which per-stage decisions no longer apply).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis.adjust import complexity_basis, complexity_strata, partial_max_test
from ..analysis.linear_fit import fit_many
from ..analysis.refine import Decision, apply, propose
from ..analysis.table import frame_block_widths
from ..errors import UserError
from ..spaces import DesignSpace, Distribution
from ..spaces.space import REGNET_STAGE_FIELDS

REGNET = "regnet"
# The RegNet paper's ranges for the rule's parameters (pycls's quanta): d < 64, w0 and wa < 256, 1.5 <= wm <= 3.
REGNET_RANGES = {
    "w0": {"dist": "log_uniform", "lo": 8, "hi": 248, "q": 8},
    "wa": {"dist": "log_uniform", "lo": 8.0, "hi": 255.9, "q": 0.1},
    "wm": {"dist": "log_uniform", "lo": 1.5, "hi": 3.0, "q": 0.001},
}
_MAX_DEPTH = 63
RULE_STAGE = {"stride": 2, "block": "res_bottleneck"}  # what RegNetParams.to_spec gives every stage


@dataclass(frozen=True)
class Candidate:
    """A refinement of the parent space: ``name`` (stable, used in seeds and labels), the ``space`` it gives,
    ``why`` it was proposed, the ``decisions`` it imposes (none for the RegNet restriction), and whether the
    parent population supports it (``evidence``) or it is one of the paper's steps tried without."""

    name: str
    space: DesignSpace
    why: str
    decisions: tuple[Decision, ...] = ()
    evidence: bool = True  # proposed from the parent population's data; False: a paper step tried as it is


def slug(name: str) -> str:
    """A name safe in a file name, a study name and a seed string."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "candidate"


def candidates(space: DesignSpace, frame: pd.DataFrame, *, alpha: float = 0.05, seed: int = 0,
               permutations: int = 1000) -> list[Candidate]:
    """The refinements of ``space`` that ``frame`` (its population: sampled parameters, ``error``, ``flops``)
    supports at equal flops: one per field with a taken decision (in the order ``propose`` lists them), then the
    paper's steps no decision covers, then the RegNet restriction."""
    taken = [d for d in propose(space, frame, alpha=alpha, permutations=permutations, seed=seed) if d.taken]
    fields = list(dict.fromkeys(d.field for d in taken))
    out = []
    for field in fields:
        mine = tuple(d for d in taken if d.field == field)
        kinds = "+".join(dict.fromkeys(d.kind for d in mine))
        out.append(Candidate(f"{kinds} {field}", apply(space, mine), "; ".join(d.why for d in mine), mine))
    out += [step for step in paper_steps(space) if step.decisions[0].field not in fields]
    regnet = regnet_candidate(space, frame, alpha=alpha, seed=seed, permutations=permutations)
    if regnet is not None:
        out.append(regnet)
    return out


PAPER_STEPS = (("share", "bottleneck_ratio", "AnyNetX_B"), ("share", "group_width", "AnyNetX_C"),
               ("monotone", "width", "AnyNetX_D"), ("monotone", "depth", "AnyNetX_E"))


def paper_steps(space: DesignSpace) -> list[Candidate]:
    """The RegNet paper's B-E steps that ``space`` (an AnyNet space) does not have yet, each as it is: share b
    (one value drawn for all stages), share g, non-decreasing widths, non-decreasing depths."""
    if space.is_regnet or space.num_stages < 2:
        return []
    out = []
    for kind, field, name in PAPER_STEPS:
        value = space.stage_value(0, field)
        if kind == "share" and (field in space.shared or single_value(space, field) is not None
                                or any(space.stage_value(i, field) != value for i in range(space.num_stages))):
            continue  # already one value, or stages with different ranges (nothing one draw could share)
        if kind == "monotone" and field in space.monotone:
            continue
        decision = Decision(kind, field, None, value if kind == "share" else None, float("nan"), float("nan"),
                            True, f"the paper's {name} step, tried as it is", float("nan"))
        try:
            refined = apply(space, [decision])
        except UserError:  # e.g. a monotone constraint no model of the space meets
            continue
        out.append(Candidate(f"{kind} {field}", refined, f"the paper's {name} step ({kind} {field}): the parent "
                             "population cannot judge it, so its own population does", (decision,), evidence=False))
    return out


def compose(parent: DesignSpace, accepted: list[Candidate]) -> DesignSpace:
    """Every accepted candidate's decisions applied to ``parent`` together, then the RegNet restriction."""
    decisions = [d for c in accepted for d in c.decisions]
    space = apply(parent, decisions) if decisions else parent
    return regnet_restriction(space) if any(c.name == REGNET for c in accepted) else space


# -- the RegNet restriction --

def single_value(space: DesignSpace, field: str):
    """The one value (fixed, or a distribution drawn once for all stages) of ``field`` in an AnyNet space, or
    None if stages may differ."""
    values = [space.stage_value(i, field) for i in range(space.num_stages)]
    if field in space.shared or all(v == values[0] and not isinstance(v, Distribution) for v in values):
        return values[0]
    return None


def regnet_restriction(space: DesignSpace) -> DesignSpace:
    """The RegNet space inside an AnyNet space: widths from the quantized linear rule, total depth within the
    space's, stem, head and other stage fields unchanged; b, g (and the SE ratio) as the space shares them, or,
    where its stages draw them separately, drawn once for the whole network from their stages' values (the
    rule has one b and one g; ``rule_value``)."""
    if space.is_regnet:
        raise UserError(f"{space.name}: already a RegNet space")
    shared = {f: rule_value(space, f) for f in ("bottleneck_ratio", "group_width", "se_ratio")}
    depth_lo = sum(_support(space.stage_value(i, "depth"))[0] for i in range(space.num_stages))
    depth_hi = min(_MAX_DEPTH, sum(_support(space.stage_value(i, "depth"))[-1] for i in range(space.num_stages)))
    others = {}
    for name in sorted({*space.stage, *(k for o in space.stages.values() for k in o)} - set(REGNET_STAGE_FIELDS)):
        value = single_value(space, name)
        if value is None:
            raise UserError(f"{space.name}: stages differ in {name}, which a RegNet space sets once for all stages")
        if value != RULE_STAGE.get(name):  # the rule's own stride and block are left to it (and to the input form)
            others[name] = value
    data = {
        "name": f"{space.name}_regnet",
        **({"input_form": space.input_form} if space.input_form != "auto" else {}),
        "description": f"{space.name} restricted to the quantized linear rule (RegNet)",
        "stem": {k: _plain(v) for k, v in space.stem.items()},
        "head": {k: _plain(v) for k, v in space.head.items()},
        "stage": {k: _plain(v) for k, v in others.items()},
        "regnet": {"depth": {"dist": "uniform", "lo": int(depth_lo), "hi": int(depth_hi)}, **REGNET_RANGES,
                   **{k: _plain(v) for k, v in shared.items()}},
        "constraints": {"num_stages": [space.num_stages, space.num_stages]},
    }
    return DesignSpace.from_dict(data, data["name"])


def rule_value(space: DesignSpace, field: str):
    """What a RegNet space takes for ``field`` from an AnyNet space: its one value when it has one, the stages'
    common distribution drawn once when every stage draws from the same one, else one draw from the union of the
    stages' values."""
    value = single_value(space, field)
    if value is not None:
        return value
    values = [space.stage_value(i, field) for i in range(space.num_stages)]
    if all(v == values[0] for v in values):
        return values[0]
    return {"dist": "choice", "values": sorted({x for v in values for x in _support(v)})}  # a choice table


def _support(value) -> list:
    return sorted(value.values.tolist()) if isinstance(value, Distribution) else [value]


def _plain(value):
    return value.to_dict() if isinstance(value, Distribution) else value


def e_fits(frame: pd.DataFrame) -> np.ndarray:
    """Each model's e_fit: how far its per-block widths are from the nearest quantized line."""
    return np.array([fit.e_fit for fit in fit_many(frame_block_widths(frame))])


def regnet_candidate(space: DesignSpace, frame: pd.DataFrame, *, alpha: float, seed: int,
                     permutations: int = 1000) -> Candidate | None:
    """The RegNet restriction, proposed when models whose widths are nearer a quantized line have lower errors
    at equal flops: the partial correlation of -e_fit with the low-error ranks given log flops, one-sided, with
    a Freedman-Lane permutation p-value (``analysis.adjust``), at level ``alpha``. For any AnyNet space, whether
    or not its stages share b and g or its widths are non-decreasing yet (the data decides when the step comes;
    ``regnet_restriction`` draws a free b or g once, as the rule does)."""
    if space.is_regnet:
        return None
    try:
        restricted = regnet_restriction(space)
    except UserError:  # e.g. per-stage strides, which a RegNet space cannot express
        return None
    fits = e_fits(frame)
    observed, p = e_fit_test(fits, frame["error"].to_numpy(float), frame["flops"].to_numpy(float),
                             permutations=permutations, seed=seed)
    why = (f"e_fit vs error at equal flops: partial rank correlation {observed:+.2f}, one-sided permutation "
           f"p={p:.3g} (median e_fit {np.median(fits):.3f})")
    if not p <= alpha:
        return None
    return Candidate(REGNET, restricted, "RegNet restriction: " + why)


def e_fit_test(fits: np.ndarray, errors: np.ndarray, flops: np.ndarray, *, permutations: int, seed: int
               ) -> tuple[float, float]:
    """How strongly a low e_fit marks low errors among models of equal flops: the partial correlation and its
    one-sided permutation p-value."""
    _, observed, p = partial_max_test(errors, -np.asarray(fits, float)[:, None], complexity_basis(flops),
                                      permutations=permutations, rng=np.random.default_rng(seed),
                                      strata=complexity_strata(flops))
    return float(observed), float(p)
