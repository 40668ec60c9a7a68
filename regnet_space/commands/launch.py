"""The launcher flags shared by ``study run`` and ``design``: local worker processes, or one SLURM job array."""

from __future__ import annotations

import argparse

from . import non_negative_int, positive_int


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and what a SLURM array task asks for; each defaults to the spec's ``[launcher]`` table."""
    group = parser.add_argument_group("launcher", "where the workers run (default: the spec's [launcher] table, "
                                      "else local processes)")
    group.add_argument("--launcher", choices=("local", "slurm"), help="local worker processes, or the workers as "
                       "one SLURM job array (sbatch) running `study worker` each")
    group.add_argument("--partition", help="SLURM partition")
    group.add_argument("--gpus-per-worker", type=non_negative_int, help="GPUs per array task (--gres=gpu:G); "
                       "the worker trains on the one SLURM gives it")
    group.add_argument("--cpus-per-worker", type=positive_int, help="CPUs per array task (and the worker's torch "
                       "threads; default 1)")
    group.add_argument("--mem", help="memory per array task, e.g. 8G")
    group.add_argument("--time", help="time limit per array task, HH:MM:SS; near it the task is stopped and "
                       "requeued")
    group.add_argument("--slurm-arg", action="append", metavar="KEY=VALUE", type=_slurm_arg,
                       help="any other sbatch option, e.g. account=lab (repeatable)")
    group.add_argument("--detach", action="store_true", help="with SLURM: print the job id and return at once")


def _slurm_arg(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    if not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value.strip()


def launcher_from_args(args: argparse.Namespace, table: dict):
    """The spec's ``[launcher]`` table with the flags given on top (checked like the table)."""
    from ..study.launcher import merged_settings

    from ..errors import UserError

    slurm_only = {"partition": args.partition, "gpus_per_worker": args.gpus_per_worker,
                  "cpus_per_worker": args.cpus_per_worker, "mem": args.mem, "time": args.time}
    flags = {"launcher": args.launcher, "workers": args.workers, **slurm_only,
             "slurm_args": dict(args.slurm_arg or [])}
    settings = merged_settings(table, flags)
    if settings.launcher == "local":
        given = [f"--{key.replace('_', '-')}" for key, value in slurm_only.items() if value is not None]
        given += ["--slurm-arg"] * bool(args.slurm_arg) + ["--detach"] * args.detach
        if given:
            raise UserError(f"{given[0]} applies to SLURM workers: add --launcher slurm (or launcher = \"slurm\" "
                            f"in the spec's [launcher] table)")
    return settings
