"""The RegNet paper's narrowing loop, automated: propose refinements, verify each on a fresh population, keep
only what is better at equal complexity.

Round r starts from the current space and its population (round 0: the start space). ``candidates`` proposes
refinements: the decisions ``refine.propose`` takes from the parent population at equal flops, and the paper's
steps (share b, share g, non-decreasing widths, depths) that no decision covers. Each candidate space gets a
fresh population under the same complexity window, is evaluated, and is compared with the parent population by
two one-sided permutation tests on complexity-adjusted scores (``compare.py``), Holm-adjusted over the round:
- *better* when significantly better at equal flops: adjusted p_better <= alpha / rounds. "Better" is a claim the
  whole run makes, so its level is split over the rounds (Bonferroni across rounds, Holm within the round);
- *not worse* unless significantly worse (adjusted p_worse <= alpha).
When two or more candidates are not worse, their composition (``candidates.compose``) gets its own population
and test in the same family: constraints that help only together (an interaction) are found this way.
A candidate the parent's data proposed (its decision was significant at equal flops) is accepted when its own
population is not worse, the paper's rule; a paper step tried without such evidence only when it is better, so
on data without structure nothing is imposed. The next parent is the composition if it is acceptable, else the
best acceptable single candidate (``_next_parent``); a round with nothing acceptable ends the loop, as do
``rounds`` rounds and a ``budget`` the next population would exceed.

Determinism: the population of label L (``start``, ``r1-refine``, ``r2-composed``, ...) is drawn with seed
``population_seed(seed, L)``; the refinement decisions are seeded from (seed, round), the tests from (seed, L).
Given the same errors the loop takes the same path, so an evaluator that stores its results (the study-backed
one) makes a killed loop resumable: a rerun re-derives every population and reads back what was trained.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..analysis.edf import holm
from ..analysis.refine import MIN_MODELS
from ..errors import UserError
from ..models.complexity import complexity
from ..spaces import DesignSpace, SampledModel, sample_models
from .candidates import Candidate, candidates, compose, slug
from .compare import one_sided_tests

START = "start"
COMPOSED = "composed"
MIN_POPULATION = 4 * MIN_MODELS  # what refine.propose needs


def population_seed(seed: int, label: str) -> int:
    """The sampling seed of population ``label``; the same rule as a study's per-space seed, so a study with
    the design's seed and this label draws exactly this population."""
    return zlib.crc32(f"{seed}:{label}".encode())


class Population(list):
    """The models of one population (a list of SampledModel, in order), labelled so an evaluator backed by
    storage can name and resume it: ``label``, the ``space`` drawn from, the sampling ``seed`` and ``windows``."""

    def __init__(self, models: Sequence[SampledModel], *, label: str, space: DesignSpace, seed: int,
                 windows: dict[str, tuple[float, float]]) -> None:
        super().__init__(models)
        self.label, self.space, self.seed, self.windows = label, space, seed, windows


Evaluate = Callable[[Population], Sequence[float]]


@dataclass(frozen=True)
class DesignResult:
    """``final_space``; ``lineage``, one plain dict per evaluated population (see ``design_space``);
    ``populations``, label -> that population's results table; ``path``, the label of each round's parent
    population, start first (the last is the final space's); ``stop`` says why the loop ended."""

    final_space: DesignSpace
    lineage: list[dict[str, Any]]
    populations: dict[str, pd.DataFrame] = field(repr=False)
    path: list[str]
    stop: str

    def results(self) -> pd.DataFrame:
        """Every evaluated model, one table (column ``space`` = the population label)."""
        return pd.concat(list(self.populations.values()), ignore_index=True)


def population_table(models: Sequence[SampledModel], errors: Sequence[float], label: str) -> pd.DataFrame:
    """The analysis table of a population: sampled parameters, error, complexity, spec."""
    rows = []
    for index, (model, error) in enumerate(zip(models, errors)):
        cx = complexity(model.spec)
        rows.append({"space": label, "model_index": index, "error": float(error), "flops": cx.flops,
                     "params": cx.params, "acts": cx.acts, "mac": cx.mac, **model.params,
                     "spec": model.spec.to_json()})
    return pd.DataFrame(rows)


