"""Launcher settings: how `study run` and `design` start their workers, from a spec's ``[launcher]`` table and
the flags (flags win). Kept apart from study.slurm, which submits, so the spec parser can check the table without
importing the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError

LAUNCHERS = ("local", "slurm")


@dataclass(frozen=True)
class SlurmSettings:
    """What each array task asks SLURM for; from the spec's ``[launcher]`` table, overridden by flags."""

    launcher: str = "local"
    workers: int | None = None
    partition: str | None = None
    gpus_per_worker: int = 0
    cpus_per_worker: int = 1
    mem: str | None = None
    time: str | None = None
    requeue_before: int = 90  # seconds: SLURM's warning signal before the time limit (submitit's default too)
    max_requeues: int = 20  # per array task: bounds a loop of tasks that never finish a model in time
    slurm_args: dict[str, str] = field(default_factory=dict)

    def sbatch_options(self) -> list[str]:
        """The ``#SBATCH`` options other than the array, output and signal ones."""
        options = ["--ntasks=1", f"--cpus-per-task={self.cpus_per_worker}"]
        if self.partition:
            options.append(f"--partition={self.partition}")
        if self.gpus_per_worker:
            options.append(f"--gres=gpu:{self.gpus_per_worker}")  # SLURM sets CUDA_VISIBLE_DEVICES to them
        if self.mem:
            options.append(f"--mem={self.mem}")
        if self.time:
            options.append(f"--time={self.time}")
        options += [f"--{key}={value}" if value != "" else f"--{key}" for key, value in self.slurm_args.items()]
        return options


_INT_KEYS = {"workers": 1, "gpus_per_worker": 0, "cpus_per_worker": 1, "requeue_before": 1, "max_requeues": 0}
_TEXT_KEYS = ("launcher", "partition", "mem", "time")
LAUNCHER_KEYS = (*_TEXT_KEYS, *_INT_KEYS, "slurm_args")


def launcher_settings(table: dict[str, Any], where: str = "launcher") -> SlurmSettings:
    """Validate a ``[launcher]`` table (or the flags, as a dict of the same keys); every error names the key."""
    unknown = sorted(set(table) - set(LAUNCHER_KEYS))
    if unknown:
        raise UserError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(LAUNCHER_KEYS)})")
    values: dict[str, Any] = {}
    for key in _TEXT_KEYS:
        if table.get(key) is not None:
            if not isinstance(table[key], str) or not table[key]:
                raise UserError(f"{where}.{key}: must be a non-empty string, got {table[key]!r}")
            values[key] = table[key]
    for key, low in _INT_KEYS.items():
        value = table.get(key)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UserError(f"{where}.{key}: must be an integer >= {low}, got {value!r}")
            values[key] = value
    if values.get("launcher", "local") not in LAUNCHERS:
        raise UserError(f"{where}.launcher: must be one of {', '.join(LAUNCHERS)}, got {values['launcher']!r}")
    args = table.get("slurm_args") or {}
    if not isinstance(args, dict) or not all(isinstance(k, str) and isinstance(v, (str, int)) and not isinstance(v, bool)
                                             for k, v in args.items()):
        raise UserError(f"{where}.slurm_args: must be a table of sbatch options, e.g. {{ account = \"lab\" }}")
    for key in args:
        if not key or key.startswith("-") or any(c.isspace() for c in key) or key in ("array", "output", "signal"):
            raise UserError(f"{where}.slurm_args: {key!r} is not an sbatch option this launcher lets you set "
                            f"(give it without dashes; array, output and signal are the launcher's)")
    values["slurm_args"] = {k: str(v) for k, v in args.items()}
    return SlurmSettings(**values)


def merged_settings(spec_table: dict[str, Any], flags: dict[str, Any]) -> SlurmSettings:
    """The spec's ``[launcher]`` table with the flags that were given (not None) on top; ``slurm_args`` merge
    key by key."""
    table = {**spec_table, **{k: v for k, v in flags.items() if v is not None and k != "slurm_args"}}
    table["slurm_args"] = {**spec_table.get("slurm_args", {}), **(flags.get("slurm_args") or {})}
    return launcher_settings(table)

