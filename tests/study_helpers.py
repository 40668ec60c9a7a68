"""Helpers for the end-to-end study tests: tiny specs, CLI processes, reading the storage directly."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

TINY = """
name = "{name}"
seed = 0
input_form = "imagenet"  # the cheapest networks at 8 px: these tests exercise the study machinery, not design
measure_latency = true
[dataset]
name = "synthetic:res=8,train={train},test=64"
val_size = 64
[proxy]
epochs = {epochs}
batch_size = 64
train_fraction = 1.0
[complexity]
flops = "0:400K"
[[spaces]]
space = "regnetx"
n = {n}
[[spaces]]
space = "anynetx_e"
n = {n}
[workers]
heartbeat_interval = 0.5
stale_after = 8
"""


# A population of the cheapest models, so coordination is what is exercised (scale tests and benchmark).
SCALE = """
name = "{name}"
seed = 0
input_form = "imagenet"
measure_latency = false
[dataset]
name = "synthetic:res=8,train=64,test=32"
val_size = 32
[proxy]
epochs = 1
batch_size = 64
train_fraction = 1.0
[complexity]
flops = "0:400K"
[[spaces]]
space = "regnetx"
n = {half}
[[spaces]]
space = "anynetx_e"
n = {half}
[workers]
heartbeat_interval = {heartbeat}
stale_after = {stale_after}
"""

def tiny_spec(tmp_path: Path, *, name: str = "tiny", n: int = 3, train: int = 256, epochs: int = 1,
              storage: str | None = None) -> Path:
    text = TINY.format(name=name, n=n, train=train, epochs=epochs)
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
