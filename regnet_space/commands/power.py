"""``regnet-space power``: how many models per space a comparison needs. From a pilot population (a results
file or a study), simulate studies of n models per space from each pilot's smoothed EDF and find the smallest
n at which the KS test (or Welch's t-test of the mean error) rejects with the wanted power, at alpha divided
by the number of comparisons (Holm's first step), for an effect stated in advance: a KS distance (--ks) and/or
a gap in mean error (--gap, planned for the pilot's variance at its upper --assurance bootstrap bound). Never
for the difference the pilot shows: a 40-model pilot's differences are too noisy to plan with. Without --ks
and --gap: --ks 0.2 --gap 1."""

from __future__ import annotations

import argparse
import json

from . import fraction, positive_float, positive_int, seed_int
from .edf import add_table_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("power", help="models per space needed to detect a difference (simulation)",
                                   description=__doc__)
    add_table_arguments(parser)
    parser.add_argument("--by", default="space", help="the column that names the groups (default: space)")
    parser.add_argument("--ks", type=fraction, metavar="D",
                        help="the smallest KS distance worth detecting (default with no --gap: 0.2)")
    parser.add_argument("--gap", type=positive_float, metavar="POINTS",
                        help="the smallest gap in mean error worth detecting, %% points (default with no --ks: 1)")
    parser.add_argument("--assurance", type=fraction, default=0.8,
                        help="--gap: plan for the pilot's variance at this upper bootstrap bound, so the n reaches "
                             "the power in this share of resampled pilots (default: 0.8)")
    parser.add_argument("--power", type=fraction, default=0.8, help="wanted power (default: 0.8)")
    parser.add_argument("--alpha", type=fraction, default=0.05, help="family-wise level (default: 0.05)")
    parser.add_argument("--comparisons", type=positive_int,
                        help="comparisons in the family (default: the pairs of groups in the pilot)")
    parser.add_argument("--replicates", type=positive_int, default=400,
                        help="simulated studies per n (default: 400)")
    parser.add_argument("--max-n", type=positive_int, default=5000, help="largest n tried (default: 5000)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the simulation (default: 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import power, table

    frame, _ = table.load(args.study, dir=args.dir, storage=args.storage)
    result = power.power_table(frame, args.by, ks=args.ks, gap=args.gap, power=args.power, alpha=args.alpha,
                               comparisons=args.comparisons, replicates=args.replicates, seed=args.seed,
                               max_n=args.max_n, assurance=args.assurance)
    print(json.dumps(result) if args.json else "\n".join(power.describe(result)))
    return 0
