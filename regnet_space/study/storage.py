"""Where a study lives: Optuna storage, embedded by default, a database URL across machines.

The embedded default is Optuna's JournalStorage on a file in the study directory: several local processes
can share it safely (SQLite cannot: two processes may pop the same queued trial). Across machines, give a
database URL (``postgresql+psycopg://user:pw@host/db``). Credentials are redacted from everything we print.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import optuna

from ..errors import UserError
from ..redaction import install_log_redaction, normalize_url, redact
from ..userfiles import loads_json

T = TypeVar("T")

JOURNAL_FILE = "study.journal"


def default_dir(study_name: str) -> Path:
    return Path("runs") / study_name


_LOOKS_LIKE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:/")


def folder_of(directory: str | None, study_name: str) -> Path:
    """The folder ``--dir`` names (default ``runs/<name>``), refused when it cannot be one: a database URL
    given to --dir by mistake (Path() would turn its ``://`` into ``:/`` and print the password), or a file."""
    if directory is None:
        return default_dir(study_name)
    if _LOOKS_LIKE_URL.match(directory):
        raise UserError(f"--dir {redact(directory)}: looks like a database URL; pass it as --storage")
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise UserError(f"--dir {path}: is a file, not a folder")
    return path


def describe_storage(url: str | None, directory: Path) -> str:
    return redact(url) if url else str(directory / JOURNAL_FILE)


def open_storage(url: str | None, directory: Path, *, create: bool = True) -> optuna.storages.BaseStorage:
    """The study's storage: a database URL if given, else the journal file in ``directory``."""
    install_log_redaction()
    if url:
        url = normalize_url(url)
        database = _sqlite_file(url)
        if not create and database is not None and not database.exists():  # connecting would create it
            raise UserError(f"no study at {url}: the SQLite file {database} does not exist")
        return _connect(url, lambda: _create_rdb_storage(url))
    journal = directory / JOURNAL_FILE
    if not create and not journal.exists():
        raise no_study_at(journal)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if journal.exists():
            check_journal(journal)
        return optuna.storages.JournalStorage(CheckedJournalBackend(str(journal)))
    except OSError as exc:  # a read-only folder, a --dir below a file
        raise UserError(f"--dir {directory}: cannot keep the study journal there ({exc.strerror or exc})") from None


def _sqlite_file(url: str) -> Path | None:
    """The file of an ``sqlite:///path`` URL (``sqlite:////abs/path`` when absolute); None for other URLs and
    SQLite's in-memory database."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+")[0].lower() != "sqlite":
        return None
    path = rest.split("?")[0]
    return Path(path) if path and path != ":memory:" else None


def open_engine(url: str):
    """A plain SQLAlchemy engine on a study database, connected once: for a reader (``study status``, an export)
    that needs neither Optuna's table creation and schema check nor its ORM, which cost a fresh process most of
    a second before a single row is read."""
    from sqlalchemy import create_engine

    install_log_redaction()
    url = normalize_url(url)

    def connected():
        engine = create_engine(url)
        try:
            engine.connect().close()  # a refused password or a server that is down shows here, where retry sees it
        except BaseException:
            engine.dispose()
            raise
        return engine

    return _connect(url, connected)


def _connect(url: str, connect: Callable[[], T]) -> T:
    """``connect()`` to the database at ``url``, retrying an outage; a URL that cannot work is a UserError."""
    if url.startswith("postgresql://"):
        raise UserError(f"storage {redact(url)}: name the driver, e.g. postgresql+psycopg://...")
    try:
        return retry(connect, what=f"connecting to {redact(url)}")
    except UserError:
        raise
    except Exception as exc:  # SQLAlchemy's errors for a bad URL or a missing driver
        raise UserError(f"storage {redact(url)}: {redact(str(exc)).splitlines()[0]}") from None


def no_study_at(journal: Path) -> UserError:
    return UserError(f"no study at {journal} (run `regnet-space study run` first, or pass --dir/--storage)")


# --- Journal integrity ------------------------------------------------------------------------------------------
# Optuna's journal is one JSON record per line, appended under a lock. A writer killed mid-write (or a full
# disk) leaves a torn last line: Optuna then silently ignores it when reading, and the next append glues a
# new record onto the half line, corrupting the file for good. So the tail is checked when a study is opened
# and before every append, and `study repair` cuts a torn tail off (keeping a backup).

REPAIR_HINT = "run `regnet-space study repair SPEC` (with the same --dir) to cut it back to its last complete record; a backup is kept"
_LIVE_WRITE_WAIT = 2.0  # while a writer holds the lock; a record being written is complete within milliseconds


class JournalDamaged(UserError):
    """The journal file is torn or corrupt; nothing was read from it or written to it."""


def _damaged(path: Path, what: str) -> JournalDamaged:
    return JournalDamaged(f"{path}: the study journal is damaged ({what}); nothing was changed. {REPAIR_HINT}")


def _last_line(path: Path, size: int) -> bytes:
    """The last complete line of the file (without its newline), reading backwards in chunks."""
    with open(path, "rb") as handle:
        end = size - 1  # the final b"\n"
        start, chunk = end, b""
        while start > 0:
            step = min(start, 65536)
            start -= step
            handle.seek(start)
            chunk = handle.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                return chunk[cut + 1:]
        handle.seek(0)
        return handle.read(end)


def _is_record(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return False
    return isinstance(record, dict) and "op_code" in record


# What Optuna's replay of each record needs (its JournalOperation codes): fields beyond op_code and worker_id, and
# which earlier record must have created the study or trial it names. Optuna asserts ("Should not reach.") on an
# unknown op_code and raises KeyError on a missing field, deep inside `study export`.
_CREATE_STUDY, _CREATE_TRIAL, _DISCARD_TRIALS = 0, 4, 10
_FIELDS = {0: ("study_name", "directions"), 1: (), 2: ("user_attr",), 3: ("system_attr",), 4: (),
           5: ("param_name", "param_value_internal", "distribution"), 6: ("state",),
           7: ("step", "intermediate_value"), 8: ("user_attr",), 9: ("system_attr",), 10: ()}
_STUDY_OPS = frozenset({1, 2, 3, 4})
_TRIAL_OPS = frozenset({5, 6, 7, 8, 9})


class RecordCheck:
    """Checks journal records in order, as Optuna will replay them: a known op_code with its fields, and a study
    or trial id that an earlier record created (Optuna numbers both in creation order)."""

    def __init__(self) -> None:
        self.studies = self.trials = 0

    def problem(self, record: Any) -> str | None:
        """Why ``record`` cannot be replayed (None: it can); counts the studies and trials it creates."""
        if not isinstance(record, dict) or "op_code" not in record:
            return "a line that is not a journal record"
        op = record["op_code"]
        if type(op) is not int or op not in _FIELDS:
            return f"a record with an unknown op_code {op!r}"
        absent = [key for key in ("worker_id", *_FIELDS[op]) if key not in record]
        if absent:
            return f"a record of op_code {op} without {absent[0]!r}"
        for ops, key, created in ((_STUDY_OPS, "study_id", self.studies), (_TRIAL_OPS, "trial_id", self.trials)):
            if op in ops and not (type(record.get(key)) is int and 0 <= record[key] < created):
                return f"a record of op_code {op} for {key} {record.get(key)!r}, which no earlier record created"
        self.studies += op == _CREATE_STUDY
        self.trials += op == _CREATE_TRIAL
        return None


def check_journal(path: Path) -> None:
    """Raise JournalDamaged if the journal's last record is torn or not a journal record."""
    deadline = time.monotonic() + _LIVE_WRITE_WAIT
    while True:
        size = path.stat().st_size
        if size == 0:
            return
        with open(path, "rb") as handle:
            handle.seek(size - 1)
            ends_cleanly = handle.read(1) == b"\n"
        if ends_cleanly:
            break
        writing = os.path.lexists(str(path) + ".lock")  # Optuna holds this symlink while it appends
        if (not writing and path.stat().st_size == size) or time.monotonic() > deadline:
            raise _damaged(path, "its last record is torn: the file does not end with a complete line")
        time.sleep(0.05)  # perhaps a live writer in the middle of a record
    if not _is_record(_last_line(path, size)):
        raise _damaged(path, "its last line is not a journal record")


def _journal_backend():
    from optuna.storages.journal import JournalFileBackend

    return JournalFileBackend


class CheckedJournalBackend(_journal_backend()):  # type: ignore[misc]
    """Optuna's file backend, refusing to append to a torn journal and naming corruption instead of raising
    JSONDecodeError from deep inside Optuna."""

    def read_logs(self, log_number_from: int):
        """The records from ``log_number_from`` on, each checked once, in order (``RecordCheck``)."""
        if not hasattr(self, "_check") or log_number_from == 0:
            self._check, self._checked = RecordCheck(), 0
        try:
            for number, record in enumerate(super().read_logs(log_number_from), start=log_number_from):
                if number == self._checked:
                    problem = self._check.problem(record)
                    if problem:
                        raise _damaged(Path(self._file_path), f"record {number + 1} is {problem}")
                    self._checked += 1
                yield record
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, Optuna's "Invalid log format."
            if isinstance(exc, UserError):
                raise
            raise _damaged(Path(self._file_path), f"{type(exc).__name__} in a record") from None

    def append_logs(self, logs: list[dict]) -> None:
        from optuna.storages.journal._file import get_lock_file

        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with get_lock_file(self._lock):
            with open(self._file_path, "ab+", buffering=0) as handle:  # unbuffered: a failed write is not retried at close
                size = handle.seek(0, os.SEEK_END)
                if size:
                    handle.seek(size - 1)
                    if handle.read(1) != b"\n":  # we hold the lock: no writer is mid-record, the tail is torn
                        raise _damaged(Path(self._file_path), "its last record is torn")
                payload = memoryview(text.encode("utf-8"))
                try:
                    while payload:
                        payload = payload[handle.write(payload):]
                    os.fsync(handle.fileno())
                except OSError as exc:  # a full disk: cut the part written, so the journal is never torn
                    handle.truncate(size)
                    raise _cannot_append(Path(self._file_path), exc) from None


def _cannot_append(path: Path, exc: OSError) -> UserError:
    """The one line a full (or failing) disk ends a run with: the folder, why, and the space left there."""
    import shutil

    from ..models.summary import human

    try:
        free = f"{human(shutil.disk_usage(path.parent).free)}B free"
    except OSError:
        free = "free space unknown"
    return UserError(f"{path.parent}: cannot append to the study journal ({exc.strerror or exc}; {free}); the "
                     f"journal is left as it was: free some space and run the same command again")


def journal_records(path: Path, user_attrs: frozenset[str] | None = None) -> Iterator[dict]:
    """The journal's complete records, in order, for a reader that does not replay it through Optuna (see
    snapshot.read_journal). A record being appended meanwhile is left for the next read.

    With ``user_attrs``, a trial user-attribute record of any other key is left out unparsed: most of a
    journal's records are these (a dozen results per model, one per attribute, and the heartbeats), and a
    status needs a few keys. Records are parsed with ``loads_json`` (orjson: 2.5x the json module on a
    10,000-model journal)."""
    parsed = None if user_attrs is None else user_attrs | {None}  # None: not a user-attribute record
    data = path.read_bytes()
    check = RecordCheck()
    for number, line in enumerate(data[:data.rfind(b"\n") + 1].splitlines(), start=1):
        if parsed is not None and _attr_key(line) not in parsed:
            continue  # creates nothing: skipping its check leaves the counts right
        try:
            record = loads_json(line)
        except ValueError:  # JSONDecodeError, UnicodeDecodeError, nested too deeply
            record = None
        problem = check.problem(record)
        if problem:
            raise _damaged(path, f"record {number} is {problem}")
        yield record


_USER_ATTR_RECORD = re.compile(rb'\{"op_code": ?8, ?"worker_id": ?"[^"\\]*", ?"trial_id": ?\d+, ?"user_attr": ?\{"([^"\\]*)"')


def _attr_key(line: bytes) -> str | None:
    """The key of a trial user-attribute record (Optuna's SET_TRIAL_USER_ATTR, as Optuna or
    CheckedJournalBackend writes it), without parsing it; None for any other line."""
    match = _USER_ATTR_RECORD.match(line)
    return match.group(1).decode() if match else None


def repair_journal(path: Path) -> tuple[int, int, Path | None]:
    """Cut the journal back to its last complete record. Returns (records kept, bytes dropped, backup path).

    Only a damaged *tail* is dropped: the torn record, or a torn record that a later append was glued onto
    (the record after the glue point is recovered). Damage before valid records is refused: dropping a
    record in the middle would renumber Optuna's trials.
    """
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        tail = lines.pop()  # after the last newline: b"" when the file ends cleanly
        kept: list[bytes] = []
        lost: list[int] = []  # damaged lines with nothing recoverable
        for number, line in enumerate(lines):
            if _is_record(line):
                kept.append(line)
                continue
            glued = line.rfind(b'{"op_code"')  # a whole record appended onto a torn half line
            if glued > 0 and _is_record(line[glued:]):
                kept.append(line[glued:])
            else:
                lost.append(number)
        if lost and any(_is_record(line) for line in lines[lost[0] + 1:]):
            raise UserError(f"{path}: line {lost[0] + 1} is damaged and valid records follow it; cutting it out "
                            f"would renumber the study's trials, so it is left as it is")
        if not kept and (lost or tail):
            raise UserError(f"{path}: no complete journal record at all; this is not a study journal")
        repaired = b"".join(line + b"\n" for line in kept)
        if repaired == raw:
            return len(kept), 0, None
        temporary = path.with_name(path.name + ".repair")
        temporary.write_bytes(repaired)
        try:  # the repaired journal must replay in Optuna before it replaces the damaged one
            from optuna.storages.journal import JournalFileBackend

            optuna.storages.JournalStorage(JournalFileBackend(str(temporary))).get_all_studies()
        except Exception as exc:
            temporary.unlink(missing_ok=True)
            raise UserError(f"{path}: the journal cut back to its complete records does not replay "
                            f"({type(exc).__name__}); it is left as it is") from None
        backup = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        backup.write_bytes(raw)
        os.replace(temporary, path)
        return len(kept), len(raw) - len(repaired), backup
    finally:
        lock.release()


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
    """A dropped connection, also when Optuna wraps it (StorageInternalError) or SQLAlchemy reports it as the
    transaction it broke (PendingRollbackError, raised while Optuna retries a read on the dead connection)."""
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError, PendingRollbackError
    except ImportError:  # pragma: no cover - sqlalchemy ships with optuna
        return False
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (optuna.exceptions.StorageInternalError, PendingRollbackError)):
        cause = exc.__cause__ or exc.__context__
        return cause is not None and _is_connection_error(cause)
    return False


