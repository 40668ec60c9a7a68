"""Markdown table of every pairwise comparison of a study, with the power each comparison had.

    python analysis/pair_table.py results.csv edf.json edf_flops.json [--ks 0.2 --gap 1.0]

One row per pair of spaces: the plain and the flops-normalised KS distance with their Holm-adjusted p-values
(from ``regnet-space edf --json``; the normalised test permutes labels within complexity bins), the difference in
mean error with its 95% bootstrap interval, and the power the comparison had at the study's n per space:

- the smallest KS distance the Holm family could detect at all (the exact test's critical distance at
  alpha / pairs, Holm's strictest step);
- by simulation from the first space's smoothed EDF (``regnet_space.analysis.power``), the probability that the
  table's own test (KS) rejects at that level if the true EDFs differed by a KS distance of ``--ks`` or were
  shifted by ``--gap`` points (until issue 27 the gap column was a Welch t-test's power, beside a KS table).

The power is for effects fixed in advance, not for the observed difference (whose "power" only restates the
p-value).
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from regnet_space.analysis.power import Pilot, ks_critical_count, shift_for_ks, simulated_power


def pair_power(errors: pd.Series, n: int, level: float, *, ks: float, gap: float, seed: int) -> tuple[float, float]:
    """The KS test's power at n per space and ``level`` to detect a KS distance ``ks`` and a shift of ``gap``
    points."""
    pilot = Pilot.of(errors.to_numpy())
    power_ks = simulated_power(pilot, pilot, n, shift=shift_for_ks(pilot, ks), test="ks", alpha=level,
                               replicates=1000, seed=seed)
    power_gap = simulated_power(pilot, pilot, n, shift=gap, test="ks", alpha=level, replicates=1000, seed=seed)
    return power_ks, power_gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="the study's results.csv")
    parser.add_argument("plain", help="regnet-space edf --json output")
    parser.add_argument("normalised", help="regnet-space edf --normalize flops --json output")
    parser.add_argument("--ks", type=float, default=0.2, help="KS distance whose power is shown (default 0.2)")
    parser.add_argument("--gap", type=float, default=1.0, help="shift (points) whose power is shown (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = pd.read_csv(args.results)
    frame = frame[frame["status"] == "complete"]
    plain, normalised = json.load(open(args.plain)), json.load(open(args.normalised))
    family = plain["multiple_comparisons"]["family"]
    level = plain["alpha"] / family
    normalised_by_pair = {frozenset((p["a"], p["b"])): p for p in normalised["ks"]}
    print(f"Holm family: {family} pairs, alpha {plain['alpha']:g} (strictest step {level:.4f}). Power: "
          f"simulated from the first space's smoothed EDF, 1000 studies, at its step's level {level:.4f}.\n")
    header = ["a vs b", "n", "KS D", "p (Holm)", "KS D, flops-norm.", "p (Holm), flops-norm.",
              "mean a - b [95% CI]", "critical D", f"power D={args.ks:g} (KS)", f"power shift={args.gap:g} (KS)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for pair in plain["ks"]:
        a, b = pair["a"], pair["b"]
        n = int(min(plain["groups"][a]["n"], plain["groups"][b]["n"]))
        norm = normalised_by_pair[frozenset((a, b))]
        power_ks, power_gap = pair_power(frame.loc[frame["space"] == a, "val_error"], n, level,
                                         ks=args.ks, gap=args.gap, seed=args.seed)
        low, high = pair["mean_diff_ci"]
        cells = [f"{a} vs {b}", str(n), f"{pair['statistic']:.3f}", f"{pair['p_holm']:.3g}",
                 f"{norm['statistic']:.3f}", f"{norm['p_holm']:.3g}",
                 f"{pair['mean_diff']:+.2f} [{low:+.2f}, {high:+.2f}]",
                 f"{ks_critical_count(n, level) / n:.2f}", f"{power_ks:.2f}", f"{power_gap:.2f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
