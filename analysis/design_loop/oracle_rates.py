"""How often the design loop finds planted structure, and how often it calls noise "better" (issue 14).

    PYTHONPATH=. python analysis/design_loop/oracle_rates.py --seeds 10 --population 60 --rounds 4 \\
        --out analysis/design_loop/oracle_rates.json

For each seed, the loop starts from AnyNetX_A (224x224x3 input, 200-800 MFLOPs: the paper's regime, in the
ImageNet form) twice, with analytic oracles in place
of training (regnet_space/design/oracles.py): ``planted`` (low error only for shared b = 1, non-decreasing
widths and g in [4, 16], plus N(0, 1) noise) and ``noise`` (pure N(0, 1) noise). Reported: the recovery rate
(all three planted constraints in the final space) and each constraint's; the rate of runs that called any
candidate "better" on noise; models evaluated per run.
"""

from __future__ import annotations

import argparse
import json
import time

from regnet_space.design import design_space, oracles
from regnet_space.spaces import load_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--population", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--out")
    args = parser.parse_args()
    runs = []
    start = time.time()
    for seed in range(args.seeds):
        for kind in ("planted", "noise"):
            evaluate = getattr(oracles, kind)(seed=seed)
            result = design_space(load_space("anynetx_a"), evaluate, rounds=args.rounds, population=args.population,
                                  windows={"flops": (200e6, 800e6)}, resolution=224, in_channels=3, num_classes=1000,
                                  seed=seed, alpha=args.alpha, budget=args.budget)
            found = oracles.recovered(result.final_space)
            run = {"seed": seed, "oracle": kind, "recovered": found, "all": all(found.values()),
                   "better": [r["candidate"] for r in result.lineage if r["better"]],
                   "accepted": [r["candidate"] for r in result.lineage[1:] if r["accepted"]],
                   "models": sum(r["n"] for r in result.lineage), "stop": result.stop}
            runs.append(run)
            print(json.dumps(run), flush=True)
    planted = [r for r in runs if r["oracle"] == "planted"]
    noise = [r for r in runs if r["oracle"] == "noise"]
    summary = {
        "command": f"oracle_rates.py --seeds {args.seeds} --population {args.population} --rounds {args.rounds}"
                   + (f" --budget {args.budget}" if args.budget else "") + f" --alpha {args.alpha}",
        "recovery_rate": sum(r["all"] for r in planted) / len(planted),
        "per_constraint": {k: sum(r["recovered"][k] for r in planted) / len(planted) for k in planted[0]["recovered"]},
        "noise_better_rate": sum(bool(r["better"]) for r in noise) / len(noise),
        "noise_accepted_any_rate": sum(bool(r["accepted"]) for r in noise) / len(noise),
        "mean_models_planted": sum(r["models"] for r in planted) / len(planted),
        "mean_models_noise": sum(r["models"] for r in noise) / len(noise),
        "seconds": round(time.time() - start, 1),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"summary": summary, "runs": runs}, handle, indent=1)
            handle.write("\n")


if __name__ == "__main__":
    main()
