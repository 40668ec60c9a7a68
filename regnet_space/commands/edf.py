"""``regnet-space edf``: compare design spaces by their error EDFs (plain or complexity-normalised), with
95% bands, pairwise KS tests (normalised: permutations within complexity bins; p Holm-adjusted over the pairs),
bootstrap intervals for the differences in mean error and the expected best error of a random search."""

from __future__ import annotations

import argparse
import json

from . import positive_int, seed_int


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The STUDY argument shared by the analysis commands: a results file or a study spec."""
    parser.add_argument("study", metavar="STUDY", help="a results file (.csv, .parquet, .jsonl) or a study spec "
                        "(.toml; then --dir/--storage locate its storage)")
    parser.add_argument("--dir", help="the study's directory (for a study spec)")
    parser.add_argument("--storage", help="the study's storage URL (for a study spec)")


def value_range(text: str) -> tuple[float, float]:
    """``lo:hi`` with K/M/G suffixes (``5M:20M``), as complexity windows are written; both ends required."""
    from ..errors import UserError
    from ..spaces import parse_window

    lo, _, hi = text.partition(":")
    if not lo.strip() or not hi.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not lo:hi (two numbers, K/M/G suffixes allowed)")
    try:
        return parse_window(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("edf", help="compare error EDFs of design spaces", description=__doc__)
    add_table_arguments(parser)
    parser.add_argument("--by", default="space", help="the column that names the groups (default: space)")
    parser.add_argument("--normalize", choices=("flops", "params", "acts", "mac", "latency"),
                        help="weight models so each group's complexity is uniform over --bins bins (NDS)")
    parser.add_argument("--bins", type=positive_int, help="complexity bins (default: the most, up to 10, that give "
                        "every group at least 3 models in every bin)")
    parser.add_argument("--range", type=value_range, metavar="LO:HI",
                        help="complexity range to normalise over (default: the span all groups share)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="1 - confidence of the bands and the mean-difference intervals (default: 0.05)")
    parser.add_argument("--permutations", type=positive_int, default=1000,
                        help="permutations of the weighted KS test (default: 1000)")
    parser.add_argument("--ci-samples", type=positive_int, default=2000,
                        help="bootstrap resamples of the mean-difference intervals (default: 2000)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the permutation test and the bootstrap "
                        "(default: 0)")
    parser.add_argument("--plot", metavar="OUT.png", help="write the EDF figure (.png or .svg)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import edf, table
    from ..errors import UserError
    from ..models.summary import compact

    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha must be in (0, 1), got {args.alpha}")
    if args.range is not None and args.normalize is None:
        raise UserError("--range needs --normalize")
    if args.plot:
        from ..analysis.plots import check_figure_path

        check_figure_path(args.plot)
    frame, _ = table.load_columns(args.study, dir=args.dir, storage=args.storage)
    check_work(frame, args.by, args.bins)
    bins, rule = args.bins or 10, None
    if args.normalize is not None and args.bins is None:
        from ..analysis.bins import choose_bins

        choice = choose_bins(frame, args.normalize, by=args.by, value_range=args.range)
        if choice.bins is None:
            raise UserError(f"--normalize {args.normalize}: some group has fewer than {choice.min_per_bin} models "
                            f"in the range every group covers; give --bins or --range")
        bins, rule = choice.bins, choice.rule()
    comparison = edf.compare(frame, args.by, normalize=args.normalize, bins=bins, value_range=args.range,
                             permutations=args.permutations, seed=args.seed, level=1 - args.alpha,
                             ci_samples=args.ci_samples)
    if args.plot:
        from ..analysis import plots

        plots.save(plots.edf_figure(comparison, args.alpha), args.plot)
    if args.json:
        print(json.dumps(comparison.to_json(args.alpha)))
        return 0
    if comparison.binning is not None:
        b = comparison.binning
        print(f"normalised by {comparison.normalize}: {b.bins} bins over [{compact(b.lo)}, {compact(b.hi)}]"
              + (f" ({rule})" if rule else ""))
        print(f"dropped: models whose {comparison.normalize} lies outside that range (or is unknown)")
    print(f"{'group':>16} {'n':>6} {'dropped':>7} {'min':>7} {'mean':>7} {'band':>7}")
    for name, e in comparison.edfs.items():
        dropped = comparison.dropped[name] if comparison.dropped else 0
        print(f"{name:>16} {e.n:>6} {dropped:>7} {e.min_error:>7.2f} {e.mean_error:>7.2f} "
              f"{edf.dkw_halfwidth(e.n_eff, args.alpha):>7.3f}")
    if comparison.ks:
        print(comparison.holm_note())
    for test in comparison.ks:
        lo, hi = test["mean_diff_ci"]
        print(f"KS {test['a']} vs {test['b']}: D={test['statistic']:.3f} p={test['pvalue']:.3g} "
              f"p_holm={test['p_holm']:.3g}; mean_diff={test['mean_diff']:+.2f} [{lo:+.2f}, {hi:+.2f}] "
              f"({test['method']})")
    return 0


# Pairwise KS tests grow as the square of the groups (10,000 spaces ran over 150 s of tests before any output);
# 100 groups are 4,950 pairs, and an EDF figure of more curves cannot be read anyway.
MAX_GROUPS = 100


def check_work(frame, by: str, bins: int | None) -> None:
    """Refuse, before any allocation, work that a small input makes unbounded: more groups than MAX_GROUPS, or
    more bins than models (no bin could then hold a model of every group; --bins 10^9 allocated 7.45 GiB)."""
    from ..analysis.table import group_rows
    from ..errors import UserError

    if by not in frame:
        return  # the comparison names the missing column
    groups = len(group_rows(frame[by]))
    if groups > MAX_GROUPS:
        raise UserError(f"--by {by}: {groups:,} groups; at most {MAX_GROUPS} are compared pairwise "
                        f"({MAX_GROUPS * (MAX_GROUPS - 1) // 2:,} tests): select fewer")
    models = len(frame[by])
    if bins is not None and bins > models:
        raise UserError(f"--bins {bins:,}: more bins than models ({models:,})")

