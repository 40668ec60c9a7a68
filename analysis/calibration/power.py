"""Calibration of the power planner (`regnet-space power`): does the planned n give the power it promises?

    PYTHONPATH=. OMP_NUM_THREADS=1 python analysis/calibration/power.py [--pilots 500] [--seed 0]

For each truth of regnet_space.analysis.power_calibration (normal, heavy-tailed, skewed, tied errors) it draws
--pilots pilots of 40 models, plans n for a nominal power of 0.80 at alpha 0.05 (a KS distance of 0.2, KS test;
a 1-point mean gap, Welch's t, the planner's assured n and the pilot's point n), and measures the true power at
that n by 4000 fresh studies from the truth. Writes analysis/calibration/power_results.json: per truth and plan,
the share of pilots whose true power lies in 0.70-0.90 (and >= 0.70), with Clopper-Pearson 95% intervals.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from regnet_space.analysis.power_calibration import PILOT_N, WINDOW, calibrate, summary, truths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilots", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).with_name("power_results.json")))
    args = parser.parse_args()
    started = time.process_time()
    results = {}
    for truth in truths():
        plans = calibrate(truth, args.pilots, seed=args.seed)
        results[truth.name] = {name: summary(plan) for name, plan in plans.items()}
        for name, found in results[truth.name].items():
            window = found["in_window"]
            print(f"{truth.name:32s} {name:22s} true power in {WINDOW}: {window['rate']:.1%} "
                  f"(95% CI {window['ci95'][0]:.1%}-{window['ci95'][1]:.1%}); >= {WINDOW[0]}: "
                  f"{found['at_least_low']['rate']:.1%}; n 10/50/90%: {found['n_quantiles_10_50_90']}", flush=True)
    document = {"setup": {"pilot_n": PILOT_N, "pilots": args.pilots, "seed": args.seed, "nominal_power": 0.8,
                          "alpha": 0.05, "window": WINDOW, "true_power_studies": 4000,
                          "planner_studies_per_n": 400},
                "cpu_seconds": round(time.process_time() - started, 1), "results": results}
    Path(args.out).write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out} ({document['cpu_seconds']} CPU s)")


if __name__ == "__main__":
    main()
