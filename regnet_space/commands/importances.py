"""``regnet-space importances``: which sampled parameters explain each space's errors (Optuna's parameter
importances, each space's models on their own: a population study's spaces share no parameters, so importances
over the whole study are empty or all zero). See regnet_space/analysis/importance.py."""

from __future__ import annotations

import argparse
import json

from . import space_definition
from .edf import add_table_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("importances", help="parameter importances per design space (Optuna's)",
                                   description=__doc__)
    add_table_arguments(parser)
    parser.add_argument("--space", action="append", help="a space (label) to rank (repeatable; default: every one)")
    parser.add_argument("--definition", metavar="NAME|TOML|YAML",
                        help="with one --space: the design space its models were drawn from (default as for refine)")
    parser.add_argument("--evaluator", default="ped-anova", choices=("ped-anova", "fanova", "mdi"),
                        help="Optuna's evaluator: ped-anova (its default), fanova or mdi (these need scikit-learn)")
    parser.add_argument("--seed", type=int, default=0, help="the evaluator's seed (fanova, mdi)")
    parser.add_argument("--json", action="store_true", help="print {space: {parameter: importance}} as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import table
    from ..analysis.importance import importances
    from ..errors import UserError

    frame, _ = table.load(args.study, dir=args.dir, storage=args.storage)
    labels = args.space or sorted(frame["space"].unique())
    unknown = [label for label in labels if label not in set(frame["space"])]
    if unknown:
        raise UserError(f"--space {unknown[0]}: no models of that space "
                        f"(spaces: {', '.join(sorted(frame['space'].unique()))})")
    if args.definition and len(labels) != 1:
        raise UserError("--definition: give exactly one --space with it")
    spaces = {label: space_definition(args.study, label, args.definition) for label in labels}
    result = importances(frame, spaces, evaluator=args.evaluator, seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    for label, ranked in result.items():
        print(f"{label}: " + "  ".join(f"{name} {value:.3f}" for name, value in ranked.items()))
    return 0
