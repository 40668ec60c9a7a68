"""Calibration of the paired (controlled) evaluation of a constraint, against the unpaired population comparison.

    PYTHONPATH=. OMP_NUM_THREADS=1 nice python analysis/design_loop/paired_calibration.py \\
        --out analysis/design_loop/paired_calibration.json

Regime: the oracles' (224x224x3 input, ImageNet form, 200-800 MFLOPs). Four constraints, each with its parent
space and candidate (regnet_space/design/simulate.py builds the pools: parent models with their projections at
equal flops, design/projection.py, and independent populations of both spaces):
- shared b = 1 (AnyNetX_A -> every stage b = 1), monotone widths (AnyNetX_A -> the paper's D step),
  g range (AnyNetX_A -> g in [4, 16]), the RegNet restriction (AnyNetX_E -> its quantized-linear subspace).
Errors come from ``oracles.paired_oracle``: 30 - 3 u + 1.5 u^2 (u = log2(flops / 400M): a non-linear flops
effect) + penalty x violation + noise of unit variance, of which the share ``--shared`` is common to a pair
(the same seed and data order) and the rest the model's own.

1. Level, on null oracles (penalty 0): the flops effect alone, with heteroscedastic noise, with t3 tails, with
   errors rounded to 0.1; for each, ``--null-reps`` comparisons spread over the four constraints' pools: the
   fixed-n paired test (``--null-pairs`` pairs, sign-flip p_better <= alpha) and the sequential rule (batches
   of 20 up to 100 pairs, "better" at the O'Brien-Fleming-type or the Pocock-type boundary). Exact 95%
   intervals.
2. Models for 80% power on planted oracles (penalty ``--penalty`` on the constraint's violation): the paired +
   sequential rule (each spending) at increasing maximum pairs (the first whose power >= 0.8; models = 2 x the mean pairs it
   used: each pair trains a model and its projection) vs the unpaired fixed-n comparison (``compare.py``, p_better
   <= alpha; the first n per group whose power >= 0.8; models = 2n). In the loop the parent population is
   trained anyway, so per candidate the new models are the projections (mean pairs) vs n: the same ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from regnet_space.design import oracles
from regnet_space.design.paired import SPENDING
from regnet_space.design.simulate import (binomial_interval, constraints, make_pool, paired_rejections,
                                          sequential_runs, unpaired_rejections)
from regnet_space.spaces import load_space

FORM = dict(resolution=224, in_channels=3, num_classes=1000)
WINDOW = {"flops": (200e6, 800e6)}
NULLS = {"flops non-linear": {}, "heteroscedastic": {"heteroscedastic": True}, "t3 tails": {"tails": "t3"},
         "ties 0.1": {"ties": 0.1}}
MAX_PAIRS = (20, 40, 60, 80, 100, 140, 200)
UNPAIRED_N = (20, 30, 40, 60, 80, 100, 130, 160, 200, 250, 300, 400)


def _paired_power(pool, make, spend: str, replicates: int, seed: int) -> dict:
    """The first maximum of pairs whose sequential power >= 0.8, and the pairs it used on average."""
    row = {}
    for max_pairs in (m for m in MAX_PAIRS if m <= len(pool.models)):
        runs = sequential_runs(pool, make, max_pairs=max_pairs, replicates=replicates, spend=spend, seed=seed)
        mean_pairs = float(np.mean([r.pairs for r in runs]))
        row = {"max_pairs": max_pairs, "power": float(np.mean([r.decision == "better" for r in runs])),
               "mean_pairs": mean_pairs, "models": 2 * mean_pairs}
        if row["power"] >= 0.8:
            break
    return row


def rate(hits: int, n: int) -> dict:
    low, high = binomial_interval(hits, n)
    return {"rejections": int(hits), "n": int(n), "rate": hits / n, "ci95": [low, high]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--shared", type=float, default=0.8)
    parser.add_argument("--penalty", type=float, default=0.5)
    parser.add_argument("--draws", type=int, default=400, help="parent models drawn for each pool of pairs")
    parser.add_argument("--population", type=int, default=400)
    parser.add_argument("--null-reps", type=int, default=2000)
    parser.add_argument("--null-pairs", type=int, default=60)
    parser.add_argument("--power-reps", type=int, default=200)
    parser.add_argument("--out")
    args = parser.parse_args()
    start = time.process_time()
    pools = {}
    out: dict = {"settings": vars(args), "projection": {}, "level": {}, "power": {}}
    for i, (name, parent, candidate, kind) in enumerate(constraints()):
        draws = args.draws * (5 if kind == "regnet" else 1)  # about 1 in 4 AnyNetX_E models projects
        pools[name] = (make_pool(load_space(parent), candidate, pairs=draws, population=args.population,
                                 windows=WINDOW, seed=1000 * (i + 1), **FORM), kind)
        pool = pools[name][0]
        ratios = np.exp(pool.log_ratios)
        out["projection"][name] = {"drawn": draws, "projected": len(pool.models), "unprojectable": pool.unprojectable,
                                   "flops_ratio_range": [float(ratios.min()), float(ratios.max())]}
        print(name, out["projection"][name], flush=True)
    per_pool = math.ceil(args.null_reps / len(pools))
    for null, options in NULLS.items():
        fixed = total = 0
        seq = dict.fromkeys(SPENDING, 0)
        for j, (pool, _) in enumerate(pools.values()):
            make = lambda seed, options=options: oracles.paired_oracle("none", seed=seed, shared=args.shared,
                                                                      penalty=0.0, **options)
            p = paired_rejections(pool, make, pairs=args.null_pairs, replicates=per_pool, seed=17 + j)
            fixed += int(np.sum(p[:, 0] <= args.alpha))
            for spend in SPENDING:
                runs = sequential_runs(pool, make, max_pairs=min(100, len(pool.models)), replicates=per_pool,
                                       alpha=args.alpha, spend=spend, seed=31 + j)
                seq[spend] += sum(r.decision == "better" for r in runs)
            total += per_pool
        out["level"][null] = {"paired fixed-n": rate(fixed, total),
                              **{f"paired sequential ({s})": rate(seq[s], total) for s in SPENDING}}
        print(null, out["level"][null], flush=True)
    for j, (name, (pool, kind)) in enumerate(pools.items()):
        make = lambda seed, kind=kind: oracles.paired_oracle(kind, seed=seed, shared=args.shared,
                                                             penalty=args.penalty)
        paired = {spend: _paired_power(pool, make, spend, args.power_reps, 53 + j) for spend in SPENDING}
        unpaired = None
        for n in (n for n in UNPAIRED_N if n <= args.population):
            p = unpaired_rejections(pool, make, n=n, replicates=args.power_reps, seed=71 + j)
            unpaired = {"n_per_group": n, "power": float(np.mean(p <= args.alpha)), "models": 2 * n}
            if unpaired["power"] >= 0.8:
                break
        out["power"][name] = {"unpaired fixed-n": unpaired}
        for spend, row in paired.items():
            reached = row["power"] >= 0.8 and unpaired["power"] >= 0.8
            out["power"][name][f"paired sequential ({spend})"] = {
                **row, "ratio": row["models"] / unpaired["models"] if reached else None}
        print(name, out["power"][name], flush=True)
    out["cpu_seconds"] = time.process_time() - start
    text = json.dumps(out, indent=1)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    print(f"cpu {out['cpu_seconds']:.0f} s")


if __name__ == "__main__":
    main()