def design_space(space: DesignSpace, evaluate: Evaluate, *, rounds: int, population: int,
                 windows: dict[str, tuple[float, float]] | None, resolution: int, in_channels: int, num_classes: int,
                 seed: int, alpha: float = 0.05, budget: int | None = None,
                 permutations: int = 2000, propose: Callable[..., list[Candidate]] = candidates,
                 log: Callable[[str], None] | None = None) -> DesignResult:
    """Narrow ``space`` for up to ``rounds`` rounds; ``evaluate`` returns a population's errors in percent.

    Each lineage row: ``round``, ``candidate``, ``label``, ``space`` (its name), ``n``, ``mean_error``,
    ``median_error``, ``shift`` (its mean adjusted rank minus the parent's, ``compare.py``), ``ks`` (two-sided
    KS distance of the adjusted scores to the parent's), ``p`` (Holm-adjusted p that it is worse),
    ``p_better`` (Holm-adjusted p that it is better; better when <= alpha / rounds), ``d_better``, ``d_worse``, ``accepted``, ``better``,
    ``why`` and ``space_toml``. ``p`` and ``p_better`` are at equal flops when the window is finite.
    """
    if rounds < 0 or population < MIN_POPULATION:
        raise UserError(f"design: need rounds >= 0 and population >= {MIN_POPULATION} (what refine needs), "
                        f"got {rounds} and {population}")
    if not 0 < alpha < 1:
        raise UserError(f"design: alpha must be in (0, 1), got {alpha}")
    windows = dict(windows or {})
    lo, hi = windows.get("flops", (0.0, float("inf")))
    adjust = bool(np.isfinite(hi) and hi > lo)  # hold flops equal when the window has a finite span
    better_level = alpha / max(1, rounds)
    say = log or (lambda message: None)
    lineage: list[dict[str, Any]] = []
    tables: dict[str, pd.DataFrame] = {}
    used = 0

    def run(label: str, target: DesignSpace) -> pd.DataFrame:
        nonlocal used
        models = sample_models(target, population, seed=population_seed(seed, label), windows=windows,
                               resolution=resolution, in_channels=in_channels, num_classes=num_classes)
        batch = Population(models, label=label, space=target, seed=population_seed(seed, label), windows=windows)
        errors = [float(e) for e in evaluate(batch)]
        if len(errors) != len(models) or not all(np.isfinite(errors)):
            raise UserError(f"population {label}: the evaluator returned {len(errors)} errors for "
                            f"{len(models)} models, or a non-finite one")
        used += len(models)
        tables[label] = population_table(models, errors, label)
        return tables[label]

    def fits() -> bool:
        return budget is None or used + population <= budget

    if not fits():
        raise UserError(f"design: budget {budget} is below one population ({population})")
    parent, parent_label = space, START
    parent_table = run(START, space)
    lineage.append(_row(0, START, START, space, parent_table, None, accepted=True, better=False,
                        why="the start space"))
    say(f"round 0: {space.name}: mean error {parent_table['error'].mean():.2f}%")
    stop = f"ran {rounds} rounds"
    path = [START]
    for round_ in range(1, rounds + 1):
        if path[-1] != parent_label:
            path.append(parent_label)
        proposed = propose(parent, parent_table, alpha=alpha, seed=population_seed(seed, f"r{round_}"),
                           permutations=permutations)
        if not proposed:
            stop = f"round {round_}: no refinement is proposed"
            break
        if not fits():
            stop = f"round {round_}: the budget ({budget} models) is spent"
            break
        tested: list[tuple[Candidate, str, pd.DataFrame, Any]] = []
        for candidate in proposed:
            if not fits():
                break
            label = f"r{round_}-{slug(candidate.name)}"
            candidate = dataclasses.replace(candidate, space=_renamed(candidate.space, f"{space.name}_{label}"))
            table = run(label, candidate.space)
            tested.append((candidate, label, table, _test(parent_table, table, adjust, permutations, seed, label)))
        not_worse = [t for t, worse in zip(tested, holm([t[3].p_worse for t in tested])) if worse > alpha]
        if len(not_worse) >= 2 and fits():
            members = [c for c, _, _, _ in not_worse]
            names = " + ".join(c.name for c in members)
            composed = _renamed(compose(parent, members), f"{space.name}_r{round_}-{COMPOSED}")
            label = f"r{round_}-{COMPOSED}"
            table = run(label, composed)
            tested.append((Candidate(f"{COMPOSED}: {names}", composed, f"the candidates not worse, together "
                                     f"({names})", tuple(d for c in members for d in c.decisions),
                                     evidence=all(c.evidence for c in members)),
                           label, table, _test(parent_table, table, adjust, permutations, seed, label)))
        p_worse = holm([t[3].p_worse for t in tested])
        p_better = holm([t[3].p_better for t in tested])
        better = [i for i, p in enumerate(p_better) if p <= better_level and p_worse[i] > alpha]
        chosen = _next_parent(tested, p_worse, better, alpha)
        for i, ((candidate, label, table, test), worse, p_b) in enumerate(zip(tested, p_worse, p_better)):
            lineage.append(_row(round_, candidate.name, label, candidate.space, table, test, accepted=i == chosen,
                                better=i in better, why=candidate.why, p=worse, p_better=p_b))
            say(f"round {round_}: {candidate.name}: mean error {table['error'].mean():.2f}% vs "
                f"{parent_table['error'].mean():.2f}%, at equal flops p_worse={worse:.3g}, p_better={p_b:.3g} -> "
                f"{'accepted' if i == chosen else 'better' if i in better else 'not better'}")
        if chosen is None:
            stop = f"round {round_}: no refinement is better at equal flops"
            break
        candidate, parent_label, parent_table, _ = tested[chosen]
        parent = candidate.space
    say(f"stop: {stop}; final space {parent.name} (population {parent_label})")
    return DesignResult(parent, lineage, tables, path + ([parent_label] if path[-1] != parent_label else []), stop)


