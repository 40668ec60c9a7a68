"""Storage outages are ridden out for `[workers] outage_timeout`; a wrong password or a missing database fails
at once with its own message (defect 4: a 15 s outage ended the workers, a wrong password was retried 6 times
and reported as a lost storage)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.exc import OperationalError

from regnet_space.errors import UserError
from regnet_space.study.storage import retry


def dropped():
    return OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


def test_retry_rides_out_an_outage_for_the_whole_window():
    calls, start = [], time.monotonic()

    def down_for_a_while():
        calls.append(1)
        if time.monotonic() - start < 1.0:
            raise dropped()
        return "back"

    # 6 attempts of the old fixed budget would have given up after ~0.6 s at this delay
    assert retry(down_for_a_while, what="testing", first_delay=0.02, max_delay=0.05, timeout=5) == "back"
    assert len(calls) > 6


def test_retry_gives_up_after_the_window_with_a_clear_message():
    def always_down():
        raise dropped()

    start = time.monotonic()
    with pytest.raises(UserError, match=r"lost the study storage while testing, after \d+ s"):
        retry(always_down, what="testing", first_delay=0.05, timeout=0.5)
    assert 0.3 < time.monotonic() - start < 2


@pytest.mark.parametrize("message, expected", [
    ('connection failed: FATAL:  password authentication failed for user "bob"', "user name or password"),
    ('connection failed: FATAL:  database "nope" does not exist', "no such database"),
    ("connection failed: FATAL:  no pg_hba.conf entry for host", "pg_hba.conf"),
])
def test_authentication_and_missing_database_fail_at_once(message, expected):
    calls = []

    def refused():
        calls.append(1)
        raise OperationalError("connect", {}, Exception(message))

    with pytest.raises(UserError, match=expected):
        retry(refused, what="connecting", first_delay=1, timeout=600)
    assert len(calls) == 1


def test_missing_database_on_a_real_server(tmp_path, postgres_url):
    from study_helpers import cli, tiny_spec

    spec = tiny_spec(tmp_path, name="nodb", n=1)
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    start = time.monotonic()
    result = cli("study", "status", str(spec), "--storage", url)
    assert result.returncode == 2 and "no such database" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "sup3rsecret" not in result.stderr
    assert time.monotonic() - start < 30


def test_a_read_broken_by_a_server_restart_is_retried():
    """Optuna retries a failed read on the same session; SQLAlchemy then raises PendingRollbackError, wrapped in
    StorageInternalError (seen when `pg_ctl restart` cut a worker's claim): still a dropped connection."""
    import optuna
    from sqlalchemy.exc import PendingRollbackError

    calls = []

    def broken_then_fine():
        calls.append(1)
        if len(calls) == 1:
            try:
                try:
                    raise dropped()
                except OperationalError:
                    raise PendingRollbackError("Can't reconnect until invalid transaction is rolled back")
            except PendingRollbackError as exc:
                raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
        return "back"

    assert retry(broken_then_fine, what="claiming", first_delay=0.01, timeout=5) == "back"
    assert len(calls) == 2
