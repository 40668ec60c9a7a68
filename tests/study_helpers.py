"""Helpers for the end-to-end study tests: tiny specs, CLI processes, reading the storage directly."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

def synthetic_study(name: str, *, n: int, spaces: tuple[str, ...] = ("regnetx", "anynetx_e"), train: int = 256,
                    test: int = 64, val_size: int = 64, epochs: int = 1, input_form: str | None = "imagenet",
                    measure_latency: bool | None = False, heartbeat: float | None = None,
                    stale_after: float | None = None) -> str:
    """The text of a study spec of the cheapest models (8 px synthetic data, under 400 KFLOPs), n per space: such
    studies exercise the study machinery (workers, storage, signals, scale), not design. A None leaves the key out,
    to its default ("imagenet": the cheapest networks at 8 px)."""
    lines = [f'name = "{name}"', "seed = 0"]
    if input_form is not None:
        lines.append(f'input_form = "{input_form}"')
    if measure_latency is not None:
        lines.append(f"measure_latency = {str(measure_latency).lower()}")
    lines += ["[dataset]", f'name = "synthetic:res=8,train={train},test={test}"', f"val_size = {val_size}",
              "[proxy]", f"epochs = {epochs}", "batch_size = 64", "train_fraction = 1.0",
              "[complexity]", 'flops = "0:400K"']
    for space in spaces:
        lines += ["[[spaces]]", f'space = "{space}"', f"n = {n}"]
    workers = {"heartbeat_interval": heartbeat, "stale_after": stale_after}
    if any(v is not None for v in workers.values()):
        lines += ["[workers]"] + [f"{key} = {value}" for key, value in workers.items() if value is not None]
    return "\n".join(lines) + "\n"


def tiny_study(name: str = "tiny", *, n: int = 3, train: int = 256, epochs: int = 1) -> str:
    """The end-to-end tests' study: latency measured, heartbeats fast enough for the stale-worker tests."""
    return synthetic_study(name, n=n, train=train, epochs=epochs, measure_latency=True, heartbeat=0.5,
                           stale_after=8)


def scale_study(name: str, *, models: int, heartbeat: float, stale_after: float) -> str:
    """The scale tests' and benchmark's population: ``models`` of the cheapest, half per space, so coordination is
    what is exercised."""
    return synthetic_study(name, n=models // 2, train=64, test=32, val_size=32, heartbeat=heartbeat,
                           stale_after=stale_after)


def tiny_spec(tmp_path: Path, *, name: str = "tiny", n: int = 3, train: int = 256, epochs: int = 1,
              storage: str | None = None) -> Path:
    text = tiny_study(name, n=n, train=train, epochs=epochs)
    if storage:
        text = f'storage = "{storage}"\n' + text
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def cli(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "regnet_space.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def start_cli(*args: str, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "w") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "regnet_space.cli", *args], stdout=out, stderr=subprocess.STDOUT)


def load(name: str, storage) -> optuna.Study:
    if isinstance(storage, Path):
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(storage / "study.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def complete_counts(study: optuna.Study) -> collections.Counter:
    """How many COMPLETE trials each (space, model_index) has: exactly 1 means trained once."""
    return collections.Counter((t.user_attrs["space"], t.user_attrs["model_index"])
                               for t in study.get_trials(states=(TrialState.COMPLETE,)))


# The design tests' and the fault-injection benchmark's design spec: one population of 20 of the cheapest models
# (8 px synthetic data, one epoch), fast heartbeats; {name} is the design's name.
DESIGN_SPEC = """
name = "{name}"
seed = 0
start = "anynetx_a"
population = 20
rounds = 1
alpha = 0.9
measure_latency = false
[dataset]
name = "synthetic:res=8,train=64,test=32"
val_size = 16
[proxy]
epochs = 1
batch_size = 64
train_fraction = 1.0
[complexity]
flops = "0:300K"
[workers]
heartbeat_interval = 0.5
stale_after = 3
"""