_FATAL = (  # connection errors that waiting cannot fix: (SQLSTATE, words of the server's message, what to say)
    ("28P01", "password authentication failed", "the database refused the user name or password"),
    ("28000", "no pg_hba.conf entry", "the database server does not allow this user/host (pg_hba.conf)"),
    ("3D000", "does not exist", "no such database on the server (create it first: createdb)"),
)


def _fatal_reason(exc: BaseException) -> str | None:
    """Authentication failures and a missing database are reported at once, not retried as an outage."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
        text = str(exc)
        for state, words, reason in _FATAL:
            if code == state or (words in text and (state != "3D000" or "database" in text)):
                return reason
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return None


def retry(call: Callable[[], T], *, what: str, attempts: int = 6, first_delay: float = 0.5,
          timeout: float | None = None, max_delay: float = 10.0) -> T:
    """Run a storage call, retrying a dropped database connection with exponential back-off.

    With ``timeout`` (a study's ``[workers] outage_timeout``) it keeps trying for that many seconds, so a
    database restart or fail-over is ridden out; otherwise for ``attempts`` tries. A wrong password or a
    missing database fails at once with its own message.
    """
    delay = first_delay
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            if not _is_connection_error(exc):
                raise
            reason = _fatal_reason(exc)
            if reason:
                raise UserError(f"{reason} while {what}: {redact(str(getattr(exc, 'orig', exc))).splitlines()[0]}") from None
            out_of_time = (time.monotonic() - start + delay > timeout) if timeout is not None else attempt >= attempts
            if out_of_time:
                spent = f"{time.monotonic() - start:.0f} s" if timeout is not None else f"{attempts} attempts"
                raise UserError(f"lost the study storage while {what}, after {spent}: "
                                f"{redact(str(exc)).splitlines()[0]}") from None
            time.sleep(delay)
            delay = min(delay * 2, max_delay)
