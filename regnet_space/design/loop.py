"""The RegNet paper's narrowing loop, automated: propose refinements, verify each, keep only what holds at equal
complexity, and verify the final space against the start with fresh populations.

Round r starts from the current space and its population (round 0: the start space). ``candidates`` proposes
refinements: the decisions ``refine.propose`` takes from the parent population at equal flops, the paper's
steps (share b, share g, non-decreasing widths, depths) that no decision covers, and the RegNet restriction
when low e_fit marks low error at equal flops. Each candidate is evaluated one of two ways (``evaluation``):
- ``"paired"`` (the default: the calibration in analysis/design_loop/ needs a quarter of the models for the
  same power): each parent model's projection into the candidate space at its own flops (``projection.py``),
  trained with the parent model's seed, look by look (10 pairs, then batches of ``paired.BATCH``) with
  group-sequential stopping (``paired.SequentialRule``): *better* when the boundary is crossed at alpha /
  rounds / candidates, stopped early for futility when the effect points the harmful way; *worse* when the
  pairs' one-sided sign-flip p (Holm over the round) is <= alpha. The candidates advance a look at a time, in
  turn, and the composition (below) joins after the first look and goes first, so once it is better the
  others stop (``paired_round``). The next round's parent is the parent population projected into the
  accepted space (``projected_parent``): the pairs already trained are reused, only the rest of the
  projections are trained, and every model keeps its source model's training seed, so the next round's pairs
  stay paired. A candidate into which fewer of the parent's models project than its first look needs is not
  evaluated (a handful of pairs can never show it better, and the sequential rule's normal boundaries were
  calibrated from 10 pairs on), and a composition drops such members (``paired_composition``).
- ``"population"``: a fresh population of the candidate space under the same window, compared with the
  parent population by two one-sided permutation tests on complexity-adjusted scores (``compare.py``), Holm
  over the round: better when p_better <= alpha / rounds, not worse unless p_worse <= alpha.
"Better" is a claim the whole run makes, so its level is split over the rounds (Bonferroni across rounds, Holm or
Bonferroni within). When two or more candidates are not worse (paired: after their first look) their composition
(``candidates.compose``) is evaluated too: constraints that help only together (an interaction) are found this way.
A candidate the parent's data proposed (its decision was significant at equal flops) is accepted when not worse, the
paper's rule; a paper step tried without such evidence only when better, so on data without structure nothing is
imposed. The next parent is the composition if acceptable, else the best acceptable single candidate
(``_next_parent``); a round with nothing acceptable ends the loop, as do ``rounds`` rounds and a ``budget`` the next
evaluation would exceed. Whatever the path, the end is checked with the method's own evidence: fresh populations of
the final and the start space (and of any ``references``, e.g. RegNetX), compared at equal flops (``verification``).

Determinism: the population of label L (``start``, ``r1-refine``, ``verify-final``, ...) is drawn with seed
``population_seed(seed, L)`` and its model k trains with seed ``population_seed(seed, L) + k`` (a projection, and a
paired loop's ``r1-parent``: its source model's); the refinement decisions are seeded from (seed, round), the tests
from (seed, L). Given the same errors the loop takes the same path, so an evaluator that stores its results (the
study-backed one) makes a killed loop resumable: a rerun re-derives every population and reads back what was
trained.
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
from .paired import FIRST_LOOK, SequentialRule, paired_test
from .projection import project

START = "start"
COMPOSED = "composed"
PARENT = "parent"
VERIFY = "verify"
MIN_POPULATION = 4 * MIN_MODELS  # what refine.propose needs
EVALUATIONS = ("paired", "population")
MAX_PAIRS = 60  # the most pairs the calibration needed for 80% power (a g range; analysis/design_loop/)


def population_seed(seed: int, label: str) -> int:
    """The sampling seed of population ``label``; the same rule as a study's per-space seed, so a study with
    the design's seed and this label draws exactly this population (and trains model k with this seed + k)."""
    return zlib.crc32(f"{seed}:{label}".encode())


