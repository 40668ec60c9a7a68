"""The study's work queue, per storage: claim the next waiting trial, add waiting trials, and a lock that makes
enqueueing exactly-once across processes and machines. Every operation here costs O(1) storage round trips
whatever the population size (trials.py decides *what* to enqueue; this module only moves trials).

Queue order: a *retry* (a model whose worker died) is claimed before every other waiting model, then the rest
by trial number. A retry is marked by a ``datetime_start`` on its WAITING trial (when its predecessor was
declared dead). Optuna leaves that field unset on waiting trials and overwrites it when a trial starts, so it
is free to carry the priority, and it lives in the trials table itself, where one indexed statement can order
by it on PostgreSQL.

- PostgreSQL: a claim is one statement, ``UPDATE trials ... WHERE trial_id = (SELECT ... ORDER BY ... LIMIT 1
  FOR UPDATE SKIP LOCKED) RETURNING``, through the engine of Optuna's own RDBStorage (whose study-level cache
  re-reads every unfinished trial on each call, which is what made claiming O(n)); a partial index on waiting
  trials keeps it cheap; the claimed trial is read back and a finished model stored with plain statements in
  one transaction each (Optuna's ORM takes a dozen queries for either); a population is inserted in one
  transaction; a session advisory lock serialises enqueueing. Optuna's raw RDBStorage has no cache, and
  Optuna's cached wrapper re-reads unfinished trials, so both stay coherent with a state changed by SQL.
- Journal file: Optuna replays the journal into memory incrementally (only new records are read); each process
  keeps its own heap of the waiting trials it has seen (``WaitingCursor``), fed only by trials numbered past
  the last it read, so a claim does not scan the queue; the journal itself decides which of two racing claims
  wins (WAITING -> RUNNING is applied once). An ``fcntl.flock`` on a file beside the journal serialises enqueueing.
- Any other storage (Optuna's in-memory storage in tests): the journal's way, with an in-process lock.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import heapq
import json
import threading
import weakref
from typing import Any, Iterator, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

HEARTBEAT, WORKER = "heartbeat", "worker"
_LOCK_NAMESPACE = 0x52454753  # "REGS": the first key of PostgreSQL's two-key advisory locks
_WAITING_INDEX = "ix_regnet_space_waiting_trials"
_RUNNING_INDEX = "ix_regnet_space_running_trials"  # what recover_stale reads on every claim: O(workers) rows


def is_postgres(storage: optuna.storages.BaseStorage) -> bool:
    return isinstance(storage, optuna.storages.RDBStorage) and storage.engine.dialect.name == "postgresql"


def stored_time(utc: datetime.datetime | None) -> datetime.datetime | None:
    """A time as PostgreSQL's trials table holds it (naive UTC, as Optuna writes it), as Optuna shows it: naive
    local time."""
    return utc.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None) if utc else None


def _journal_path(storage: optuna.storages.BaseStorage) -> str | None:
    if isinstance(storage, optuna.storages.JournalStorage):
        return getattr(storage._backend, "_file_path", None)
    return None


def claim_next(study: optuna.Study, storage: optuna.storages.BaseStorage, worker: str,
               now: float) -> FrozenTrial | None:
    """Move the first waiting trial in queue order to RUNNING, owned by ``worker``; None if none is waiting."""
    if is_postgres(storage):
        return _claim_postgres(study, storage, worker, now)
    cursor = _cursor(storage, study._study_id)
    while True:
        candidate = cursor.next_waiting()
        if candidate is None:
            return None
        try:
            if not storage.set_trial_state_values(candidate, state=TrialState.RUNNING):
                continue  # another worker took it first
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        storage.set_trial_user_attr(candidate, WORKER, worker)
        storage.set_trial_user_attr(candidate, HEARTBEAT, now)
        return storage.get_trial(candidate)


class WaitingCursor:
    """One process's index of a study's waiting trials, for every storage but PostgreSQL (which has an index).

    Sorting every waiting trial on each claim made a claim O(n) (2.1 ms of CPU at 1,000 waiting models, 14.7 ms
    at 10,000). Trials are numbered densely in creation order, and a trial never returns to WAITING once it has
    left it, so each trial needs to be looked at only twice per process: once when it first appears (numbers
    past ``seen``, read one at a time by number; the first call reads the study once) and, if it was waiting
    then, once more when it reaches the front of the heap, where a trial that another process took meanwhile is
    dropped. A claim therefore costs O(1) amortised plus O(log n) for the heap, whatever the queue's length;
    ``inspected`` counts the trials looked at (tests hold it flat as the queue grows).
    """

    def __init__(self, storage: optuna.storages.BaseStorage, study_id: int) -> None:
        self._storage, self._study_id = storage, study_id
        self._heap: list[tuple[tuple[bool, int], int]] = []
        self.seen: int | None = None  # trial numbers below this have been looked at
        self.inspected = 0

    def next_waiting(self) -> int | None:
        """The id of the first trial in queue order that is waiting now, taken out of the index (the caller
        claims it, or loses it to another process); None if none is waiting."""
        self._read_new()
        while self._heap:
            _, trial_id = heapq.heappop(self._heap)
            self.inspected += 1
            if self._storage.get_trial(trial_id).state == TrialState.WAITING:
                return trial_id
        return None

    def _read_new(self) -> None:
        if self.seen is None:  # the first look: the study as it stands, in one read
            trials = self._storage.get_all_trials(self._study_id, deepcopy=False)
            self.inspected += len(trials)
            self.seen = len(trials)
            self._heap = [(_queue_order(t), t._trial_id) for t in trials if t.state == TrialState.WAITING]
            heapq.heapify(self._heap)
            return
        while True:
            try:
                trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, self.seen)
            except KeyError:
                return
            trial = self._storage.get_trial(trial_id)
            self.inspected += 1
            self.seen += 1
            if trial.state == TrialState.WAITING:
                heapq.heappush(self._heap, (_queue_order(trial), trial_id))


_CURSORS: "weakref.WeakKeyDictionary[optuna.storages.BaseStorage, dict[int, WaitingCursor]]" = \
    weakref.WeakKeyDictionary()


def _cursor(storage: optuna.storages.BaseStorage, study_id: int) -> WaitingCursor:
    """This process's cursor on the study's queue in ``storage`` (made on first use, dropped with the storage)."""
    per_study = _CURSORS.setdefault(storage, {})
    if study_id not in per_study:
        per_study[study_id] = WaitingCursor(storage, study_id)
    return per_study[study_id]


def _queue_order(trial: FrozenTrial) -> tuple[bool, int]:
    return trial.datetime_start is None, trial.number


_CLAIM = """
UPDATE trials SET state = 'RUNNING', datetime_start = now() AT TIME ZONE 'UTC'
WHERE trial_id = (
    SELECT trial_id FROM trials WHERE study_id = :study AND state = 'WAITING'
    ORDER BY (datetime_start IS NULL), number LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING trial_id, number, datetime_start
"""
_OWN = "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (:id, :wk, :w), (:id, :hk, :h)"
_PARAMS = "SELECT param_name, param_value, distribution_json FROM trial_params WHERE trial_id = :id"
_ATTRS = "SELECT key, value_json FROM trial_user_attributes WHERE trial_id = :id"


def _claim_postgres(study: optuna.Study, storage: optuna.storages.RDBStorage, worker: str,
                    now: float) -> FrozenTrial | None:
    """The claim, ownership and the claimed trial's params and attributes in one transaction of four plain
    statements (Optuna's get_trial loads the trial through its ORM: a dozen queries)."""
    from optuna.distributions import json_to_distribution
    from sqlalchemy import text

    with storage.engine.begin() as connection:  # one transaction: the trial is RUNNING and ours, or untouched
        claimed = connection.execute(text(_CLAIM), {"study": study._study_id}).first()
        if claimed is None:
            return None
        trial_id, number, started = claimed
        connection.execute(text(_OWN), {"id": trial_id, "wk": WORKER, "w": json.dumps(worker),
                                        "hk": HEARTBEAT, "h": json.dumps(now)})
        params = connection.execute(text(_PARAMS), {"id": trial_id}).all()
        attrs = connection.execute(text(_ATTRS), {"id": trial_id}).all()
    distributions = {name: json_to_distribution(dist) for name, _, dist in params}
    return FrozenTrial(
        number=number, state=TrialState.RUNNING, value=None, values=None, intermediate_values={},
        datetime_start=stored_time(started),
        datetime_complete=None, params={name: distributions[name].to_external_repr(value) for name, value, _ in params},
        distributions=distributions, user_attrs={key: json.loads(value) for key, value in attrs}, system_attrs={},
        trial_id=trial_id)


def finish(storage: optuna.storages.BaseStorage, trial_id: int, state: TrialState, attrs: dict[str, Any],
           values: Sequence[float] | None = None) -> None:
    """Set a trial's user attributes, then finish it (COMPLETE with ``values``, or FAIL). Raises Optuna's
    UpdateFinishedTrialError if the trial is finished already (another process declared it dead).

    On PostgreSQL all of it is one transaction of four statements on the trial's locked row (Optuna's public
    calls take a transaction per attribute, and its row writers a query or two per attribute: most of
    PostgreSQL's coordination cost). Elsewhere Optuna's calls in turn (the journal appends a record per call
    either way)."""
    if not is_postgres(storage):
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        storage.set_trial_state_values(trial_id, state=state, values=values)
        return
    from sqlalchemy import text

    with storage.engine.begin() as connection:
        stored = connection.execute(text(_LOCK_TRIAL), {"id": trial_id}).scalar()
        if stored is None:
            raise KeyError(f"no trial with id {trial_id}")
        if TrialState[stored].is_finished():
            raise optuna.exceptions.UpdateFinishedTrialError(
                f"trial {trial_id} is {stored} already: it was declared dead, or finished elsewhere")
        if attrs:
            connection.execute(text(_SET_ATTR), [{"id": trial_id, "key": key, "value": json.dumps(value)}
                                                 for key, value in attrs.items()])
        if values:
            connection.execute(text(_SET_VALUE), [{"id": trial_id, "objective": objective, **_stored_value(value)}
                                                  for objective, value in enumerate(values)])
        connection.execute(text(_FINISH), {"id": trial_id, "state": state.name})


_LOCK_TRIAL = "SELECT state FROM trials WHERE trial_id = :id FOR UPDATE"
_SET_ATTR = """
INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (:id, :key, :value)
ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json"""
_SET_VALUE = """
INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (:id, :objective, :value, :kind)
ON CONFLICT (trial_id, objective) DO UPDATE SET value = EXCLUDED.value, value_type = EXCLUDED.value_type"""
_FINISH = "UPDATE trials SET state = :state, datetime_complete = now() AT TIME ZONE 'UTC' WHERE trial_id = :id"


def _stored_value(value: float) -> dict[str, Any]:
    """A value as Optuna's trial_values table holds it: infinities as a kind with no number."""
    if value == float("inf"):
        return {"value": None, "kind": "INF_POS"}
    if value == float("-inf"):
        return {"value": None, "kind": "INF_NEG"}
    return {"value": float(value), "kind": "FINITE"}


def ensure_index(storage: optuna.storages.BaseStorage) -> None:
    """The partial indexes PostgreSQL's claim walks: waiting trials of a study in queue order, and running ones."""
    if not is_postgres(storage):
        return
    from sqlalchemy import text

    with storage.engine.begin() as connection:
        # Workers starting together would race: CREATE INDEX IF NOT EXISTS is not atomic in PostgreSQL (the
        # loser fails on the catalog's unique name). A transaction-level advisory lock (key 0: no study has id
        # 0) makes the second wait and then find the index there.
        connection.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": _LOCK_NAMESPACE})
        connection.execute(text(f"CREATE INDEX IF NOT EXISTS {_WAITING_INDEX} ON trials "
                                f"(study_id, (datetime_start IS NULL), number) WHERE state = 'WAITING'"))
        connection.execute(text(f"CREATE INDEX IF NOT EXISTS {_RUNNING_INDEX} ON trials (study_id) "
                                f"WHERE state = 'RUNNING'"))


@contextlib.contextmanager
def exclusive(study: optuna.Study, storage: optuna.storages.BaseStorage) -> Iterator[None]:
    """Hold the study's enqueue lock: one process at a time, on any machine, decides what to enqueue."""
    if is_postgres(storage):
        from sqlalchemy import text

        with storage.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:ns, :study)"),
                               {"ns": _LOCK_NAMESPACE, "study": study._study_id})
            try:
                yield
            finally:  # a connection lost meanwhile has released the lock server-side already
                with contextlib.suppress(Exception):
                    connection.execute(text("SELECT pg_advisory_unlock(:ns, :study)"),
                                       {"ns": _LOCK_NAMESPACE, "study": study._study_id})
        return
    journal = _journal_path(storage)
    if journal is not None:
        with open(journal + ".queue-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with _local_lock(storage):
        yield


_LOCAL_LOCKS: dict[int, threading.RLock] = {}


def _local_lock(storage: optuna.storages.BaseStorage) -> threading.RLock:
    return _LOCAL_LOCKS.setdefault(id(storage), threading.RLock())


def add_waiting(study: optuna.Study, storage: optuna.storages.BaseStorage, trials: Sequence[FrozenTrial]) -> None:
    """Add WAITING trials, in order. On PostgreSQL all in one transaction (10,000 trials in seconds, where
    Optuna's one transaction per trial takes minutes)."""
    if not trials:
        return
    if is_postgres(storage):
        _add_waiting_postgres(study, storage, trials)
    else:
        study.add_trials(trials)


def _add_waiting_postgres(study: optuna.Study, storage: optuna.storages.RDBStorage,
                          trials: Sequence[FrozenTrial]) -> None:
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import func

    study_id = study._study_id
    with _create_scoped_session(storage.scoped_session) as session:
        # The lock Optuna takes to number a new trial: trial numbers stay dense and unique.
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        base = session.query(func.count(models.TrialModel.trial_id)).filter(
            models.TrialModel.study_id == study_id).scalar()
        rows = [models.TrialModel(study_id=study_id, number=base + i, state=TrialState.WAITING,
                                  datetime_start=trial.datetime_start) for i, trial in enumerate(trials)]
        session.add_all(rows)
        session.flush()  # assigns the trial ids
        # Optuna numbers trials by trial id order (count_past_trials); keep that true whatever order ids came in.
        for number, row in enumerate(sorted(rows, key=lambda r: r.trial_id), start=base):
            row.number = number
        for row, trial in zip(rows, trials):
            session.add_all([models.TrialParamModel(
                trial_id=row.trial_id, param_name=name, param_value=trial.distributions[name].to_internal_repr(value),
                distribution_json=distribution_to_json(trial.distributions[name]))
                for name, value in trial.params.items()])
            session.add_all([models.TrialUserAttributeModel(trial_id=row.trial_id, key=key,
                                                            value_json=json.dumps(value))
                             for key, value in trial.user_attrs.items()])


def waiting_retry(trial: FrozenTrial, attrs: dict[str, Any], now: float) -> FrozenTrial:
    """A WAITING copy of ``trial`` (same params, the given user attributes) at the front of the queue."""
    retry = optuna.trial.create_trial(state=TrialState.WAITING, params=trial.params,
                                      distributions=trial.distributions, user_attrs=attrs)
    retry.datetime_start = datetime.datetime.fromtimestamp(now)
    return retry

