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
