"""``regnet-space report``: one self-contained HTML page of a study's analysis (EDFs, KS tests, good ranges,
linear fits, the best config, the study's spec) that opens in a browser with no server."""

from __future__ import annotations

import argparse

from . import fraction, non_negative_int, positive_float, positive_int, seed_int
from .edf import add_table_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="write an HTML report of a study", description=__doc__)
    add_table_arguments(parser)
    parser.add_argument("--out", required=True, metavar="report.html", help="the HTML file to write")
    parser.add_argument("--figures", metavar="DIR", help="also write every figure to DIR as PNG and SVG")
    parser.add_argument("--normalize", choices=("flops", "params", "acts", "mac", "latency"), default="flops",
                        help="complexity of the normalised EDF (default: flops)")
    parser.add_argument("--bins", type=positive_int, default=10, help="bins of the normalised EDF (default: 10)")
    parser.add_argument("--samples", type=positive_int, default=10_000, help="bootstrap resamples (default: 10000)")
    parser.add_argument("--top", type=positive_int, default=10, help="models in the block-width figure (default: 10)")
    parser.add_argument("--fit-sample", type=non_negative_int, metavar="N",
                        help="fit e_fit on a random N models per space, plus the --top best (default: 500, "
                             "the report's FIT_SAMPLE; 0: every model)")
    parser.add_argument("--jobs", type=positive_int, metavar="N",
                        help="processes in all: with N > 1 the comparison of the spaces and the linear fits run in "
                             "N - 1 worker processes while this one draws the rest; the page is the same "
                             "(default: the CPUs this process may use)")
    parser.add_argument("--power-ks", type=fraction, metavar="D",
                        help="the verdict shows the KS test's power to detect this KS distance, stated in advance "
                             "(default: 0.2; never the observed difference's power)")
    parser.add_argument("--power-gap", type=positive_float, metavar="POINTS",
                        help="... and a shift of this many points of error (default: 1)")
    parser.add_argument("--seed", type=seed_int, default=0,
                        help="seed of the bootstrap, the permutation tests and the fit sample")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import table
    from ..analysis.report import FIT_SAMPLE, build_report, usable_cpus
    from ..userfiles import check_output, make_output_dir, write_output

    check_output(args.out, "report")
    if args.figures:
        make_output_dir(args.figures, "figures")
    frame, meta = table.load(args.study, dir=args.dir, storage=args.storage)
    text = build_report(frame, meta, normalize=args.normalize, bins=args.bins, samples=args.samples, top=args.top,
                        seed=args.seed, figures_dir=args.figures, progress=True,
                        fit_sample=FIT_SAMPLE if args.fit_sample is None else args.fit_sample or None,
                        processes=args.jobs or usable_cpus(), effect_ks=args.power_ks,
                        effect_gap=args.power_gap)
    write_output(args.out, text, "report")
    print(f"wrote {args.out} ({len(text) / 1e6:.1f} MB)")
    return 0