class Population(list):
    """The models of one population (a list of SampledModel, in order), labelled so an evaluator backed by
    storage can name and resume it: ``label``, the ``space`` drawn from, the sampling ``seed``, ``windows`` and
    each model's training seed (``train_seeds``). ``listed``: the models are given (a paired batch's
    projections, each with its source model's training seed), not drawn with ``seed``."""

    def __init__(self, models: Sequence[SampledModel], *, label: str, space: DesignSpace, seed: int,
                 windows: dict[str, tuple[float, float]], train_seeds: Sequence[int] | None = None,
                 listed: bool = False) -> None:
        super().__init__(models)
        self.label, self.space, self.seed, self.windows, self.listed = label, space, seed, windows, listed
        self.train_seeds = list(train_seeds) if train_seeds is not None else [seed + k for k in range(len(models))]


Evaluate = Callable[[Population], Sequence[float]]


@dataclass(frozen=True)
class DesignResult:
    """``final_space``; ``lineage``, one plain dict per evaluated candidate or population (see ``design_space``);
    ``populations``, label -> that population's results table (a paired candidate's: its projections, column
    ``pair_of`` = the parent model each came from; a projected parent's: every model, column ``reused`` True for
    those measured in an earlier population); ``path``, the label of each round's parent population,
    start first (the last is the final space's); ``stop`` says why the loop ended; ``verification``, one dict
    per comparison of the final space's fresh population (see ``design_space``)."""

    final_space: DesignSpace
    lineage: list[dict[str, Any]]
    populations: dict[str, pd.DataFrame] = field(repr=False)
    path: list[str]
    stop: str
    verification: list[dict[str, Any]] = field(default_factory=list)

    def results(self) -> pd.DataFrame:
        """Every model trained, once (column ``space`` = the population it was trained in)."""
        table = pd.concat(list(self.populations.values()), ignore_index=True)
        if "reused" not in table:
            return table
        return table[~table["reused"].eq(True)].drop(columns="reused").reset_index(drop=True)  # NaN: not reused


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
                 seed: int, alpha: float = 0.05, budget: int | None = None, evaluation: str = "population",
                 max_pairs: int | None = None, verify: int | None = 0,
                 references: dict[str, DesignSpace] | None = None, permutations: int = 2000,
                 propose: Callable[..., list[Candidate]] = candidates,
                 log: Callable[[str], None] | None = None) -> DesignResult:
    """Narrow ``space`` for up to ``rounds`` rounds; ``evaluate`` returns a population's errors in percent.

    ``evaluation``: "paired" or "population" (module docstring); ``max_pairs``: a paired candidate's most pairs
    (default ``MAX_PAIRS``; never more than the parent population). ``verify``: the size of the fresh populations of the final and the start space
    (and of each of ``references``, name -> space) the run ends with (None: ``population``; 0: no verification).

    Each lineage row: ``round``, ``candidate``, ``label``, ``space`` (its name), ``evaluation`` (a candidate's:
    "paired" or "population"; a paired loop's next parent: "projected", with ``reused``, the models measured
    before, beside ``n``, the models trained for it), ``n``,
    ``mean_error``, ``median_error``, ``min_error``, ``p`` (Holm-adjusted p that it is worse), ``p_better``
    (Holm-adjusted p that it is better; for a paired candidate the fixed-n p of the pairs used, descriptive:
    its verdict is the sequential rule's), ``accepted``, ``better``, ``why``, ``space_toml``; a population
    comparison adds ``shift`` (mean adjusted rank minus the parent's, ``compare.py``), ``ks``, ``d_better``,
    ``d_worse``, ``dropped``; a paired one ``effect`` (mean paired difference at equal flops, points; < 0: the
    constraint helps) with ``effect_low``/``effect_high`` (95%), ``pairs``, ``unchanged`` (pairs whose model
    already lies in the candidate space: difference 0, not trained; ``n`` counts the projections trained),
    ``projectable``, ``looks``, ``z``, ``boundary`` and ``decision`` (better / futile / not better); a paired
    candidate that trained nothing has no mean, median or min error (None). ``p`` and ``p_better`` are at equal flops when
    the window is finite. Each verification row: ``against`` (the start, or a reference), ``n``, both mean
    errors, ``shift``, ``p_better``, ``p_worse`` (one-sided, the final space's population against the other at
    equal flops, each test at ``alpha``) and ``verdict``.
    """
    if rounds < 0 or population < MIN_POPULATION:
        raise UserError(f"design: need rounds >= 0 and population >= {MIN_POPULATION} (what refine needs), "
                        f"got {rounds} and {population}")
    if not 0 < alpha < 1:
        raise UserError(f"design: alpha must be in (0, 1), got {alpha}")
    if evaluation not in EVALUATIONS:
        raise UserError(f"design: evaluation must be one of {', '.join(EVALUATIONS)}, got {evaluation!r}")
    loop = _Loop(evaluate, population=population, windows=dict(windows or {}), seed=seed, alpha=alpha,
                 budget=budget, rounds=rounds, permutations=permutations, log=log or (lambda message: None),
                 shape=(resolution, in_channels, num_classes), max_pairs=max_pairs or MAX_PAIRS)
    return loop.run(space, evaluation=evaluation, propose=propose, verify=population if verify is None else verify,
                    references=references or {})


