"""How often the design loop finds planted structure at equal flops, and how often it accepts anything on noise.

    PYTHONPATH=. OMP_NUM_THREADS=1 python analysis/design_loop/oracle_rates.py --seeds 20 --population 100 \\
        --rounds 5 --budget 800 --out analysis/design_loop/oracle_rates.json
    PYTHONPATH=. OMP_NUM_THREADS=1 python analysis/design_loop/oracle_rates.py --seeds 20 --population 100 \\
        --rounds 5 --budget 800 --evaluation paired --shared 0.8 --oracles monotone interaction flops_only noise \\
        --out analysis/design_loop/oracle_rates_paired.json

For each seed and oracle the loop starts from AnyNetX_A (224x224x3 input, 200-800 MFLOPs: the paper's regime,
ImageNet form) with an analytic oracle in place of training (regnet_space/design/oracles.py):

- ``monotone``: error = 30 - 3 log2(flops / 400M) + 2 [some width decreases] + 2 [some depth decreases] + N(0, 1)
  (the flops term is what every real study has; the planted part is non-decreasing widths and depths);
- ``interaction``: the same flops term, + 4 unless widths *and* depths are non-decreasing;
- ``planted``: issue 14's oracle, no flops term: 20 + 4 x (share of stages with b != 1 + [some width decreases]
  + share of stages with g outside [4, 16]) + N(0, 1);
- ``flops_only``: the flops term + N(0, 1): no constraint helps at equal flops;
- ``noise``: heteroscedastic noise (scale 0.25x-2x with depth and width), no flops term.

``--evaluation paired`` judges candidates by pairs (design/loop.py); ``--shared`` is the share of each model's
noise variance its training seed fixes (a model and its projection share it; 0: every model's noise is its own,
as before; the ``planted`` oracle has none). Each model's noise has unit variance either way, so the population
loop sees the same error distributions whatever ``--shared``.

Reported: per oracle, the runs whose final space holds every planted constraint, and on the null oracles the
runs that called anything better or accepted anything; models trained per run (every population and every
projection the run evaluated).
"""

from __future__ import annotations

import argparse
import json
import time

from regnet_space.design import design_space, oracles
from regnet_space.spaces import load_space
from regnet_space.userfiles import write_output

ORACLES = {  # name -> (evaluator factory (seed, shared), which planted constraints to check, or None for a null)
    "monotone": (lambda seed, shared: oracles.monotone(seed=seed, shared=shared), oracles.recovered_monotone),
    "interaction": (lambda seed, shared: oracles.monotone(seed=seed, interaction=True, shared=shared),
                    oracles.recovered_monotone),
    "planted": (lambda seed, shared: oracles.planted(seed=seed), oracles.recovered),
    "flops_only": (lambda seed, shared: oracles.flops_only(seed=seed, shared=shared), None),
    "noise": (lambda seed, shared: oracles.noise(seed=seed, heteroscedastic=True, shared=shared), None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=800)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--oracles", nargs="+", default=list(ORACLES), choices=list(ORACLES))
    parser.add_argument("--evaluation", default="population", choices=["population", "paired"])
    parser.add_argument("--shared", type=float, default=0.0, help="share of the noise variance a seed fixes")
    parser.add_argument("--out")
    args = parser.parse_args()
    runs = []
    start = time.time()
    for seed in range(args.seeds):
        for kind in args.oracles:
            make, check = ORACLES[kind]
            result = design_space(load_space("anynetx_a"), make(seed, args.shared), rounds=args.rounds,
                                  population=args.population, windows={"flops": (200e6, 800e6)}, resolution=224,
                                  in_channels=3, num_classes=1000, seed=seed, alpha=args.alpha, budget=args.budget,
                                  evaluation=args.evaluation, verify=0)
            found = check(result.final_space) if check else {}
            run = {"seed": seed, "oracle": kind, "recovered": found, "all": all(found.values()) if found else None,
                   "better": [r["candidate"] for r in result.lineage if r["better"]],
                   "accepted": [r["candidate"] for r in result.lineage[1:] if r["accepted"]],
                   "models": len(result.results()), "stop": result.stop}
            runs.append(run)
            print(json.dumps(run), flush=True)
    summary = {"command": f"oracle_rates.py --seeds {args.seeds} --population {args.population} --rounds "
                          f"{args.rounds} --budget {args.budget} --alpha {args.alpha} --evaluation {args.evaluation} "
                          f"--shared {args.shared} --oracles {' '.join(args.oracles)}",
               "seconds": round(time.time() - start, 1)}
    for kind in args.oracles:
        mine = [r for r in runs if r["oracle"] == kind]
        entry = {"runs": len(mine), "mean_models": sum(r["models"] for r in mine) / len(mine),
                 "called_anything_better": sum(bool(r["better"]) for r in mine),
                 "accepted_anything": sum(bool(r["accepted"]) for r in mine)}
        if ORACLES[kind][1] is not None:
            entry["recovered_all"] = sum(bool(r["all"]) for r in mine)
            entry["per_constraint"] = {k: sum(r["recovered"][k] for r in mine) for k in mine[0]["recovered"]}
        summary[kind] = entry
    print(json.dumps(summary, indent=1))
    if args.out:
        write_output(args.out, json.dumps({"summary": summary, "runs": runs}, indent=1) + "\n", "oracle rates")


if __name__ == "__main__":
    main()
