"""One study on a real PostgreSQL server shared by two worker processes (as on two machines)."""

import json

import optuna
import pytest

pytest.importorskip("psycopg", reason="the PostgreSQL driver is not installed (pip install -e '.[test]')")

from study_helpers import cli, complete_counts, load, start_cli, tiny_spec


def test_two_workers_share_a_postgres_study(tmp_path, postgres_url):
    spec = tiny_spec(tmp_path, name="pg", n=3)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [start_cli("study", "worker", str(spec), "--storage", postgres_url, "--name", f"w{i}",
                         "--threads", "1", log=log) for i, log in enumerate(logs, 1)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0], [log.read_text() for log in logs]
    study = load("pg", optuna.storages.RDBStorage(postgres_url))
    counts = complete_counts(study)
    assert len(counts) == 6 and set(counts.values()) == {1}
    assert {t.user_attrs["worker"] for t in study.trials if t.user_attrs.get("worker")} <= {"w1", "w2"}
    status = cli("study", "status", str(spec), "--storage", postgres_url, "--json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["complete"] == 6
    export = tmp_path / "out.jsonl"
    assert cli("study", "export", str(spec), "--storage", postgres_url, "--out", str(export)).returncode == 0
    table = cli("study", "status", str(spec), "--storage", postgres_url)
    for text in (status.stdout, status.stderr, table.stdout, export.read_text(), *(log.read_text() for log in logs)):
        assert "sup3rsecret" not in text
    assert "postgres:***@" in table.stdout


def test_unreachable_database_fails_with_a_clear_message(tmp_path):
    spec = tiny_spec(tmp_path, name="nodb", n=1)
    url = "postgresql+psycopg://bob:hunter2@127.0.0.1:1/none"
    result = cli("study", "status", str(spec), "--storage", url, timeout=120)
    assert result.returncode == 2
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
    assert "bob:***@127.0.0.1" in result.stderr


def test_status_of_a_database_without_optuna_tables_says_there_is_no_study(tmp_path, postgres_server):
    # `study status` opens a database without Optuna's table creation and schema check (a reader's shortcut);
    # a database with no tables at all must still give the plain message, not an SQL error.
    postgres_server.pg("createdb", "-h", "127.0.0.1", "-p", str(postgres_server.port), "-U", "postgres", "empty")
    url = postgres_server.url.rsplit("/", 1)[0] + "/empty"
    result = cli("study", "status", str(tiny_spec(tmp_path, name="absent", n=1)), "--storage", url)
    assert result.returncode == 2, result.stderr
    assert "no study named 'absent'" in result.stderr and "Traceback" not in result.stderr


def test_status_and_export_read_postgres_as_optuna_stores_it(tmp_path, postgres_server):
    """`study status` reads PostgreSQL with two statements through a plain engine (session.read_postgres_study),
    not through Optuna's storage, and an export reads every trial's attributes and parameters with two more
    (snapshot.postgres_trial_views): both must see every trial as Optuna does, and status make open_study's
    checks."""
    from optuna.trial import TrialState

    from regnet_space.errors import UserError
    from regnet_space.study.results import _STATUS_ATTRS, status_summary, stored_status
    from regnet_space.study.session import open_study, read_postgres_study
    from regnet_space.study.snapshot import postgres_trial_views
    from regnet_space.study.spec import load_study_spec

    postgres_server.pg("createdb", "-h", "127.0.0.1", "-p", str(postgres_server.port), "-U", "postgres", "reader")
    url = postgres_server.url.rsplit("/", 1)[0] + "/reader"
    spec = load_study_spec(str(tiny_spec(tmp_path, name="s", n=4)))
    optuna.create_study(study_name="other", storage=url).enqueue_trial({"x": 1.0})  # ids count other studies too
    session = open_study(spec, storage_url=url)
    storage, study = session.storage, session.study
    distributions = {"depth": optuna.distributions.IntDistribution(1, 16),
                     "wm": optuna.distributions.FloatDistribution(1.5, 3.0, log=True),
                     "block": optuna.distributions.CategoricalDistribution(["x", "y", None, 2])}
    for i in range(6):
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params={"depth": i + 1, "wm": 1.5 + i / 4, "block": [None, "y", 2][i % 3]},
            distributions=distributions, user_attrs={"space": spec.spaces[i % 2].label, "model_index": i // 2,
                                                     "spec": "{}", "flops": 1000 + i, "param_legacy": [i, "a"]}))
    ids = [t._trial_id for t in storage.get_all_trials(study._study_id)]
    for trial_id in ids[:4]:
        storage.set_trial_state_values(trial_id, TrialState.RUNNING)
        storage.set_trial_user_attr(trial_id, "heartbeat", 4e9)  # fresh until 2096
        storage.set_trial_user_attr(trial_id, "worker", "w0")  # not a status attribute
    for trial_id, error in ((ids[0], 12.5), (ids[3], float("nan"))):
        storage.set_trial_user_attr(trial_id, "val_error", error)
        storage.set_trial_user_attr(trial_id, "seconds", 2.0)
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [error])
    storage.set_trial_user_attr(ids[1], "error", "boom")
    storage.set_trial_state_values(ids[1], TrialState.FAIL)

    location, views = read_postgres_study(spec, url, _STATUS_ATTRS)
    assert "postgres:***@" in location
    expected = storage.get_all_trials(study._study_id)
    assert [(v._trial_id, v.number, v.state, v.datetime_start, v.user_attrs) for v in views] == [
        (t._trial_id, t.number, t.state, t.datetime_start,
         {k: t.user_attrs[k] for k in _STATUS_ATTRS if k in t.user_attrs}) for t in expected]
    assert views[0].value == 12.5 and views[0]._trial_id == ids[0] > 1
    whole = postgres_trial_views(storage.engine, study._study_id, None, params=True)  # what an export reads
    assert [(v.number, v.state, v.user_attrs, v.params) for v in whole] == [
        (t.number, t.state, t.user_attrs, t.params) for t in expected]
    assert whole[2].params == {"depth": 3, "wm": 2.0, "block": 2} and whole[2].user_attrs["param_legacy"] == [2, "a"]
    fast, through_optuna = stored_status(spec, directory=None, storage_url=url), status_summary(session)
    fast.pop("time"), through_optuna.pop("time")
    assert fast == through_optuna and fast["complete"] == 2

    (tmp_path / "changed").mkdir()
    changed = load_study_spec(str(tiny_spec(tmp_path / "changed", name="s", n=5)))
    with pytest.raises(UserError, match="created from a different spec"):
        stored_status(changed, directory=None, storage_url=url)
    absent = load_study_spec(str(tiny_spec(tmp_path, name="absent", n=1)))
    with pytest.raises(UserError, match="no study named 'absent'"):
        stored_status(absent, directory=None, storage_url=url)