class _Loop:
    """The state of one run (models used, populations, lineage) and its steps; ``design_space`` is the entry."""

    def __init__(self, evaluate: Evaluate, *, population: int, windows: dict, seed: int, alpha: float,
                 budget: int | None, rounds: int, permutations: int, log: Callable[[str], None],
                 shape: tuple[int, int, int], max_pairs: int) -> None:
        self.evaluate, self.population, self.windows, self.seed = evaluate, population, windows, seed
        self.alpha, self.budget, self.rounds, self.permutations, self.say = alpha, budget, rounds, permutations, log
        self.shape, self.max_pairs = shape, max_pairs
        lo, hi = windows.get("flops", (0.0, float("inf")))
        self.adjust = bool(np.isfinite(hi) and hi > lo)  # hold flops equal when the window has a finite span
        self.better_level = alpha / max(1, rounds)
        self.used = 0
        self.tables: dict[str, pd.DataFrame] = {}
        self.models: dict[str, list[SampledModel]] = {}
        self.seeds: dict[str, list[int]] = {}  # label -> each model's training seed
        self.lineage: list[dict[str, Any]] = []

    def fits(self, models: int) -> bool:
        return self.budget is None or self.used + models <= self.budget

    def train(self, batch: Population) -> list[float]:
        errors = [float(e) for e in self.evaluate(batch)]
        if len(errors) != len(batch) or not all(np.isfinite(errors)):
            raise UserError(f"population {batch.label}: the evaluator returned {len(errors)} errors for "
                            f"{len(batch)} models, or a non-finite one")
        self.used += len(batch)
        return errors

    def train_listed(self, label: str, space: DesignSpace, models: list[SampledModel],
                     train_seeds: list[int]) -> list[float]:
        """Train given models (projections) as population ``label``, each with its own training seed."""
        return self.train(Population(models, label=label, space=space, seed=population_seed(self.seed, label),
                                     windows=self.windows, train_seeds=train_seeds, listed=True))

    def sample(self, label: str, target: DesignSpace, n: int | None = None) -> pd.DataFrame:
        """A fresh population of ``target`` (``population`` models unless ``n``), trained; its table."""
        resolution, in_channels, num_classes = self.shape
        seed = population_seed(self.seed, label)
        models = sample_models(target, n or self.population, seed=seed, windows=self.windows, resolution=resolution,
                               in_channels=in_channels, num_classes=num_classes)
        errors = self.train(Population(models, label=label, space=target, seed=seed, windows=self.windows))
        self.models[label] = models
        self.seeds[label] = [seed + k for k in range(len(models))]
        self.tables[label] = population_table(models, errors, label)
        return self.tables[label]

    def run(self, space: DesignSpace, *, evaluation: str, propose: Callable[..., list[Candidate]], verify: int,
            references: dict[str, DesignSpace]) -> DesignResult:
        if not self.fits(self.population):
            raise UserError(f"design: budget {self.budget} is below one population ({self.population})")
        parent, parent_label = space, START
        parent_table = self.sample(START, space)
        self.lineage.append(_row(0, START, START, space, parent_table, None, accepted=True, better=False,
                                 why="the start space"))
        self.say(f"round 0: {space.name}: mean error {parent_table['error'].mean():.2f}%")
        stop, path = f"ran {self.rounds} rounds", [START]
        for round_ in range(1, self.rounds + 1):
            proposed = propose(parent, parent_table, alpha=self.alpha, seed=population_seed(self.seed, f"r{round_}"),
                               permutations=self.permutations)
            if not proposed:
                stop = f"round {round_}: no refinement is proposed"
                break
            paired = evaluation == "paired"
            if not self.fits(min(self.max_pairs, self.population) if paired else self.population):
                stop = f"round {round_}: the budget ({self.budget} models) is spent"
                break
            step = self.paired_round if paired else self.population_round
            chosen = step(round_, space.name, parent, parent_label, proposed)
            if chosen is None:
                stop = f"round {round_}: no refinement is better at equal flops"
                break
            parent, parent_label = chosen
            parent_table = self.tables[parent_label]
            path.append(parent_label)
        self.say(f"stop: {stop}; final space {parent.name} (population {parent_label})")
        verification = self.verification(space, parent, verify, references) if verify else []
        return DesignResult(parent, self.lineage, self.tables, path, stop, verification)

    # -- population evaluation --

    def population_round(self, round_: int, name: str, parent: DesignSpace, parent_label: str,
                         proposed: list[Candidate]):
        """The next parent (space, label) after a round of fresh candidate populations, or None."""
        parent_table = self.tables[parent_label]
        tested: list[tuple[Candidate, str, pd.DataFrame, Any]] = []
        for candidate in proposed:
            if not self.fits(self.population):
                break
            label = f"r{round_}-{slug(candidate.name)}"
            candidate = dataclasses.replace(candidate, space=_renamed(candidate.space, f"{name}_{label}"))
            table = self.sample(label, candidate.space)
            tested.append((candidate, label, table, self.test(parent_table, table, label)))
        not_worse = [t for t, worse in zip(tested, holm([t[3].p_worse for t in tested])) if worse > self.alpha]
        if len(not_worse) >= 2 and self.fits(self.population):
            composed = self.composition(round_, name, parent, [c for c, _, _, _ in not_worse])
            label = f"r{round_}-{COMPOSED}"
            table = self.sample(label, composed.space)
            tested.append((composed, label, table, self.test(parent_table, table, label)))
        p_worse = holm([t[3].p_worse for t in tested])
        p_better = holm([t[3].p_better for t in tested])
        better = [i for i, p in enumerate(p_better) if p <= self.better_level and p_worse[i] > self.alpha]
        chosen = _next_parent([(c, label, t.p_better) for c, label, _, t in tested], p_worse, better, self.alpha)
        for i, ((candidate, label, table, test), worse, p_b) in enumerate(zip(tested, p_worse, p_better)):
            self.lineage.append(_row(round_, candidate.name, label, candidate.space, table, test,
                                     accepted=i == chosen, better=i in better, why=candidate.why, p=worse,
                                     p_better=p_b))
            self.say(f"round {round_}: {candidate.name}: mean error {table['error'].mean():.2f}% vs "
                     f"{parent_table['error'].mean():.2f}%, at equal flops p_worse={worse:.3g}, p_better={p_b:.3g} "
                     f"-> {'accepted' if i == chosen else 'better' if i in better else 'not better'}")
        if chosen is None:
            return None
        candidate, label, _, _ = tested[chosen]
        return candidate.space, label

    def test(self, parent: pd.DataFrame, candidate: pd.DataFrame, label: str):
        return one_sided_tests((parent["error"].to_numpy(), parent["flops"].to_numpy()),
                               (candidate["error"].to_numpy(), candidate["flops"].to_numpy()), self.adjust,
                               permutations=self.permutations, seed=population_seed(self.seed, f"test:{label}"))

    def composition(self, round_: int, name: str, parent: DesignSpace, members: list[Candidate]) -> Candidate:
        names = " + ".join(c.name for c in members)
        space = _renamed(compose(parent, members), f"{name}_r{round_}-{COMPOSED}")
        return Candidate(f"{COMPOSED}: {names}", space, f"the candidates not worse, together ({names})",
                         tuple(d for c in members for d in c.decisions), evidence=all(c.evidence for c in members))

    # -- paired evaluation --

    def paired_round(self, round_: int, name: str, parent: DesignSpace, parent_label: str,
                     proposed: list[Candidate]):
        """Like ``population_round``, each candidate judged by pairs (module docstring); the parent population
        projected into the accepted space is the next parent (unless this was the last round).

        The candidates advance a look at a time, in turn, none a look ahead of another still running: first
        every candidate's first look; then, when two or more are not worse so far (Holm), their composition
        joins and goes first at every later look. Once it is better the round's outcome is fixed
        (``_next_parent`` prefers an acceptable composition) and the candidates still running stop where they
        are ("stopped")."""
        level = self.better_level / (len(proposed) + (1 if len(proposed) >= 2 else 0))  # room for a composition
        runs: list[_PairRun] = []
        for candidate in proposed:
            label = f"r{round_}-{slug(candidate.name)}"
            candidate = dataclasses.replace(candidate, space=_renamed(candidate.space, f"{name}_{label}"))
            run = _PairRun(self, candidate, label, parent_label, level)
            if not run.evaluable:
                self.say(f"round {round_}: {candidate.name}: not evaluated, {run.projectable} of the parent's "
                         f"models can be projected into it at equal flops (its first look needs {FIRST_LOOK})")
                continue
            if not run.step():  # the budget cannot pay for its first batch
                break
            runs.append(run)
        not_worse = [r for r, worse in zip(runs, holm([r.p_worse for r in runs])) if worse > self.alpha]
        composed = self.paired_composition(round_, name, parent, parent_label, level, not_worse)
        if composed is not None and composed.step():
            runs.insert(0, composed)
        else:
            composed = None
        paid = True  # False once the budget stops a run: every run then ends where it is
        while paid and not (composed and composed.decision == "better"):
            going = [r for r in runs if not r.decision]
            if not going:
                break
            behind = min(r.looks for r in going)  # none goes a look ahead; the composition goes first
            for run in (r for r in going if r.looks == behind):
                paid = run.step()
                if not paid or (run is composed and run.decision == "better"):
                    break
        for run in runs:
            run.finish()
        runs.sort(key=lambda r: r.label.endswith(COMPOSED))  # the composition last, as ``_next_parent`` expects
        tested = [(r.candidate, r.label, r.outcome()) for r in runs]
        p_worse = holm([t[2]["p_worse"] for t in tested])
        p_better = holm([t[2]["p_better"] for t in tested])
        better = [i for i, t in enumerate(tested) if t[2]["decision"] == "better" and p_worse[i] > self.alpha]
        chosen = _next_parent([(c, label, o["p_better"]) for c, label, o in tested], p_worse, better, self.alpha)
        parent_mean = self.tables[parent_label]["error"].mean()
        for i, ((candidate, label, outcome), worse, p_b) in enumerate(zip(tested, p_worse, p_better)):
            row = _row(round_, candidate.name, label, candidate.space, self.tables[label], None,
                       accepted=i == chosen, better=i in better, why=candidate.why, p=worse, p_better=p_b,
                       evaluation="paired")
            self.lineage.append({**row, **{k: v for k, v in outcome.items() if k not in ("p_worse", "p_better")}})
            self.say(f"round {round_}: {candidate.name}: {outcome['pairs']} pairs, effect at equal flops "
                     f"{outcome['effect']:+.2f} points [{outcome['effect_low']:+.2f}, {outcome['effect_high']:+.2f}] "
                     f"(parent mean {parent_mean:.2f}%), {outcome['decision']}, p_worse={worse:.3g} -> "
                     f"{'accepted' if i == chosen else 'better' if i in better else 'not accepted'}")
        if chosen is None:
            return None
        candidate, chosen_label, _ = tested[chosen]
        if round_ == self.rounds:
            return candidate.space, chosen_label  # no next round to feed; the verification checks the end
        label = f"r{round_}-{PARENT}"
        made = self.projected_parent(runs[chosen], label)
        if made is None:
            return candidate.space, chosen_label  # the budget cannot pay for it: the loop ends at this space
        table, how = made
        why = ("the parent population projected into the accepted space" if how == "projected" else
               "a fresh population of the accepted space (too few of the parent's models project into it)")
        row = _row(round_, f"{PARENT}: {candidate.name}", label, candidate.space, table, None, accepted=True,
                   better=False, why=f"{why}: the next round's parent (refine needs a sample of the space)",
                   evaluation=how)
        self.lineage.append({**row, "n": int((~table["reused"]).sum()), "reused": int(table["reused"].sum())})
        return candidate.space, label

    def paired_composition(self, round_: int, name: str, parent: DesignSpace, parent_label: str, level: float,
                           members: list[_PairRun]) -> _PairRun | None:
        """The composition of ``members`` (two or more) as a paired run, or None. Every member narrows the
        models that project, so while the composition has too few for its first look the member with the fewest
        projectable models leaves it (one such member, e.g. the RegNet restriction on a small parent population,
        would otherwise leave the composition a handful of pairs that can never show it better)."""
        members = list(members)
        while len(members) >= 2:
            composed = _PairRun(self, self.composition(round_, name, parent, [r.candidate for r in members]),
                                f"r{round_}-{COMPOSED}", parent_label, level)
            if composed.evaluable:
                return composed
            members.remove(min(members, key=lambda r: r.projectable))
        return None

    def projected_parent(self, run: _PairRun, label: str) -> tuple[pd.DataFrame, str] | None:
        """The parent population projected into the space of ``run``'s candidate (the models that have a
        projection at equal flops: the run's), each with its source model's training seed: a projection the
        pairs measured, or a model already in the space, is reused (column ``reused``); the rest are trained
        now, as population ``label``. Its models are a sample of the accepted space (the parent's draws pushed through the
        projection) at the parent's flops, which is what the next round's decisions and pairs need; a fresh
        population would cost the whole population again. When fewer than ``MIN_POPULATION`` models project
        (refine could not propose from them) the next parent is a fresh population instead. (table, "projected"
        or "population"), or None when the budget cannot pay for it."""
        projections, order, seeds = run.projections, run.usable, run.parent_seeds
        if len(order) < MIN_POPULATION:
            if not self.fits(self.population):
                return None
            table = self.sample(label, run.candidate.space)
            table["reused"] = False
            return table, "population"
        known = {i: run.measured[i] if i in run.measured else run.parent_errors[i]
                 for i in order if i in run.measured or _unchanged(projections[i])}
        fresh = [i for i in order if i not in known]
        if not self.fits(len(fresh)):
            return None
        errors = dict(known)
        models = [projections[i].projected for i in order]
        if fresh:
            errors.update(zip(fresh, self.train_listed(label, run.candidate.space,
                                                       [projections[i].projected for i in fresh],
                                                       [seeds[i] for i in fresh])))
        table = population_table(models, [errors[i] for i in order], label)
        table["reused"] = [i in known for i in order]
        self.models[label], self.seeds[label], self.tables[label] = models, [seeds[i] for i in order], table
        return table, "projected"

    # -- verification --

    def verification(self, start: DesignSpace, final: DesignSpace, n: int,
                     references: dict[str, DesignSpace]) -> list[dict[str, Any]]:
        """Fresh populations of ``n`` models of the final space, the start space (unless they are one) and each
        reference, trained after the loop; the final space against each at equal flops (``compare.py``)."""
        others = {} if final is start else {"start": start}
        others.update({f"reference {name}": space for name, space in references.items()})
        if not others:
            return []
        needed = n * (1 + len(others))
        if not self.fits(needed):
            self.say(f"verification: skipped, the budget ({self.budget} models) cannot pay for {needed} more models")
            return []
        final_table = self.sample(f"{VERIFY}-final", final, n)
        tested = []
        for against, space in others.items():
            label = f"{VERIFY}-{slug(against.split(' ', 1)[-1])}"
            table = self.sample(label, space, n)
            tested.append((against, space, label, table, self.test(table, final_table, label)))
        p_better = holm([t[-1].p_better for t in tested])  # the comparisons are one family: the run's last word
        p_worse = holm([t[-1].p_worse for t in tested])
        rows = []
        for (against, space, label, table, test), better, worse in zip(tested, p_better, p_worse):
            verdict = "better" if better <= self.alpha else "worse" if worse <= self.alpha else "not distinguishable"
            rows.append({"against": against, "space": space.name, "label": label, "final_label": f"{VERIFY}-final",
                         "n": n, "mean_final": float(final_table["error"].mean()),
                         "mean_other": float(table["error"].mean()), "shift": float(test.shift),
                         "p_better": float(better), "p_worse": float(worse), "p_better_raw": float(test.p_better),
                         "p_worse_raw": float(test.p_worse), "verdict": verdict})
            self.say(f"verification: final space vs {against}: mean error {rows[-1]['mean_final']:.2f}% vs "
                     f"{rows[-1]['mean_other']:.2f}%, at equal flops p_better={better:.3g}, p_worse={worse:.3g} "
                     f"(Holm over {len(tested)}): {verdict}")
        return rows


