"""``regnet-space export``: a model as timm ``RegNetCfg`` kwargs (JSON), a pycls config (yaml) or ONNX.

See regnet_space/export.py for what each format can express; what it cannot is refused with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="write a model for timm (JSON), pycls (yaml) or ONNX",
                                   description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--format", required=True, choices=("timm", "pycls", "onnx"))
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("--weights", metavar="FILE", help="onnx: a state dict (torch.save(model.state_dict(), F)) "
                        "to export instead of the seed-0 initialisation")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..models.export import export_onnx, pycls_yaml, timm_config
    from ..models.resolve import regnet_params_of, resolve_model
    from ..userfiles import check_output, write_output

    check_output(args.out, f"{args.format} export")
    spec = resolve_model(args.model, regnet=args.regnet, resolution=args.resolution,
                         in_channels=args.in_channels, num_classes=args.num_classes)
    if args.weights and args.format != "onnx":
        raise UserError("--weights: only --format onnx carries weights")
    if args.format == "onnx":
        write_output(args.out, export_onnx(spec, weights=args.weights), "onnx export")
    else:
        regnet = regnet_params_of(args.model, args.regnet)
        text = (json.dumps(timm_config(spec, regnet), indent=2) + "\n" if args.format == "timm"
                else pycls_yaml(spec, regnet))
        write_output(args.out, text, f"{args.format} export")
    print(f"wrote {args.out} ({args.format})", file=sys.stderr)
    return 0
