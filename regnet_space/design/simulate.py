"""Simulations that calibrate the paired evaluation against the unpaired one, on analytic oracles.

Shared by analysis/design_loop/paired_calibration.py (the full tables) and tests/test_paired.py (fast
versions), so the numbers the docs quote and the checks that guard them come from one piece of code.

A ``Pool`` holds, for one constraint, models of the parent space (in a flops window) with their projections
into the candidate space (``projection.project``; the unprojectable ones counted and left out), and
independent populations of the parent and candidate spaces for the unpaired comparison. A replicate draws its
models from the pool at random and its errors from an oracle with a fresh seed (``oracles.paired_oracle``: a
pair's two models share the seed's part of the noise), so replicates differ in models and in noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..analysis.refine import Decision, apply
from ..models.complexity import complexity
from ..spaces import SampledModel, load_space, sample_models
from . import oracles
from .candidates import REGNET, Candidate, paper_steps, regnet_restriction
from .compare import one_sided_tests
from .paired import BATCH, paired_test, sequential
from .projection import project

Oracle = Callable[[int], Callable]  # seed -> evaluate(models, keys=None)


@dataclass
class Pool:
    """Pairs (parent model, projection, log flops ratio) and two independent populations, for one candidate."""

    candidate: Candidate
    models: list[SampledModel]
    projections: list[SampledModel]
    log_ratios: np.ndarray
    unprojectable: int
    parents: list[SampledModel]
    children: list[SampledModel]


def rule(kind: str, field: str, value=None) -> Decision:
    """A decision taken without evidence: the rule a candidate imposes, for simulations and tests."""
    nan = float("nan")
    return Decision(kind, field, None, value, nan, nan, True, f"{kind} {field}")


def constraints() -> list[tuple[str, str, Candidate, str]]:
    """The calibration's constraints: (name, parent space, candidate, ``oracles.violation`` kind it plants)."""
    a, e = load_space("anynetx_a"), load_space("anynetx_e")
    b1, g = rule("share", "bottleneck_ratio", 1.0), rule("narrow", "group_width", oracles.G_RANGE)
    widths = next(c for c in paper_steps(a) if c.name == "monotone width")
    return [("shared b = 1", "anynetx_a", Candidate("b=1", apply(a, [b1]), "", (b1,)), "b"),
            ("monotone widths", "anynetx_a", widths, "widths"),
            ("g range [4, 16]", "anynetx_a", Candidate("g range", apply(a, [g]), "", (g,)), "g"),
            ("RegNet restriction", "anynetx_e", Candidate(REGNET, regnet_restriction(e), ""), "regnet")]


def make_pool(parent_space, candidate: Candidate, *, pairs: int, population: int, windows: dict, seed: int,
              **form) -> Pool:
    """``pairs`` parent models projected into the candidate (those that cannot be are counted), and
    ``population`` models of each space drawn independently."""
    drawn = sample_models(parent_space, pairs, seed=seed, windows=windows, **form)
    projected = [project(m, candidate) for m in drawn]
    kept = [p for p in projected if p.projected is not None]
    return Pool(candidate, [p.model for p in kept], [p.projected for p in kept],
                np.log([p.flops_ratio for p in kept]), len(projected) - len(kept),
                sample_models(parent_space, population, seed=seed + 1, windows=windows, **form),
                sample_models(candidate.space, population, seed=seed + 2, windows=windows, **form))


def pair_differences(pool: Pool, oracle: Callable, index: np.ndarray, tag: str) -> np.ndarray:
    """error(projection) - error(model) for the pool's pairs ``index``, each pair sharing one noise key."""
    keys = [f"{tag}:{i}" for i in range(len(index))]
    errors = oracle([pool.models[i] for i in index], keys)
    projected = oracle([pool.projections[i] for i in index], keys)
    return np.asarray(projected) - np.asarray(errors)


def paired_rejections(pool: Pool, make_oracle: Oracle, *, pairs: int, replicates: int, alpha: float = 0.05,
                      permutations: int = 1000, seed: int = 0) -> np.ndarray:
    """For each replicate: (p_better, p_worse) of the fixed-n paired test on ``pairs`` random pairs."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(replicates):
        index = rng.choice(len(pool.models), size=pairs, replace=False)
        d = pair_differences(pool, make_oracle(seed * 100_003 + r), index, f"r{r}")
        test = paired_test(d, pool.log_ratios[index], permutations=permutations, seed=r)
        out.append((test.p_better, test.p_worse))
    return np.array(out)


def sequential_runs(pool: Pool, make_oracle: Oracle, *, max_pairs: int, replicates: int, alpha: float = 0.05,
                    batch: int = BATCH, spend: str = "obrien-fleming", seed: int = 0) -> list:
    """For each replicate: the ``paired.Sequential`` of pairs drawn in random order, in batches."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(replicates):
        order = rng.permutation(len(pool.models))[:max_pairs]
        oracle = make_oracle(seed * 100_003 + r)

        def next_pairs(start: int, stop: int, order=order, oracle=oracle, r=r):
            index = order[start:stop]
            return pair_differences(pool, oracle, index, f"r{r}p{start}"), pool.log_ratios[index]

        out.append(sequential(next_pairs, max_pairs, alpha=alpha, batch=batch, spend=spend, permutations=200,
                              seed=r))
    return out


def unpaired_rejections(pool: Pool, make_oracle: Oracle, *, n: int, replicates: int, permutations: int = 500,
                        seed: int = 0) -> np.ndarray:
    """For each replicate: p_better of ``compare.one_sided_tests`` of n candidate models against n parent
    models (independent draws, each its own noise), at equal flops."""
    rng = np.random.default_rng(seed)
    flops = {id(m): complexity(m.spec).flops for m in pool.parents + pool.children}
    out = []
    for r in range(replicates):
        oracle = make_oracle(seed * 100_003 + r)
        parents = [pool.parents[i] for i in rng.choice(len(pool.parents), size=n, replace=False)]
        children = [pool.children[i] for i in rng.choice(len(pool.children), size=n, replace=False)]
        test = one_sided_tests((np.asarray(oracle(parents)), np.array([flops[id(m)] for m in parents])),
                               (np.asarray(oracle(children)), np.array([flops[id(m)] for m in children])),
                               permutations=permutations, seed=r)
        out.append(test.p_better)
    return np.array(out)


def binomial_interval(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a rate, as the other calibrations report it."""
    ci = stats.binomtest(int(hits), int(n)).proportion_ci(level)
    return float(ci.low), float(ci.high)
