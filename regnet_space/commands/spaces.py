"""``regnet-space spaces``: the built-in design spaces, their sizes and what each one is."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("spaces", help="list the built-in design spaces with their sizes",
                                   description=__doc__ + " Size = distinct parameter settings.")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..spaces import builtin_spaces, load_space

    spaces = [load_space(name) for name in builtin_spaces()]
    width = max(len(space.name) for space in spaces)
    print(f"{'space':<{width}}  {'size':>8}  description")
    for space in spaces:
        print(f"{space.name:<{width}}  {space.size():>8.2g}  {space.description}")
    return 0
