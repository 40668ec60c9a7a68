"""Where a study lives: Optuna storage, embedded by default, a database URL across machines.

The embedded default is Optuna's JournalStorage on a file in the study directory: several local processes
can share it safely (SQLite cannot: two processes may pop the same queued trial). Across machines, give a
database URL (``postgresql+psycopg://user:pw@host/db``). Credentials are redacted from everything we print.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, TypeVar

import optuna

from ..errors import UserError
from ..redaction import install_log_redaction, normalize_url, redact

T = TypeVar("T")

JOURNAL_FILE = "study.journal"


def default_dir(study_name: str) -> Path:
    return Path("runs") / study_name


def describe_storage(url: str | None, directory: Path) -> str:
    return redact(url) if url else str(directory / JOURNAL_FILE)


def open_storage(url: str | None, directory: Path, *, create: bool = True) -> optuna.storages.BaseStorage:
    """The study's storage: a database URL if given, else the journal file in ``directory``."""
    install_log_redaction()
    if url:
        url = normalize_url(url)
        if url.startswith("postgresql://"):
            raise UserError(f"storage {redact(url)}: name the driver, e.g. postgresql+psycopg://...")
        try:
            return retry(lambda: _create_rdb_storage(url), what=f"connecting to {redact(url)}")
        except UserError:
            raise
        except Exception as exc:  # SQLAlchemy's errors for a bad URL or a missing driver
            raise UserError(f"storage {redact(url)}: {redact(str(exc)).splitlines()[0]}") from None
    journal = directory / JOURNAL_FILE
    if not create and not journal.exists():
        raise UserError(f"no study at {journal} (run `regnet-space study run` first, or pass --dir/--storage)")
    directory.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))


def _create_rdb_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """RDBStorage, tolerating the race of two workers creating Optuna's tables in a new database at once
    (PostgreSQL then reports a duplicate key in its catalog to the loser, whose retry finds the tables)."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _is_connection_error(exc: BaseException) -> bool:
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError
    except ImportError:  # pragma: no cover - sqlalchemy ships with optuna
        return False
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, optuna.exceptions.StorageInternalError) and _is_connection_error(exc.__cause__ or exc.__context__ or Exception())


def retry(call: Callable[[], T], *, what: str, attempts: int = 6, first_delay: float = 0.5) -> T:
    """Run a storage call, retrying a dropped database connection with exponential back-off."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if not _is_connection_error(exc):
                raise
            if attempt == attempts:
                raise UserError(f"lost the study storage while {what}, after {attempts} attempts: "
                                f"{redact(str(exc)).splitlines()[0]}") from None
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