def _next_parent(tested: list, p_worse: Sequence[float], better: list[int], alpha: float) -> int | None:
    """Which tested population becomes the next parent (an index into ``tested``), or None.

    A candidate is acceptable when it is better, or when it is not worse and the parent population's data
    proposed it (``Candidate.evidence``: its decision was already significant at equal flops, and a fresh
    population confirms it does no harm, the paper's rule). A paper step tried without evidence must be
    better. The composition of the candidates not worse (tested last, when there were two or more) wins when
    it is acceptable; else the acceptable single candidate that is better with the smallest p, else the one
    with the largest p_worse."""
    acceptable = [i for i, (candidate, _, _, _) in enumerate(tested)
                  if i in better or (candidate.evidence and p_worse[i] > alpha)]
    composed = [i for i in acceptable if tested[i][1].endswith(COMPOSED)]
    if composed:
        return composed[0]
    if not acceptable:
        return None
    return min(acceptable, key=lambda i: (i not in better, tested[i][3].p_better, -p_worse[i], i))


def _renamed(space: DesignSpace, name: str) -> DesignSpace:
    """``space`` named ``name``, its stage tables in sorted key order: ``refine.apply`` builds them from a set,
    whose order changes from process to process, and the lineage (and the TOML written) must not."""
    return dataclasses.replace(space, name=name, stage=dict(sorted(space.stage.items())),
                               stages={i: dict(sorted(o.items())) for i, o in sorted(space.stages.items())})


def _test(parent: pd.DataFrame, candidate: pd.DataFrame, adjust: bool, permutations: int, seed: int, label: str):
    return one_sided_tests((parent["error"].to_numpy(), parent["flops"].to_numpy()),
                           (candidate["error"].to_numpy(), candidate["flops"].to_numpy()), adjust,
                           permutations=permutations, seed=population_seed(seed, f"test:{label}"))


def _row(round_: int, candidate: str, label: str, space: DesignSpace, table: pd.DataFrame, test, *, accepted: bool,
         better: bool, why: str, p: float | None = None, p_better: float | None = None) -> dict[str, Any]:
    errors = table["error"].to_numpy()
    return {
        "round": round_, "candidate": candidate, "label": label, "space": space.name, "n": int(len(errors)),
        "mean_error": float(errors.mean()), "median_error": float(np.median(errors)),
        "min_error": float(errors.min()),
        "shift": None if test is None else float(test.shift),
        "ks": None if test is None else float(test.ks),
        "p": None if test is None else float(test.p_worse if p is None else p),
        "p_better": None if test is None else float(test.p_better if p_better is None else p_better),
        "d_better": None if test is None else float(test.d_better),
        "d_worse": None if test is None else float(test.d_worse),
        "dropped": None if test is None else int(test.dropped),
        "accepted": accepted, "better": better, "why": why, "space_toml": space.to_toml(),
    }
