"""``regnet-space profile``: measured latency of one or more models next to their flops, params, acts and
memory access cost, ranked by measured speed (FLOPs are not speed).

Latency is timed at batch 1 and throughput at ``--batch-size``, all models interleaved (one forward pass of
each per round) after a warm-up, by the protocol studies use (proxy/latency.py: one thread pinned to its CPU,
load recorded); the median, the interquartile spread and the robust coefficient of variation over the rounds
are shown. A model's latency is its fastest round (what agrees across runs on a loaded machine); one that
fewer than a quarter of the rounds came within 15% of is marked with ``!`` (unreliable).
GMAC/s is images/s x GMACs per image: the work each model gets done per second, i.e. its images/s per
GFLOP of cost, which exposes how far memory traffic and element-wise ops keep a model from the machine's peak.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..proxy.config import LATENCY_REPEATS as REPEATS, LATENCY_WARMUP as WARMUP
from ..threads import DEFAULT_THREADS
from . import positive_int

_DEFAULT_BATCH = {"cpu": 8, "cuda": 64}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("profile", help="measure models' latency and throughput beside their flops",
                                   description=__doc__)
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="catalog names (see `regnet-space models`) or JSON model files")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default: cpu)")
    parser.add_argument("--batch-size", type=positive_int,
                        help="the throughput batch (default: 8 on cpu, 64 on cuda); latency is always at batch 1")
    parser.add_argument("--resolution", type=positive_int, help="input resolution (default: the model's own)")
    parser.add_argument("--warmup", type=int, default=WARMUP, help=f"untimed rounds first (default: {WARMUP})")
    parser.add_argument("--repeats", type=positive_int, default=REPEATS, help=f"timed rounds (default: {REPEATS})")
    parser.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                        help="CPU threads (default 1, as study workers measure latency)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(handler=run)


def profile(names: list[str], *, device: str = "cpu", batch_size: int | None = None, resolution: int | None = None,
            warmup: int = WARMUP, repeats: int = REPEATS, threads: int | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Complexity and measured speed of each named model, ranked by batch-1 latency."""
    from ..models.complexity import complexity
    from ..models.memory import check_fits
    from ..models.resolve import resolve_model
    from ..proxy.latency import compare_latency

    batch_size = batch_size or _DEFAULT_BATCH[device]
    specs = [resolve_model(name, resolution=resolution) for name in names]
    for name, spec in zip(names, specs):
        check_fits(spec, batch_size, training=False, device=device, what=name)
    settings = dict(device=device, warmup=warmup, repeats=repeats, threads=threads, progress=progress)
    latency = compare_latency(specs, batch_size=1, **settings)
    throughput = compare_latency(specs, batch_size=batch_size, **settings)
    rows = []
    for name, spec, lat, thr in zip(names, specs, latency, throughput):
        cx = complexity(spec)
        rows.append({"model": name, "resolution": spec.resolution, **cx.to_dict(), "latency": lat.to_dict(),
                     "throughput": thr.to_dict(), "gmacs_per_s": thr.images_per_s * cx.flops / 1e9})
    for rank, row in enumerate(sorted(rows, key=lambda r: r["flops"]), 1):
        row["flops_rank"] = rank
    rows.sort(key=lambda r: r["latency"]["latency_ms"])
    for rank, row in enumerate(rows, 1):
        row["latency_rank"] = rank
    return {"device": device, "threads": latency[0].threads, "batch_size": batch_size, "warmup": warmup,
            "repeats": repeats, "load": latency[0].load, "models": rows}


def run(args: argparse.Namespace) -> int:
    from ..models.summary import human
    from ..proxy.data import resolve_device

    resolve_device(args.device)
    report = profile(args.models, device=args.device, batch_size=args.batch_size, resolution=args.resolution,
                     warmup=args.warmup, repeats=args.repeats, threads=args.threads)
    if args.json:
        print(json.dumps(report))
        return 0
    batch = report["batch_size"]
    load = "" if report["load"] is None else f"; load {report['load']:.2f} per CPU"
    print(f"device {report['device']}, {report['threads']} threads; {report['warmup']} warm-up + "
          f"{report['repeats']} timed rounds, models interleaved{load}; ranked by batch-1 latency")
    print(f"{'#':>2} {'model':<22} {'res':>4} {'flops':>8} {'params':>8} {'acts':>8} {'mac':>8} {'ms b1':>7} "
          f"{'median (IQR)':>15} {'cv':>5} {'img/s b1':>9} {f'img/s b{batch}':>10} {'GMAC/s':>7} {'flops#':>6}")
    for row in report["models"]:
        lat, thr = row["latency"], row["throughput"]
        print(f"{row['latency_rank']:>2} {row['model']:<22} {row['resolution']:>4} {human(row['flops']):>8} "
              f"{human(row['params']):>8} {human(row['acts']):>8} {human(row['mac']):>8} {lat['latency_ms']:>6.2f}"
              f"{' ' if lat['reliable'] else '!'} {lat['median_ms']:>7.2f} ({lat['spread_ms']:>5.2f}) {lat['cv']:>4.0%} "
              f"{lat['images_per_s']:>9.1f} {thr['images_per_s']:>10.1f} {row['gmacs_per_s']:>7.1f} "
              f"{row['flops_rank']:>6}")
    unreliable = [r["model"] for r in report["models"] if not r["latency"]["reliable"]]
    if unreliable:
        print(f"! unreliable (fewer than a quarter of the rounds within 15% of the fastest; a busy machine?): "
              f"{', '.join(unreliable)}")
    disagree = [r["model"] for r in report["models"] if r["latency_rank"] != r["flops_rank"]]
    if disagree:
        print(f"latency ranks differently from flops for: {', '.join(disagree)}")
    return 0
