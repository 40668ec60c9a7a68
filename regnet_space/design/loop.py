"""The RegNet paper's narrowing loop, automated: propose refinements from the data, verify each on a fresh
population, keep what the EDF supports.

Round r starts from the current space and its population (round 0: the start space). From that population
``candidates`` proposes refinements; each candidate space gets a fresh population under the same complexity
window, is evaluated, and is compared with the parent population by two one-sided stratified permutation
tests on flops-normalised EDFs (``compare.py``), Holm-adjusted across the round's candidates:
- *accepted* unless its EDF is significantly worse than the parent's (adjusted p_worse <= alpha);
- *better* when its EDF is significantly better: adjusted p_better <= alpha / rounds. "Better" is a claim the
  whole run makes, so its level is split over the rounds (Bonferroni across rounds, Holm within): on data with
  no structure the chance that a run calls anything better stays <= alpha however many rounds it runs.
Accepted changes compose (``candidates.compose``); when more than one is accepted, the composed space gets its
own population, which becomes the next parent unless it is itself significantly worse than the round's parent
(then the accepted candidate with the lowest mean error does). The loop stops when a round proposes or accepts
nothing, after ``rounds`` rounds, or when the next population would exceed ``budget`` models.

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

from ..analysis.edf import Binning, holm
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
                 seed: int, alpha: float = 0.05, budget: int | None = None, bins: int | None = None,
                 permutations: int = 2000, propose: Callable[..., list[Candidate]] = candidates,
                 log: Callable[[str], None] | None = None) -> DesignResult:
    """Narrow ``space`` for up to ``rounds`` rounds; ``evaluate`` returns a population's errors in percent.

    Each lineage row: ``round``, ``candidate``, ``label``, ``space`` (its name), ``n``, ``mean_error``,
    ``median_error``, ``ks`` (two-sided KS distance to the parent), ``p`` (Holm-adjusted p that it is worse),
    ``p_better`` (Holm-adjusted p that it is better; better when <= alpha / rounds), ``d_better``, ``d_worse``, ``accepted``, ``better``,
    ``why`` and ``space_toml``. ``bins``: flops bins of the normalised EDFs (default population // 8, at
    most 10; plain EDFs when there is no finite flops window).
    """
    if rounds < 0 or population < MIN_POPULATION:
        raise UserError(f"design: need rounds >= 0 and population >= {MIN_POPULATION} (what refine needs), "
                        f"got {rounds} and {population}")
    if not 0 < alpha < 1:
        raise UserError(f"design: alpha must be in (0, 1), got {alpha}")
    windows = dict(windows or {})
    binning = binning_for(windows, population, bins)
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
            stop = f"round {round_}: no refinement is supported by the data"
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
            tested.append((candidate, label, table, _test(parent_table, table, binning, permutations, seed, label)))
        p_worse = holm([t[3].p_worse for t in tested])
        p_better = holm([t[3].p_better for t in tested])
        accepted = []
        for (candidate, label, table, test), worse, better in zip(tested, p_worse, p_better):
            ok = bool(worse > alpha)
            lineage.append(_row(round_, candidate.name, label, candidate.space, table, test, accepted=ok,
                                better=bool(ok and better <= better_level), why=candidate.why, p=worse,
                                p_better=better))
            say(f"round {round_}: {candidate.name}: mean error {table['error'].mean():.2f}% vs "
                f"{parent_table['error'].mean():.2f}%, p_worse={worse:.3g}, p_better={better:.3g} -> "
                f"{'accepted' if ok else 'rejected'}")
            if ok:
                accepted.append((candidate, label, table))
        if not accepted:
            stop = f"round {round_}: no refinement was accepted"
            break
        if len(accepted) == 1:
            candidate, parent_label, parent_table = accepted[0]
            parent = candidate.space
            continue
        composed = _renamed(compose(parent, [c for c, _, _ in accepted]), f"{space.name}_r{round_}-{COMPOSED}")
        names = " + ".join(c.name for c, _, _ in accepted)
        if not fits():
            stop = f"round {round_}: the budget ({budget} models) is spent before the composed space"
            best = min(accepted, key=lambda a: a[2]["error"].mean())
            parent, parent_label, parent_table = best[0].space, best[1], best[2]
            break
        label = f"r{round_}-{COMPOSED}"
        table = run(label, composed)
        test = _test(parent_table, table, binning, permutations, seed, label)
        ok = bool(test.p_worse > alpha)
        lineage.append(_row(round_, f"{COMPOSED}: {names}", label, composed, table, test, accepted=ok,
                            better=bool(ok and test.p_better <= better_level),
                            why=f"the accepted changes together ({names}); one test, not adjusted"))
        if ok:
            parent, parent_label, parent_table = composed, label, table
        else:
            best = min(accepted, key=lambda a: a[2]["error"].mean())
            parent, parent_label, parent_table = best[0].space, best[1], best[2]
    say(f"stop: {stop}; final space {parent.name} (population {parent_label})")
    return DesignResult(parent, lineage, tables, path + ([parent_label] if path[-1] != parent_label else []), stop)


def _renamed(space: DesignSpace, name: str) -> DesignSpace:
    """``space`` named ``name``, its stage tables in sorted key order: ``refine.apply`` builds them from a set,
    whose order changes from process to process, and the lineage (and the TOML written) must not."""
    return dataclasses.replace(space, name=name, stage=dict(sorted(space.stage.items())),
                               stages={i: dict(sorted(o.items())) for i, o in sorted(space.stages.items())})


def binning_for(windows: dict[str, tuple[float, float]], population: int, bins: int | None = None) -> Binning | None:
    """The flops bins the loop normalises EDFs with: ``bins`` (default population // 8, 1..10) equal-width bins
    over the flops window; None (plain EDFs) without a finite window."""
    lo, hi = windows.get("flops", (0.0, float("inf")))
    if not np.isfinite(hi) or not hi > lo:
        return None
    return Binning(float(lo), float(hi), bins if bins is not None else min(10, max(1, population // 8)))


def _test(parent: pd.DataFrame, candidate: pd.DataFrame, binning: Binning | None, permutations: int, seed: int,
          label: str):
    return one_sided_tests((parent["error"].to_numpy(), parent["flops"].to_numpy()),
                           (candidate["error"].to_numpy(), candidate["flops"].to_numpy()), binning,
                           permutations=permutations, seed=population_seed(seed, f"test:{label}"))


def _row(round_: int, candidate: str, label: str, space: DesignSpace, table: pd.DataFrame, test, *, accepted: bool,
         better: bool, why: str, p: float | None = None, p_better: float | None = None) -> dict[str, Any]:
    errors = table["error"].to_numpy()
    return {
        "round": round_, "candidate": candidate, "label": label, "space": space.name, "n": int(len(errors)),
        "mean_error": float(errors.mean()), "median_error": float(np.median(errors)),
        "min_error": float(errors.min()),
        "ks": None if test is None else float(test.ks),
        "p": None if test is None else float(test.p_worse if p is None else p),
        "p_better": None if test is None else float(test.p_better if p_better is None else p_better),
        "d_better": None if test is None else float(test.d_better),
        "d_worse": None if test is None else float(test.d_worse),
        "dropped": None if test is None else int(test.dropped),
        "accepted": accepted, "better": better, "why": why, "space_toml": space.to_toml(),
    }
