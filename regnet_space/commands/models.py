"""``regnet-space models``: every named model (the RegNet zoo and the ResNet-family presets) with its family
and complexity at its own input size (224x224, 1000 classes)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the named models with family, flops and params",
                                   description=__doc__)
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(handler=run)


def family(entry: Any) -> str:
    """RegNetX/RegNetY for a zoo entry, the preset's own family otherwise."""
    from ..models.regnet import RegNetParams

    if isinstance(entry, RegNetParams):
        return "RegNetY" if entry.se_ratio else "RegNetX"
    return getattr(entry, "family", "other")


def rows() -> list[dict[str, Any]]:
    from ..models.complexity import complexity
    from ..models.resolve import catalog, resolve_model

    result = []
    for name, entry in catalog().items():
        cx = complexity(resolve_model(name))
        result.append({"name": name, "family": family(entry), "flops": cx.flops, "params": cx.params,
                       "acts": cx.acts, "mac": cx.mac})
    return result


def run(args: argparse.Namespace) -> int:
    from ..models.summary import human

    table = rows()
    if args.json:
        print(json.dumps(table))
        return 0
    print(f"{'model':<24} {'family':<14} {'flops':>9} {'params':>9} {'acts':>9} {'mac':>9}")
    for row in table:
        print(f"{row['name']:<24} {row['family']:<14} {human(row['flops']):>9} {human(row['params']):>9} "
              f"{human(row['acts']):>9} {human(row['mac']):>9}")
    return 0
