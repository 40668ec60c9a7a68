"""``regnet-space scale``: grow a model to a flops target by a strategy of "Fast and Accurate Model Scaling".

The result is an AnyNet spec JSON (``--out``) that ``describe``, ``train`` and ``build_model`` take.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scale", help="scale a model to a flops target (depth/width/resolution strategies, e.g. dWr)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="strategies: d, w, r, dw, dr, wr, dwr (uniform compound), dWr (fast compound, alias dWS: "
               "mostly width; --alpha 0.8 as in the paper), or pycls's weighted form such as d1_w8_g8_r1.\n"
               "--resolution/--in-channels/--num-classes set the input the model is measured at before scaling.")
    add_model_arguments(parser)
    parser.add_argument("--flops", required=True, metavar="F", help="target flops (multiply-adds), e.g. 400M, 1.6G")
    parser.add_argument("--strategy", default="dWr", help="how to spend the growth (default dWr)")
    parser.add_argument("--alpha", type=float, default=0.8, help="dWr's share of width scaling, in [1/3, 1] "
                        "(default 0.8)")
    parser.add_argument("--out", metavar="FILE", help="write the scaled model's spec JSON here")
    parser.add_argument("--json", action="store_true", help="print a JSON report: strategy, factor, flops/params/"
                        "acts before and after, and the scaled spec")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..models.complexity import complexity
    from ..models.export import pycls_test_size
    from ..models.resolve import resolve_model
    from ..models.scaling import scale_to_flops, strategy
    from ..models.summary import human
    from ..spaces import parse_window
    from ..userfiles import check_output, write_output

    try:
        target = parse_window(f"{args.flops}:")[0]
    except UserError:
        raise UserError(f"--flops {args.flops!r}: expected a number with an optional K/M/G suffix, e.g. 400M") from None
    if args.out:
        check_output(args.out, "scaled spec")
    spec = resolve_model(args.model, regnet=args.regnet, resolution=args.resolution,
                         in_channels=args.in_channels, num_classes=args.num_classes)
    how = strategy(args.strategy, args.alpha)
    scaled, factor = scale_to_flops(spec, target, how)
    before, after = complexity(spec), complexity(scaled)
    metrics = ("flops", "params", "acts")
    report = {
        "strategy": how.name, "exponents": {"depth": how.e_d, "width": how.e_w, "group_width": how.e_g,
                                            "resolution": how.e_r},
        "target_flops": target, "factor": factor,
        "flops_error": after.flops / target - 1,
        "before": {m: getattr(before, m) for m in metrics} | {"resolution": spec.resolution,
                                                               "test_resize": pycls_test_size(spec)},
        "after": {m: getattr(after, m) for m in metrics} | {"resolution": scaled.resolution,
                                                             "test_resize": pycls_test_size(scaled)},
        "growth": {m: getattr(after, m) / getattr(before, m) for m in metrics},
        "spec": scaled.to_dict(),
    }
    if args.out:
        write_output(args.out, scaled.to_json(indent=2) + "\n", "scaled spec")
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.model or 'model'} scaled by {how.name}: factor {factor:.3g}, flops {human(after.flops)} "
          f"({report['flops_error']:+.1%} vs target {human(target)})")
    print(f"{'':>10} {'before':>9} {'after':>9} {'growth':>7}")
    for m in metrics:
        print(f"{m:>10} {human(getattr(before, m)):>9} {human(getattr(after, m)):>9} {report['growth'][m]:>6.2f}x")
    print(f"{'resolution':>10} {spec.resolution:>9} {scaled.resolution:>9}")
    print(f"{'test size':>10} {pycls_test_size(spec):>9} {pycls_test_size(scaled):>9}  (resize before the centre "
          f"crop: pycls's TEST.IM_SIZE)")
    print(f"{'depths':>10} {spec.depths} -> {scaled.depths}")
    print(f"{'widths':>10} {spec.widths} -> {scaled.widths}")
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
