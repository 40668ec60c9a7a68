"""Reading a whole study cheaply, for status and progress: counts of trials by state, and every trial with
only the few attributes a status needs, each in one pass.

Optuna's ``study.get_trials`` on a database loads every trial with all its params and attributes into ORM
objects (and its cache re-reads every unfinished one on each call): seconds at 10,000 models, every second
in a progress bar. On PostgreSQL these are single SQL statements instead; a journal is already replayed
into memory, so there they are scans of memory.

A process that has not opened the journal yet (``study status``) reads it with ``read_journal`` instead of
Optuna's replay, which decodes every trial's parameters and distributions and copies a trial per record:
seconds at 10,000 models, before a single count could be shown.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import optuna
from optuna.trial import TrialState

from .queue import is_postgres, stored_time


@dataclass
class TrialView:
    """The part of a FrozenTrial that model_states, a status, an export and the enqueue pass read (duck-typed
    for them)."""

    _trial_id: int
    number: int
    state: TrialState
    datetime_start: datetime.datetime | None
    value: float | None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # filled only when asked for (trial_views' ``params``)


def state_counts(study: optuna.Study, storage: optuna.storages.BaseStorage) -> dict[TrialState, int]:
    """How many trials of the study are in each state."""
    if is_postgres(storage):
        from sqlalchemy import text

        with storage.engine.connect() as connection:
            rows = connection.execute(text("SELECT state, count(*) FROM trials WHERE study_id = :s GROUP BY state"),
                                      {"s": study._study_id}).all()
        return {TrialState[state]: n for state, n in rows}
    counts: dict[TrialState, int] = {}
    for trial in storage.get_all_trials(study._study_id, deepcopy=False):
        counts[trial.state] = counts.get(trial.state, 0) + 1
    return counts


def trial_views(study: optuna.Study, storage: optuna.storages.BaseStorage, keys: Iterable[str] | None,
                states: Iterable[TrialState] | None = None, *, params: bool = False) -> list[TrialView]:
    """Every trial of the study (or those in ``states``) with the user attributes named in ``keys`` (None:
    all of them) and, with ``params``, its parameters, in one pass."""
    keys = tuple(keys) if keys is not None else None
    states = tuple(states) if states is not None else None
    if is_postgres(storage):
        return postgres_trial_views(storage.engine, study._study_id, keys, states, params=params)
    return [TrialView(t._trial_id, t.number, t.state, t.datetime_start, t.value if t.values else None,
                      t.user_attrs if keys is None else {k: t.user_attrs[k] for k in keys if k in t.user_attrs},
                      t.params if params else {})
            for t in storage.get_all_trials(study._study_id, deepcopy=False, states=states)]


def postgres_trial_views(engine: Any, study_id: int, keys: tuple[str, ...] | None,
                         states: tuple[TrialState, ...] | None = None, *, params: bool = False) -> list[TrialView]:
    """``trial_views`` on PostgreSQL, through any SQLAlchemy engine on Optuna's tables: one statement, and one
    more for the parameters. Optuna's own read of a 10,000-model study builds an ORM object per trial, attribute
    and parameter: 18 s and 685 MiB for an export."""
    from sqlalchemy import bindparam, text

    # The state names are the enum's own, written into the statement so a partial index on them applies. Each
    # trial's attributes come as one JSON object text, built from the stored JSON texts without parsing them
    # (a NaN is not JSON to PostgreSQL), and all of them are parsed in one call: a row and a json.loads per
    # attribute cost a second at 10,000 models.
    in_states = f" AND t.state IN ({', '.join(repr(state.name) for state in states)})" if states else ""
    of_keys = " AND a.key IN :keys" if keys is not None else ""
    query = text(f"""
        SELECT t.trial_id, t.number, t.state, t.datetime_start, min(v.value),
               '{{' || coalesce(string_agg(to_json(a.key)::text || ':' || a.value_json, ','), '') || '}}'
        FROM trials t
        LEFT JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0
        LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id{of_keys}
        WHERE t.study_id = :s{in_states}
        GROUP BY t.trial_id ORDER BY t.number""")
    arguments: dict[str, Any] = {"s": study_id}
    if keys is not None:
        query, arguments["keys"] = query.bindparams(bindparam("keys", expanding=True)), list(keys)
    with engine.connect() as connection:
        rows = connection.execute(query, arguments).all()
        trial_params = _postgres_params(connection, study_id, in_states) if params else {}
    attrs = json.loads("[" + ",".join(row[5] for row in rows) + "]")
    return [TrialView(trial_id, number, TrialState[state], stored_time(start), value, attrs[i],
                      trial_params.get(trial_id, {}))
            for i, (trial_id, number, state, start, value, _) in enumerate(rows)]


def _postgres_params(connection: Any, study_id: int, in_states: str) -> dict[int, dict[str, Any]]:
    """Each trial's parameters as Optuna shows them (``FrozenTrial.params``: a categorical's choice, not its
    index), decoding each distinct stored distribution once."""
    from sqlalchemy import text

    rows = connection.execute(text(f"""
        SELECT p.trial_id, p.param_name, p.param_value, p.distribution_json FROM trial_params p
        JOIN trials t ON t.trial_id = p.trial_id WHERE t.study_id = :s{in_states}"""), {"s": study_id}).all()
    distributions: dict[str, Any] = {}
    found: dict[int, dict[str, Any]] = {}
    for trial_id, name, value, stored in rows:
        distribution = distributions.get(stored)
        if distribution is None:
            distribution = distributions[stored] = optuna.distributions.json_to_distribution(stored)
        found.setdefault(trial_id, {})[name] = distribution.to_external_repr(value)
    return found


def best_by_space(study: optuna.Study, storage: optuna.storages.BaseStorage, space_key: str) -> dict[str, float]:
    """The lowest objective value among complete trials, per value of the user attribute ``space_key``."""
    if is_postgres(storage):
        from sqlalchemy import text

        query = text("""
            SELECT a.value_json, min(v.value) FROM trials t
            JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0
            JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = :key
            WHERE t.study_id = :s AND t.state = 'COMPLETE' GROUP BY a.value_json""")
        with storage.engine.connect() as connection:
            rows = connection.execute(query, {"s": study._study_id, "key": space_key}).all()
        return {json.loads(label): value for label, value in rows if value is not None}
    best: dict[str, float] = {}
    for trial in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.COMPLETE,)):
        label = trial.user_attrs.get(space_key)
        if label is not None and trial.values:
            best[label] = min(best.get(label, trial.value), trial.value)
    return best


@dataclass
class JournalStudy:
    """One study as ``read_journal`` finds it in an Optuna journal file."""

    user_attrs: dict[str, Any]
    trials: list[TrialView]


# Optuna's JournalOperation codes (optuna/storages/journal/_storage.py); the others do not touch what is read here.
_CREATE_STUDY, _DELETE_STUDY, _SET_STUDY_USER_ATTR, _CREATE_TRIAL, _SET_TRIAL_STATE_VALUES, _SET_TRIAL_USER_ATTR = (
    0, 1, 2, 4, 6, 8)


def read_journal(records: Iterable[dict[str, Any]], study_name: str, keys: Iterable[str]) -> JournalStudy | None:
    """The study named ``study_name`` in a journal's records: its user attributes and every trial with the user
    attributes named in ``keys``; None if no such study. Read-only.

    Follows Optuna's replay rules for what it reads: a study name is taken once and freed by deleting the study;
    trial ids count the trials of every study in creation order, numbers those of their own study; a finished
    trial takes no more updates, and a second WAITING -> RUNNING (a claim that lost the race) is dropped.
    The other records (params, intermediate values, system attributes) cannot change these."""
    keys = frozenset(keys)
    names: dict[str, int] = {}  # live studies
    study_attrs: dict[int, dict[str, Any]] = {}
    next_study_id = next_trial_id = 0
    trials: dict[int, TrialView] = {}  # of the study asked for (its id may change if it is deleted and made again)
    wanted: int | None = None
    state_of: dict[int, TrialState] = {}  # every trial's state: only unfinished ones take updates
    numbers: dict[int, int] = {}  # trials per study
    for record in records:
        op = record["op_code"]
        if op == _CREATE_TRIAL:
            study_id = record["study_id"]
            if study_id not in study_attrs:
                continue
            trial_id, next_trial_id = next_trial_id, next_trial_id + 1
            state = TrialState(record.get("state", TrialState.RUNNING.value))
            state_of[trial_id] = state
            number = numbers[study_id] = numbers.get(study_id, -1) + 1
            if study_id == wanted:
                values = record.get("values")
                trials[trial_id] = TrialView(trial_id, number, state, _local_time(record.get("datetime_start")),
                                             values[0] if values else record.get("value"),
                                             {k: v for k, v in record.get("user_attrs", {}).items() if k in keys})
        elif op == _SET_TRIAL_STATE_VALUES or op == _SET_TRIAL_USER_ATTR:
            trial_id = record["trial_id"]
            current = state_of.get(trial_id)
            if current is None or current.is_finished():
                continue
            if op == _SET_TRIAL_USER_ATTR:
                if trial_id in trials:
                    trials[trial_id].user_attrs.update((k, v) for k, v in record["user_attr"].items() if k in keys)
                continue
            state = TrialState(record["state"])
            if state == TrialState.RUNNING == current:
                continue
            state_of[trial_id] = state
            view = trials.get(trial_id)
            if view is not None:
                view.state = state
                if state == TrialState.RUNNING:
                    view.datetime_start = _local_time(record["datetime_start"])
                if record.get("values"):
                    view.value = record["values"][0]
        elif op == _CREATE_STUDY:
            if record["study_name"] not in names:
                names[record["study_name"]] = next_study_id
                study_attrs[next_study_id] = {}
                if record["study_name"] == study_name:
                    wanted, trials = next_study_id, {}
                next_study_id += 1
        elif op == _SET_STUDY_USER_ATTR:
            if record["study_id"] in study_attrs:
                study_attrs[record["study_id"]].update(record["user_attr"])
        elif op == _DELETE_STUDY:
            if study_attrs.pop(record["study_id"], None) is not None:
                names = {name: i for name, i in names.items() if i != record["study_id"]}
                if record["study_id"] == wanted:
                    wanted, trials = None, {}
    if wanted is None:
        return None
    return JournalStudy(study_attrs[wanted], sorted(trials.values(), key=lambda v: v.number))


def _local_time(text: str | None) -> datetime.datetime | None:
    """A journal's time (ISO 8601 with its zone) as Optuna shows it: naive local time."""
    return datetime.datetime.fromisoformat(text).astimezone().replace(tzinfo=None) if text else None
