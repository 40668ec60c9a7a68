"""``regnet-space refine``: narrow a design space from a study of it. Every candidate constraint (narrow a
range, share b or g, non-decreasing widths/depths) gets a permutation p-value (errors shuffled among the
models), Holm-adjusted over the candidates; only those with Holm p <= --alpha are imposed. Writes a space TOML
(with every candidate's p-values as comments) that ``sample`` and the next study accept."""

from __future__ import annotations

import argparse

from . import positive_int, seed_int, space_definition
from .edf import add_table_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("refine", help="narrow a design space from a study of it", description=__doc__)
    add_table_arguments(parser)
    parser.add_argument("--space", required=True, help="the space (label) of the study to refine")
    parser.add_argument("--definition", metavar="NAME|TOML|YAML",
                        help="the design space the models were drawn from: a built-in name, a TOML space or a "
                             "pycls sweep_cfg.yaml (default: the study's space for the label, the sweep_cfg.yaml "
                             "beside a pycls NAME/sweep.json, or the built-in space of that name)")
    parser.add_argument("--out", required=True, metavar="narrowed.toml", help="where to write the narrowed space")
    parser.add_argument("--permutations", type=positive_int, default=1000,
                        help="shuffles of the errors per test (default: 1000)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="family-wise level over all candidate decisions, Holm (default: 0.05)")
    parser.add_argument("--seed", type=seed_int, default=0, help="permutation seed (default: 0)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import table
    from ..analysis.refine import refine
    from ..errors import UserError
    from ..userfiles import check_output, write_output

    check_output(args.out, "narrowed space")
    frame, _ = table.load(args.study, dir=args.dir, storage=args.storage)
    models = frame[frame["space"] == args.space]
    if models.empty:
        raise UserError(f"--space {args.space}: no models of that space "
                        f"(spaces: {', '.join(sorted(frame['space'].unique()))})")
    refinement = refine(space_definition(args.study, args.space, args.definition), models, alpha=args.alpha,
                        permutations=args.permutations, seed=args.seed)
    write_output(args.out, refinement.to_toml(), "narrowed space")
    print("\n".join(refinement.rationale))
    print(f"wrote {args.out}")
    return 0

