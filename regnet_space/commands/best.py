"""``regnet-space best``: the best model of a study as a RegNet config (best.json) that ``describe``, ``train``
and ``regnet_space.build_model`` accept; an AnyNet winner becomes its nearest RegNet by the quantized linear fit."""

from __future__ import annotations

import argparse
import json

from .edf import add_table_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("best", help="emit the best RegNet config of a study as JSON",
                                   description=__doc__)
    add_table_arguments(parser)
    parser.add_argument("--space", help="only models of this space")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of a summary")
    parser.add_argument("--out", metavar="best.json", help="also write the JSON to this file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import best, table
    from ..summary import human
    from ..userfiles import check_output, write_output

    if args.out:
        check_output(args.out, "best config")
    frame, meta = table.load(args.study, dir=args.dir, storage=args.storage)
    config = best.best_config(frame, meta, args.space)
    text = json.dumps(config, indent=2)
    if args.out:
        write_output(args.out, text + "\n", "best config")
    if args.json:
        print(text)
        return 0
    print(f"best of {config['space']}: val error {config['errors']['val']:.2f}%  ({config['source']}"
          + (f", e_fit {config['e_fit']:.3f}" if config["e_fit"] is not None else "") + ")")
    print(f"  depth={config['depth']} w0={config['w0']} wa={config['wa']} wm={config['wm']} "
          f"group_width={config['group_width']} bottleneck_ratio={config['bottleneck_ratio']} "
          f"se_ratio={config['se_ratio']}")
    print(f"  widths {config['widths']}  depths {config['depths']}  at {config['in_channels']}x"
          f"{config['resolution']}x{config['resolution']}, {config['num_classes']} classes")
    print(f"  flops {human(config['flops'])}  params {human(config['params'])}  acts {human(config['acts'])}")
    if args.out:
        print(f"wrote {args.out}")
    return 0
