"""``regnet-space best``: the best measured RegNet of a study as a config (best.json) that ``describe``, ``train``
and ``regnet_space.build_model`` accept: a model of a RegNet space, or an AnyNet model a RegNet reproduces within
e_fit 0.05 with the same stages. ``--verify`` trains the emitted config with the study's proxy and data."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from . import seed_int
from .edf import add_table_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("best", help="emit the best RegNet config of a study as JSON",
                                   description=__doc__)
    add_table_arguments(parser)
    parser.add_argument("--space", help="only models of this space")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of a summary")
    parser.add_argument("--out", metavar="best.json", help="also write the JSON to this file")
    parser.add_argument("--verify", action="store_true", help="train the emitted config with the study's proxy "
                        "and data (needs a study spec) and store its own error under \"verified\"")
    parser.add_argument("--seed", type=seed_int, default=0, help="training seed for --verify (default 0)")
    parser.add_argument("--device", default="cpu", help="device for --verify: cpu or cuda (default cpu)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import best, table
    from ..models.summary import human
    from ..userfiles import check_output, write_output

    if args.out:
        check_output(args.out, "best config")
    frame, meta = table.load(args.study, dir=args.dir, storage=args.storage)
    with warnings.catch_warnings():  # the same words are in config["warnings"], printed below
        warnings.simplefilter("ignore", RuntimeWarning)
        config = best.best_config(frame, meta, args.space)
    for note in config["warnings"]:
        print(f"warning: {note}", file=sys.stderr)
    if args.verify:
        config["verified"] = _verify(config, meta, seed=args.seed, device=args.device)
    text = json.dumps(config, indent=2)
    if args.out:
        write_output(args.out, text + "\n", "best config")
    if args.json:
        print(text)
        return 0
    source = config["measured"]
    twins = config.get("measurements", [])
    own = (f"not trained as emitted; its source model's val error {source['errors']['val']:.2f}%"
           if "errors" not in config else f"val error {config['errors']['val']:.2f}%"
           + (f" (the config measured {len(twins)}x: " + ", ".join(f"{t['space']} model {t['model_index']} "
                                                                  f"{t['error']:.2f}%" for t in twins) + ")"
              if len(twins) > 1 or twins and twins[0]["model_index"] != config.get("model_index") else ""))
    print(f"best RegNet of {config['space']}: {own}  ({config['source']}"
          + (f", e_fit {config['e_fit']:.3f}" if config["e_fit"] is not None else "") + ")")
    if "verified" in config:
        check = config["verified"]
        own = f"val error {check['val_error']:.2f}%" if check["val_error"] is not None else check["status"]
        print(f"  verified: the emitted config trained with the study's proxy: {own} "
              f"(source model {source['errors']['val']:.2f}%)")
    if "best_measured" in config:
        other = config["best_measured"]
        print(f"  the best measured RegNet: {other['space']} model {other['model_index']}, val error "
              f"{other['error']:.2f}%")
    if "study_best" in config and not config["study_best"]["is_regnet"]:
        other = config["study_best"]
        print(f"  (the study's lowest error, {other['error']:.2f}%, is a {other['space']} model that is no RegNet)")
    print(f"  depth={config['depth']} w0={config['w0']} wa={config['wa']} wm={config['wm']} "
          f"group_width={config['group_width']} bottleneck_ratio={config['bottleneck_ratio']} "
          f"se_ratio={config['se_ratio']}")
    print(f"  widths {config['widths']}  depths {config['depths']}  at {config['in_channels']}x"
          f"{config['resolution']}x{config['resolution']}, {config['num_classes']} classes")
    print(f"  flops {human(config['flops'])}  params {human(config['params'])}  acts {human(config['acts'])}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _verify(config: dict, meta: dict, *, seed: int, device: str) -> dict:
    """Train the emitted config with the study's proxy on the study's data: its own, measured error."""
    from ..errors import UserError
    from ..models.resolve import regnet_from_json
    from ..proxy.data import load_dataset
    from ..proxy.train import ProxyConfig, train_model

    if not meta.get("dataset") or meta.get("proxy") is None:
        raise UserError("--verify needs a study spec (its dataset and proxy), not a results table")
    data = load_dataset(**{**meta["dataset"], "device": device})
    spec = regnet_from_json(config).to_spec(resolution=config["resolution"], in_channels=config["in_channels"],
                                            num_classes=config["num_classes"])
    result = train_model(spec, data, ProxyConfig.from_dict(meta["proxy"]), seed=seed, device=device, progress=False)
    return {"val_error": result.val_error, "status": result.status, "seed": seed,
            "seconds": round(result.seconds, 1)}