class _PairRun:
    """One candidate's sequential paired evaluation inside a round, advanced a look at a time (``step``): each
    usable parent model, in order, with its projection into the candidate's space at its own flops, trained in
    the look's batch with the source model's training seed (a model already in the space is its own projection:
    difference 0, not trained); after each look the rule (``paired.SequentialRule``) and the fixed-n test of
    the pairs so far (``test``: its p_worse decides the composition's members after the first look)."""

    def __init__(self, loop: _Loop, candidate: Candidate, label: str, parent_label: str, level: float) -> None:
        self.loop, self.candidate, self.label = loop, candidate, label
        self.parent_errors = loop.tables[parent_label]["error"].to_numpy(float)
        self.parent_seeds = loop.seeds[parent_label]
        self.projections = [project(model, candidate) for model in loop.models[parent_label]]
        self.usable = [k for k, p in enumerate(self.projections) if p.projected is not None]
        self.projectable = len(self.usable)
        self.limit = min(loop.max_pairs, self.projectable)
        self.rule = SequentialRule(self.limit, alpha=level) if self.limit >= FIRST_LOOK else None
        self.measured: dict[int, float] = {}  # parent index -> its projection's error, as trained
        self.d: list[float] = []
        self.x: list[float] = []
        self.tables: list[pd.DataFrame] = []
        self.looks, self.decision, self.z, self.test = 0, "", 0.0, None

    @property
    def evaluable(self) -> bool:
        """Enough parent models project for the first look (fewer pairs could never show it better, and the
        rule's boundaries were calibrated from ``FIRST_LOOK`` pairs on)."""
        return self.rule is not None

    @property
    def p_worse(self) -> float:
        return self.test.p_worse

    def step(self) -> bool:
        """Train the pairs of the next look and apply the rule; False, training nothing, when the budget cannot
        pay for them (a run that has pairs then ends with them, "not better")."""
        k = self.looks
        chosen = self.usable[len(self.d):self.rule.looks[k]]
        fresh = [i for i in chosen if not _unchanged(self.projections[i])]
        if not self.loop.fits(len(fresh)):
            self.decision = "not better" if k else ""
            return False
        errors = {i: self.parent_errors[i] for i in chosen if i not in fresh}
        if fresh:
            batch_label = f"{self.label}-pairs{k + 1}"
            models = [self.projections[i].projected for i in fresh]
            trained = self.loop.train_listed(batch_label, self.candidate.space, models,
                                             [self.parent_seeds[i] for i in fresh])
            errors.update(zip(fresh, trained))
            self.measured.update(zip(fresh, trained))
            table = population_table(models, trained, self.label)
            table["pair_of"] = fresh
            self.tables.append(table)
        self.d.extend(errors[i] - self.parent_errors[i] for i in chosen)
        self.x.extend(float(np.log(self.projections[i].flops_ratio)) for i in chosen)
        self.looks += 1
        d, x = np.asarray(self.d), np.asarray(self.x)
        self.decision, self.z = self.rule.decide(k, d, x)
        self.test = paired_test(d, x, permutations=self.loop.permutations,
                                seed=population_seed(self.loop.seed, f"test:{self.label}"))
        return True

    def finish(self) -> None:
        """End the run where it is ("stopped" when the rule had not decided) and store its table."""
        self.decision = self.decision or "stopped"
        table = (pd.concat(self.tables, ignore_index=True) if self.tables
                 else population_table([], [], self.label))
        table["model_index"] = range(len(table))
        self.loop.tables[self.label] = table

    def outcome(self) -> dict[str, Any]:
        test = self.test
        return {"p_worse": test.p_worse, "p_better": test.p_better, "pairs": len(self.d),
                "unchanged": len(self.d) - len(self.loop.tables[self.label]), "projectable": self.projectable,
                "decision": self.decision, "effect": test.effect, "effect_low": test.low, "effect_high": test.high,
                "looks": self.looks, "z": self.z, "boundary": self.rule.bounds[self.looks - 1]}


