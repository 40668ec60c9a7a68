"""``regnet-space sample``: draw models from a design space, one JSON line each, inside complexity windows."""

from __future__ import annotations

import argparse
import json
import sys

from . import positive_int, seed_int


# 1,907 bytes a line measured over 2,000 regnetx samples: 10^6 models are ~1.9 GB of lines (-n 10^9 held every
# line for a run the issue measured at ~900 h).
MAX_SAMPLE = 1_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sample", help="sample models from a design space (JSON lines)",
                                   description=__doc__ + " Each line has the keys of `describe --json` plus the "
                                   "space's name and the drawn parameters under \"sampled\". Same seed, same output.")
    parser.add_argument("space", metavar="SPACE_OR_TOML", help="a built-in space (see `regnet-space spaces`) "
                        "or a TOML file (docs/spaces.md)")
    parser.add_argument("-n", type=positive_int, required=True, help="how many models")
    for metric in ("flops", "params", "acts", "mac"):
        parser.add_argument(f"--{metric}", metavar="LO:HI", help=f"keep models with {metric} in [LO, HI]; "
                            "K/M/G suffixes, an end may be left open (e.g. 360M:400M, :2M)")
    parser.add_argument("--seed", type=seed_int, default=0, help="the population's seed (default 0)")
    parser.add_argument("--resolution", type=positive_int, default=224, help="input resolution (default 224)")
    parser.add_argument("--in-channels", type=positive_int, default=3, help="input channels (default 3)")
    parser.add_argument("--num-classes", type=positive_int, default=1000, help="classes (default 1000)")
    parser.add_argument("--input-form", choices=("auto", "imagenet", "small"), help="the space's form for this "
                        "input size (default: the space's own, `auto` for built-ins: the small-image form below "
                        "128 px; docs/spaces.md)")
    parser.add_argument("--max-draws", type=positive_int, help="give up after this many draws "
                        "(default 1,000,000 + 1,000 n)")
    parser.add_argument("--out", metavar="FILE", help="write the JSON lines here instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..models.summary import summarize
    from ..spaces import load_space, parse_window
    from ..spaces.input_form import tiny_stage_warning
    from ..spaces.sampling import sample_with_stats
    from ..errors import UserError
    from ..userfiles import check_output, write_output

    if args.n > MAX_SAMPLE:
        raise UserError(f"-n {args.n:,}: at most {MAX_SAMPLE:,} models a call (their lines are held in memory, "
                        f"about 1.9 KB each); draw more with several --seed values")
    if args.out is not None:
        check_output(args.out, "samples")
    space = load_space(args.space)
    windows = {metric: parse_window(getattr(args, metric)) for metric in ("flops", "params", "acts", "mac")
               if getattr(args, metric) is not None}
    models, stats = sample_with_stats(space, args.n, seed=args.seed, windows=windows,
                                      resolution=args.resolution, in_channels=args.in_channels,
                                      num_classes=args.num_classes, max_draws=args.max_draws,
                                      progress=args.out is not None, input_form=args.input_form)
    # "params" is describe's parameter count, so the drawn parameters go under "sampled".
    lines = [json.dumps({**summarize(m.spec, m.regnet), "space": space.name, "sampled": m.params}) + "\n"
             for m in models]
    if args.out is None:
        sys.stdout.writelines(lines)
    else:
        write_output(args.out, "".join(lines), "samples")
    tiny = [w for w in map(tiny_stage_warning, (m.spec for m in models)) if w]
    if tiny:
        print(f"warning: {len(tiny)} of {len(models)} models have a tiny stage; the first: {tiny[0]}", file=sys.stderr)
    print(f"sampled {len(models)} models from {space.name} in {stats.drawn:,} draws "
          f"(rejection rate {stats.rejection_rate:.2%})", file=sys.stderr)
    return 0
