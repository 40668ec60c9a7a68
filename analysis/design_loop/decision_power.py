"""The power of each paired decision of a design run, for effects stated in advance (never the effect observed).

    PYTHONPATH=. OMP_NUM_THREADS=1 python analysis/design_loop/decision_power.py analysis/design_loop/fashion_mnist_paired

For every candidate judged by pairs in the run's lineage.json: the probability that its sequential rule, with
the run's own looks (10, 20, 40, 60 pairs, capped by the models that project) and boundaries (the round's level
solved from the boundary the lineage records at a candidate's third or later look), calls it better when the mean paired difference is
``--effects`` points in its favour, the pairs' spread being what its own pairs showed (the standard deviation of
a difference, from the lineage's 95% interval of the mean and its number of pairs). Differences are simulated as
normal, independent across pairs (``--replicates`` runs each). It says how small an effect each decision could
have seen; a candidate called "not better" with low power at 1 point is no evidence against a 1-point effect.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import optimize, stats

from regnet_space.design.paired import SequentialRule

MAX_PAIRS = 60  # the run's max_pairs (experiments/design_fashion_mnist.toml)


def level_of(limit: int, looks: int, boundary: float) -> float:
    """The one-sided level whose boundaries put ``boundary`` at look ``looks`` (1-based) of a rule of ``limit``."""
    return optimize.brentq(lambda a: SequentialRule(limit, alpha=a).bounds[looks - 1] - boundary, 1e-6, 0.2,
                           xtol=1e-10)


def spread(row: dict) -> float:
    """The standard deviation of one paired difference, from the mean's 95% interval (df: pairs - 2, the
    regression on the log flops ratio)."""
    n = row["pairs"]
    se = (row["effect_high"] - row["effect_low"]) / (2 * stats.t.ppf(0.975, max(n - 2, 1)))
    return se * np.sqrt(n)


def power(rule: SequentialRule, effect: float, sd: float, replicates: int, rng: np.random.Generator) -> float:
    """Share of simulated runs the rule calls better when each difference is N(-effect, sd^2)."""
    better = 0
    for _ in range(replicates):
        d = rng.normal(-effect, sd, rule.looks[-1])
        for k, look in enumerate(rule.looks):
            decision, _ = rule.decide(k, d[:look])
            if decision:
                better += decision == "better"
                break
    return better / replicates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a design run's output directory (with lineage.json)")
    parser.add_argument("--effects", type=float, nargs="+", default=[0.5, 1.0], help="points (default 0.5 1)")
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lineage = json.loads((Path(args.run) / "lineage.json").read_text())["lineage"]
    rng = np.random.default_rng(args.seed)
    print("| round | candidate | pairs (max) | level | sd of a difference | " +
          " | ".join(f"power at {e:g} point{'s' if e != 1 else ''}" for e in args.effects) + " |")
    print("|---|---|---|---|---|" + "---|" * len(args.effects))
    paired = [r for r in lineage if r["evaluation"] == "paired"]
    # One level per round (alpha / rounds / candidates); the early looks' boundaries are capped, so it is solved
    # from the rows that reached a later look.
    levels = {}
    for row in paired:
        if row["looks"] >= 3:
            levels.setdefault(row["round"], level_of(min(MAX_PAIRS, row["projectable"]), row["looks"], row["boundary"]))
    for row in paired:
        limit = min(MAX_PAIRS, row["projectable"])
        level = levels[row["round"]]
        rule, sd = SequentialRule(limit, alpha=level), spread(row)
        powers = [power(rule, e, sd, args.replicates, rng) for e in args.effects]
        print(f"| {row['round']} | {row['candidate']} | {row['pairs']} ({limit}) | {level:.4f} | {sd:.2f} | "
              + " | ".join(f"{p:.2f}" for p in powers) + " |", flush=True)


if __name__ == "__main__":
    main()