def _unchanged(projection) -> bool:
    """A model that already lies in the candidate space is its own projection: imposing the constraint changes
    nothing, so its pair's difference is 0 by definition, and it is not trained again (retrained with the
    same seed on the same machine it gives the same error: 155 of 155 such pairs in the Fashion-MNIST run)."""
    return projection.projected.spec.to_json() == projection.model.spec.to_json()


def _next_parent(tested: list, p_worse: Sequence[float], better: list[int], alpha: float) -> int | None:
    """Which tested population becomes the next parent (an index into ``tested``), or None.

    A candidate is acceptable when it is better, or when it is not worse and the parent population's data
    proposed it (``Candidate.evidence``: its decision was already significant at equal flops, and a fresh
    population confirms it does no harm, the paper's rule). A paper step tried without evidence must be
    better. The composition of the candidates not worse (tested last, when there were two or more) wins when
    it is acceptable; else the acceptable single candidate that is better with the smallest p, else the one
    with the largest p_worse."""
    acceptable = [i for i, (candidate, _, _) in enumerate(tested)
                  if i in better or (candidate.evidence and p_worse[i] > alpha)]
    composed = [i for i in acceptable if tested[i][1].endswith(COMPOSED)]
    if composed:
        return composed[0]
    if not acceptable:
        return None
    return min(acceptable, key=lambda i: (i not in better, tested[i][2], -p_worse[i], i))


