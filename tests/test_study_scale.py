"""Coordination at population scale (issue 11): 4 workers over hundreds to thousands of tiny models end with
every model complete exactly once and enqueued exactly once, on the journal and on PostgreSQL, where the
workers are "hosts" (separate --dir, only the URL in common), and across a PostgreSQL restart mid-study.
Correctness only; benchmarks/study_scale.py measures the speed."""

from __future__ import annotations

import collections
import time

import optuna
import pytest
from optuna.trial import TrialState

from study_helpers import load, scale_study, start_cli


def scale_spec(tmp_path, name: str, n: int):
    path = tmp_path / f"{name}.toml"
    path.write_text(scale_study(name, models=n, heartbeat=1, stale_after=30))
    return path


def start_workers(spec, tmp_path, count: int, storage: str | None, tag: str):
    """`count` worker processes; with a database URL each has its own --dir, as on separate machines."""
    workers = []
    for i in range(count):
        where = (["--storage", storage, "--dir", str(tmp_path / f"host{i}")] if storage
                 else ["--dir", str(tmp_path / "d")])
        workers.append(start_cli("study", "worker", str(spec), *where, "--name", f"{tag}{i}", "--threads", "1",
                                 log=tmp_path / f"{tag}{i}.log"))
    return workers


def assert_exactly_once(study: optuna.Study, n: int, tmp_path, tag: str, count: int) -> None:
    trials = study.get_trials(deepcopy=False)
    complete = collections.Counter((t.user_attrs["space"], t.user_attrs["model_index"]) for t in trials
                                   if t.state == TrialState.COMPLETE)
    assert len(complete) == n, [(tmp_path / f"{tag}{i}.log").read_text()[-2000:] for i in range(count)]
    assert set(complete.values()) == {1}  # no model trained twice
    enqueued = collections.Counter((t.user_attrs["space"], t.user_attrs["model_index"]) for t in trials
                                   if not t.user_attrs.get("lost"))
    assert set(enqueued.values()) == {1}  # each model enqueued once (plus one retry per lost trial, if any)
    assert not [t for t in trials if t.user_attrs.get("superseded")]


def run_population(tmp_path, n: int, storage: str | None, *, restart=None, timeout: float = 1800) -> None:
    name = f"scale{n}{'pg' if storage else 'j'}{'r' if restart else ''}"
    spec = scale_spec(tmp_path, name, n)
    workers = start_workers(spec, tmp_path, 4, storage, "w")
    try:
        if restart is not None:
            study_storage = optuna.storages.RDBStorage(storage)
            deadline = time.time() + timeout
            while time.time() < deadline:  # restart once a fifth of the population is done
                try:
                    done = study_storage.get_n_trials(
                        study_storage.get_study_id_from_name(name), state=TrialState.COMPLETE)
                except KeyError:
                    done = 0
                if done >= n // 5:
                    break
                time.sleep(0.5)
            study_storage.engine.dispose()
            restart()
        codes = [w.wait(timeout=timeout) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert codes == [0] * 4, [(tmp_path / f"w{i}.log").read_text()[-2000:] for i in range(4)]
    study = load(name, optuna.storages.RDBStorage(storage) if storage else tmp_path / "d")
    assert_exactly_once(study, n, tmp_path, "w", 4)


def test_four_workers_on_the_journal_train_200_models_exactly_once(tmp_path):
    run_population(tmp_path, 200, None)


def test_four_hosts_on_postgres_train_200_models_exactly_once(tmp_path, postgres_url):
    pytest.importorskip("psycopg")
    run_population(tmp_path, 200, postgres_url)


@pytest.mark.slow
def test_four_workers_on_the_journal_train_1000_models_exactly_once(tmp_path):
    run_population(tmp_path, 1000, None)


@pytest.mark.slow
def test_four_hosts_on_postgres_train_1000_models_exactly_once(tmp_path, postgres_url):
    pytest.importorskip("psycopg")
    run_population(tmp_path, 1000, postgres_url)


@pytest.mark.slow
def test_a_postgres_restart_mid_study_loses_and_duplicates_nothing(tmp_path, postgres_server):
    pytest.importorskip("psycopg")
    run_population(tmp_path, 1000, postgres_server.url, restart=postgres_server.restart)
