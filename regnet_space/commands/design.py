"""``regnet-space design SPEC``: the narrowing loop, automated. From the spec's start space, each round proposes
refinements from the data (and the paper's steps) and judges each at equal flops: with ``evaluation =
"paired"`` by pairs (a parent model and its projection into the candidate, trained with the same seed, looked at
in batches with group-sequential stopping), with ``"population"`` by a fresh population's EDF against the
parent's. A candidate is accepted when it is better, or not worse and proposed by the data; the final space is
then verified against the start (and ``references``) with fresh populations. One Optuna study per population
or batch of pairs, in the design's storage. Writes final_space.toml, lineage.json, results.csv,
design_report.html and best.json to runs/<name>/ (or --dir). Rerunning the same command resumes: trained models
are read back, only the rest is trained."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import positive_int
from .launch import add_launcher_arguments, launcher_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("design", help="narrow a design space round by round, tested by EDFs",
                                   description=__doc__)
    parser.add_argument("spec", metavar="SPEC", help="the design spec (TOML), e.g. experiments/design_fashion_mnist.toml")
    parser.add_argument("--workers", type=positive_int, help="worker processes, or SLURM array tasks, per "
                        "population (default: the spec's [launcher] workers, else 1)")
    parser.add_argument("--threads", type=positive_int, help="torch threads per worker (default 1: small models "
                        "keep no more busy, and on a shared machine more threads wait for each other)")
    parser.add_argument("--dir", help="where storage and outputs live (default runs/<name>/)")
    parser.add_argument("--storage", help="a database URL shared by many machines (default: the spec's `storage`, "
                        "else an embedded journal in --dir)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_launcher_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.best import best_config
    from ..design import design_space
    from ..design.report import binning_for
    from ..design.report import build_design_report
    from ..design.spec import load_design_spec
    from ..design.study_evaluate import StudyEvaluator
    from ..errors import UserError
    from ..proxy.config import ProxyConfig
    from ..proxy.data import load_dataset
    from ..spaces import load_space
    from ..study.runner import STORAGE_ENV
    from ..study.storage import folder_of, redact
    from ..userfiles import make_output_dir, write_output

    spec = load_design_spec(args.spec)
    directory = make_output_dir(folder_of(args.dir, spec.name), "design's storage and outputs")
    url = args.storage or os.environ.get(STORAGE_ENV) or spec.study.get("storage")
    settings = launcher_from_args(args, spec.study.get("launcher", {}))
    if args.detach:
        raise UserError("--detach: a design waits for each population's models before it chooses the next; run "
                        "the design itself as a batch job instead")
    start = load_space(spec.start)
    data = load_dataset(**spec.study.get("dataset", {}))
    evaluate = StudyEvaluator(spec, directory=directory, storage_url=url, workers=settings.workers or 1,
                              threads=args.threads, device=args.device, progress=not args.quiet,
                              slurm=settings if settings.launcher == "slurm" else None)
    where = redact(url) if url else str(directory)
    print(f"design {spec.name}: from {start.name}, populations of {spec.population}, {spec.evaluation} evaluation, "
          f"up to {spec.rounds} rounds"
          + (f" and {spec.budget} models" if spec.budget else "") + f", storage {where}", file=sys.stderr)
    try:
        result = design_space(start, evaluate, rounds=spec.rounds, population=spec.population, windows=spec.windows,
                              resolution=data.resolution, in_channels=data.in_channels,
                              num_classes=data.num_classes, seed=spec.seed, alpha=spec.alpha, budget=spec.budget,
                              evaluation=spec.evaluation, max_pairs=spec.max_pairs, verify=spec.verify,
                              references={name: load_space(name) for name in spec.references},
                              log=lambda line: print(line, file=sys.stderr))
    except KeyboardInterrupt:  # between populations as well as inside one: say what is kept and how to go on
        print(f"design {spec.name}: interrupted; every model trained so far is stored in {where} and the same "
              f"command resumes (`regnet-space study status {directory}/populations/<label>.toml` for one)",
              file=sys.stderr)
        raise
    write_output(directory / "final_space.toml", f"# {spec.name}: the space `regnet-space design` kept "
                 f"({result.stop})\n" + result.final_space.to_toml(), "final space")
    write_output(directory / "lineage.json", json.dumps({"stop": result.stop, "path": result.path,
                                                         "lineage": result.lineage,
                                                         "verification": result.verification}, indent=1) + "\n",
                 "lineage")
    results = result.results()
    write_output(directory / "results.csv", results.to_csv(index=False), "results")
    meta = {"name": spec.name, "dataset": spec.study.get("dataset"), "seed": spec.seed, "alpha": spec.alpha,
            "proxy": ProxyConfig.from_dict(spec.study.get("proxy", {})).to_dict(), "spec_text": spec.text}
    try:
        write_output(directory / "best.json", json.dumps(best_config(results, meta), indent=1) + "\n", "best config")
    except UserError as exc:  # no model of any round is a RegNet: there is no config to emit, which is a finding
        print(f"no best.json: {exc}", file=sys.stderr)
    binning = binning_for(spec.windows, spec.population, spec.bins)
    write_output(directory / "design_report.html",
                 build_design_report(result, meta, binning, figures_dir=str(directory / "figures")), "design report")
    for row in result.lineage:
        mark = "better" if row["better"] else ("accepted" if row["accepted"] else "rejected")
        p = "" if row["p"] is None else f" p_worse={row['p']:.3g} p_better={row['p_better']:.3g}"
        mean = "" if row["mean_error"] is None else f" mean {row['mean_error']:.2f}%"
        print(f"round {row['round']} {row['candidate']:<40} n={row['n']}{mean} {mark}{p}")
    for row in result.verification:
        print(f"verification: final space vs {row['against']} ({row['n']} fresh models each): mean "
              f"{row['mean_final']:.2f}% vs {row['mean_other']:.2f}%, p_better={row['p_better']:.3g} "
              f"p_worse={row['p_worse']:.3g} (Holm over {len(result.verification)}): {row['verdict']}")
    print(f"stopped: {result.stop}")
    print(f"wrote {directory}/final_space.toml, lineage.json, results.csv, design_report.html, best.json")
    return 0