def _renamed(space: DesignSpace, name: str) -> DesignSpace:
    """``space`` named ``name``, its stage tables in sorted key order: ``refine.apply`` builds them from a set,
    whose order changes from process to process, and the lineage (and the TOML written) must not."""
    return dataclasses.replace(space, name=name, stage=dict(sorted(space.stage.items())),
                               stages={i: dict(sorted(o.items())) for i, o in sorted(space.stages.items())})


def _row(round_: int, candidate: str, label: str, space: DesignSpace, table: pd.DataFrame, test, *, accepted: bool,
         better: bool, why: str, p: float | None = None, p_better: float | None = None,
         evaluation: str = "population") -> dict[str, Any]:
    """A lineage row; ``test`` is a population comparison's (``compare.OneSided``) or None, ``p`` and
    ``p_better`` the Holm-adjusted p-values when given; ``evaluation`` how the row's models were chosen."""
    errors = table["error"].to_numpy()
    measured = lambda value: None if test is None else float(value)  # noqa: E731
    trained = len(errors) > 0  # a paired candidate whose every pair was an unchanged model trained nothing
    return {
        "round": round_, "candidate": candidate, "label": label, "space": space.name,
        "evaluation": evaluation, "n": int(len(errors)),
        "mean_error": float(errors.mean()) if trained else None,
        "median_error": float(np.median(errors)) if trained else None,
        "min_error": float(errors.min()) if trained else None,
        "shift": measured(test and test.shift), "ks": measured(test and test.ks),
        "p": float(p) if p is not None else measured(test and test.p_worse),
        "p_better": float(p_better) if p_better is not None else measured(test and test.p_better),
        "d_better": measured(test and test.d_better), "d_worse": measured(test and test.d_worse),
        "dropped": None if test is None else int(test.dropped),
        "accepted": accepted, "better": better, "why": why, "space_toml": space.to_toml(),
    }
