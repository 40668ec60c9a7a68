"""``regnet-space train``: train one model with the proxy recipe (or a longer one) and report its error."""

from __future__ import annotations

import argparse
import json

from ..threads import DEFAULT_THREADS
from . import add_model_arguments, positive_int, seed_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train one model on a dataset and report its validation error",
                                   description=__doc__ + " Flags left out keep the default proxy's values.")
    add_model_arguments(parser, data_flags=False)
    parser.add_argument("--dataset", default="fashion-mnist",
                        help="fashion-mnist (default), cifar10:DIR, folder:DIR or synthetic[:train=N,res=R,...]")
    parser.add_argument("--data-dir", help="directory of the dataset's files (fashion-mnist: the four IDX .gz files; "
                        "default /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--epochs", type=positive_int)
    parser.add_argument("--train-fraction", type=float, help="fraction of the training split to train on")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--batch-size", type=positive_int)
    parser.add_argument("--augment", action="store_true", help="random crops (and flips where they keep the label)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of init, batch order and augmentation")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation split")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                        help="torch intra-op threads (default 1: a small model keeps no more busy, and on a shared "
                        "machine more threads wait for each other)")
    parser.add_argument("--time-limit", type=float, metavar="SECONDS", help="stop with status timeout after this")
    parser.add_argument("--test", action="store_true", help="also report the test-set error (for reporting only)")
    parser.add_argument("--json", action="store_true", help="end with one JSON object on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..models.resolve import resolve_model
    from ..proxy.data import load_dataset
    from ..proxy.train import ProxyConfig, train_model

    overrides = {key: value for key, value in (("epochs", args.epochs), ("train_fraction", args.train_fraction),
                                               ("lr", args.lr), ("batch_size", args.batch_size))
                 if value is not None}
    config = ProxyConfig().replace(**overrides)
    dataset = load_dataset(args.dataset, args.data_dir, seed=args.split_seed, device=args.device, augment=args.augment)
    spec = resolve_model(args.model, regnet=args.regnet, resolution=dataset.resolution,
                         in_channels=dataset.in_channels, num_classes=dataset.num_classes)
    result = train_model(spec, dataset, config, seed=args.seed, device=args.device, time_limit=args.time_limit,
                         progress=not args.no_progress, threads=args.threads, report_test=args.test)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    errors = f"val error {_percent(result.val_error)} (best {_percent(result.best_val_error)})"
    if args.test:
        errors += f", test error {_percent(result.test_error)}"
    diverged = f" in epoch {result.diverged_epoch}" if result.status == "diverged" else ""
    print(f"{result.status}{diverged}: {errors} after {result.epochs} epoch(s); "
          f"{result.images_per_s:,.0f} images/s, {result.seconds:.1f} s ({result.precision}, "
          f"{'channels_last' if result.channels_last else 'NCHW'}, {result.threads} threads)")
    return 0


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"
