"""``regnet-space power``: how many models per space a comparison needs. From a pilot population (a results
file or a study), simulate studies of n models per space from each pilot's smoothed EDF and find the smallest
n at which the KS test (or Welch's t-test of the mean error) rejects with the wanted power, at alpha divided
by the number of comparisons (Holm's first step). Without --ks/--gap: for the differences the pilot shows,
per pair of spaces."""

from __future__ import annotations

import argparse
import json

from . import positive_int, seed_int
from .edf import add_table_arguments


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be in (0, 1)")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("power", help="models per space needed to detect a difference (simulation)",
                                   description=__doc__)
    add_table_arguments(parser)
    parser.add_argument("--by", default="space", help="the column that names the groups (default: space)")
    parser.add_argument("--ks", type=_fraction, metavar="D", help="target KS distance between two spaces")
    parser.add_argument("--gap", type=_positive, metavar="POINTS", help="target gap in mean error (%% points)")
    parser.add_argument("--power", type=_fraction, default=0.8, help="wanted power (default: 0.8)")
    parser.add_argument("--alpha", type=_fraction, default=0.05, help="family-wise level (default: 0.05)")
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
                               max_n=args.max_n)
    print(json.dumps(result) if args.json else "\n".join(power.describe(result)))
    return 0
