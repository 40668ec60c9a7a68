"""``regnet-space study run|worker|status|export|repair``: population-sampling studies on Optuna storage."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import positive_int
from .launch import add_launcher_arguments, launcher_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("study", help="run, join, watch and export population-sampling studies",
                                   description=__doc__)
    study = parser.add_subparsers(dest="study_command", required=True, metavar="SUBCOMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("spec", metavar="SPEC", help="the study spec (TOML), e.g. experiments/quickstart.toml")
        sub.add_argument("--dir", help="where the embedded storage and outputs live (default runs/<study name>/)")
        sub.add_argument("--storage", help="a database URL shared by many machines, e.g. "
                         "postgresql+psycopg://user:pw@host/db (default: the spec's `storage`, else embedded)")

    run = study.add_parser("run", help="train the population with N workers: local processes or a SLURM job array")
    common(run)
    run.add_argument("--workers", type=positive_int, help="worker processes, or SLURM array tasks (default: the "
                     "spec's [launcher] workers, else 1; one per CPU you may use is the fastest)")
    run.add_argument("--threads", type=positive_int, help="torch threads per worker (default 1: small models keep "
                     "no more busy, and on a shared machine more threads wait for each other)")
    run.add_argument("--device", default="cpu", help="cpu or cuda (default cpu); local workers on `cuda` are spread "
                     "over the visible GPUs, one GPU each")
    run.add_argument("--workers-per-device", type=positive_int, help="local workers sharing each GPU, for small "
                     "proxies (default workers: GPUs x this)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    add_launcher_arguments(run)
    run.set_defaults(handler=_run)

    worker = study.add_parser("worker", help="join a study and train models until none is left")
    common(worker)
    worker.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    worker.add_argument("--threads", type=positive_int, help="torch threads (default 1)")
    worker.add_argument("--name", help="worker name stored with its models (default host:pid)")
    worker.set_defaults(handler=_worker)

    status = study.add_parser("status", help="per space: target, complete, running, failed, diverged, best")
    common(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=_status)

    repair = study.add_parser("repair", help="cut a torn study journal back to its last complete record "
                              "(keeps a backup)")
    repair.add_argument("spec", metavar="SPEC", help="the study spec (TOML)")
    repair.add_argument("--dir", help="the study's directory (default runs/<study name>/)")
    repair.set_defaults(handler=_repair)

    export = study.add_parser("export", help="one row per model to CSV, Parquet or JSONL")
    common(export)
    export.add_argument("--out", required=True, help="results.csv, results.parquet or results.jsonl")
    export.set_defaults(handler=_export)


def _repair(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import UserError
    from ..study.session import study_dir
    from ..study.spec import load_study_spec
    from ..study.storage import JOURNAL_FILE, repair_journal

    spec = load_study_spec(args.spec)
    journal = study_dir(spec, args.dir) / JOURNAL_FILE
    if not Path(journal).is_file():
        raise UserError(f"no study journal at {journal} (pass --dir); database storage needs no repair")
    kept, dropped, backup = repair_journal(Path(journal))
    if backup is None:
        print(f"{journal}: {kept} records, nothing damaged; left as it is", file=sys.stderr)
    else:
        print(f"{journal}: kept {kept} complete records, dropped {dropped} bytes of damaged tail; the damaged file "
              f"is saved as {backup}", file=sys.stderr)
    return 0


def _spec_and_url(args: argparse.Namespace):
    """The study spec and the storage URL given by --storage or the environment (None: the spec's own, or the
    journal)."""
    from ..study.runner import STORAGE_ENV
    from ..study.spec import load_study_spec

    return load_study_spec(args.spec), args.storage or os.environ.get(STORAGE_ENV)


def _session(args: argparse.Namespace, *, create: bool):
    from ..study.session import open_study

    spec, url = _spec_and_url(args)
    return open_study(spec, directory=args.dir, storage_url=url, create=create), url


def _run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..proxy.data import resolve_device
    from ..study.results import status_summary
    from ..study.runner import idle_cpus_note, run_local

    resolve_device(args.device)
    session, url = _session(args, create=True)
    settings = launcher_from_args(args, session.spec.launcher)
    workers, worker_env = settings.workers or 1, None
    if settings.launcher == "slurm" and args.workers_per_device:
        raise UserError("--workers-per-device applies to local workers; SLURM gives each array task its own GPUs "
                        "(--gpus-per-worker)")
    if settings.launcher == "local":
        from ..study.devices import plan_devices

        workers, worker_env = plan_devices(settings.workers, args.device, args.workers_per_device)
    where = "SLURM array task(s)" if settings.launcher == "slurm" else "worker(s)"
    print(f"study {session.spec.name}: {session.spec.total} models in {len(session.spec.spaces)} spaces, "
          f"{workers} {where}, storage {session.location}", file=sys.stderr)
    _warn_tiny_stages(session.spec)
    if settings.launcher == "slurm":
        from ..study.slurm import run_slurm

        code = run_slurm(session, settings, workers=workers, directory=args.dir, storage_url=url,
                         device=args.device, detach=args.detach, progress=not args.quiet)
        if args.detach:
            return code
    else:
        note = idle_cpus_note(workers, args.threads) if args.device == "cpu" else None
        if note:
            print(f"note: {note}", file=sys.stderr)
        code = run_local(session, workers=workers, directory=args.dir, storage_url=url, device=args.device,
                         progress=not args.quiet, worker_env=worker_env, threads=args.threads)
    if code == 0:
        _print_table(status_summary(session))
    return code


def _warn_tiny_stages(spec) -> None:
    """Warn before training when models of the population have a stage at <= 2x2 px (the data's shape fixes the
    population, so this reads as much of the dataset as its shape needs)."""
    from ..proxy.data import dataset_shape
    from ..study.population import DataShape, build_population, tiny_stage_warning

    warning = tiny_stage_warning(build_population(spec, DataShape(*dataset_shape(**spec.dataset))))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def _worker(args: argparse.Namespace) -> int:
    from ..proxy.data import resolve_device
    from ..study.worker import run_worker
    from ..threads import DEFAULT_THREADS, oversubscription

    resolve_device(args.device)
    warning = oversubscription(args.threads or DEFAULT_THREADS) if args.device == "cpu" else None
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    session, _ = _session(args, create=True)
    try:
        report = run_worker(session, device=args.device, threads=args.threads, name=args.name)
    except KeyboardInterrupt:
        print("worker interrupted; its running model was marked interrupted", file=sys.stderr)
        return 130
    print(f"worker done: {report.trained} trained, {report.failed} failed", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..study.results import stored_status

    spec, url = _spec_and_url(args)
    summary = stored_status(spec, directory=args.dir, storage_url=url)
    jobs = _slurm_jobs(spec, args.dir)
    if jobs:
        summary["slurm_jobs"] = jobs
    if args.json:
        print(json.dumps(summary))
    else:
        _print_table(summary)
        for job in jobs:
            states = job["states"]
            shown = ("squeue not available" if states is None
                     else ", ".join(f"{n} {state}" for state, n in sorted(states.items()) if n))
            print(f"SLURM job {job['job']} ({job['workers']} task(s)): {shown}")
    return 0


def _slurm_jobs(spec, directory: str | None) -> list[dict]:
    """The SLURM job arrays `study run --launcher slurm` submitted for this study folder, with their tasks' states."""
    from ..study.session import study_dir
    from ..study.slurm import jobs_status

    return jobs_status(study_dir(spec, directory))


