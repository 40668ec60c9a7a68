"""``regnet-space describe``: a model's stages and complexity, from a name, RegNet parameters or JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from . import add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("describe", help="show a model's stages, flops, params and acts",
                                   description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--acts-convention", choices=("ours", "pycls"), default="ours",
                        help="acts as we count them (conv/linear outputs, the RegNet paper's definition; default) "
                             "or as pycls does (also the stem max-pool's output; docs/imports.md)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..models.resolve import regnet_params_of, resolve_model
    from ..models.summary import human, summarize
    from ..spaces.input_form import MODEL_REMEDY, tiny_stage_warning

    spec = resolve_model(args.model, regnet=args.regnet, resolution=args.resolution,
                         in_channels=args.in_channels, num_classes=args.num_classes)
    summary = summarize(spec, regnet_params_of(args.model, args.regnet))
    if args.acts_convention == "pycls":
        from ..models.complexity import pycls_acts

        summary["acts"] = pycls_acts(spec)
    warning = tiny_stage_warning(spec, MODEL_REMEDY)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
        return 0
    title = args.model or f"RegNet({args.regnet})"
    print(f"{title}  input {spec.in_channels}x{spec.resolution}x{spec.resolution}, {spec.num_classes} classes, "
          f"stem {spec.stem.type} {spec.stem.width}")
    print(f"{'stage':>5} {'block':>15} {'depth':>5} {'width':>6} {'stride':>6} {'px':>4} {'b':>5} {'g':>5} "
          f"{'SE':>5}  options")
    for i, (stage, px) in enumerate(zip(spec.stages, spec.stage_resolutions()), 1):
        print(f"{i:>5} {stage.block:>15} {stage.depth:>5} {stage.width:>6} {stage.stride:>6} {px:>4} "
              f"{stage.bottleneck_ratio:>5g} {stage.group_width:>5} {stage.se_ratio:>5g}  {_options(stage)}")
    print(f"flops {human(summary['flops'])}  params {human(summary['params'])}  "
          f"acts {human(summary['acts'])}  mac {human(summary['mac'])}")
    return 0


_SHOWN = {"depth", "width", "stride", "bottleneck_ratio", "group_width", "block", "se_ratio"}


def _options(stage) -> str:
    """The block-family options a stage sets away from their defaults (e.g. ``shortcut=avgpool radix=2``)."""
    return " ".join(f"{f.name}={getattr(stage, f.name)}" for f in dataclasses.fields(stage)
                    if f.name not in _SHOWN and getattr(stage, f.name) != f.default) or "-"