def _export(args: argparse.Namespace) -> int:
    from ..study.results import check_export_path, export_rows, stored_model_rows

    check_export_path(args.out)
    spec, url = _spec_and_url(args)
    _, rows = stored_model_rows(spec, directory=args.dir, storage_url=url)
    export_rows(rows, args.out)
    print(f"wrote {len(rows)} models to {args.out}", file=sys.stderr)
    return 0


def _print_table(summary: dict) -> None:
    print(f"study {summary['study']} ({summary['storage']}): {summary['complete']}/{summary['total']} complete"
          + (f", ETA {summary['eta_seconds'] / 60:.1f} min" if summary.get("eta_seconds") else ""))
    print(f"{'space':>16} {'target':>6} {'done':>6} {'run':>5} {'fail':>5} {'pend':>5} {'div':>5} {'best err %':>10}")
    for label, s in summary["spaces"].items():
        best = f"{s['best_val_error']:.2f}" if s["best_val_error"] is not None else "-"
        print(f"{label:>16} {s['target']:>6} {s['complete']:>6} {s['running']:>5} {s['failed']:>5} "
              f"{s['pending']:>5} {s['diverged']:>5} {best:>10}")
    print("fail: given up after max_attempts failures. Optuna (and optuna-dashboard) shows every failed attempt as "
          "FAIL, interrupted ones too; here an interrupted model is pending and the next run trains it again.")
    for failed in summary.get("failed_models", [])[:10]:
        print(f"failed for good: {failed['space']} #{failed['model_index']} after {failed['failures']} failures: "
              f"{failed['error']}")
