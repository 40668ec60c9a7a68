"""Reading a whole study cheaply, for status and progress: counts of trials by state, and every trial with
only the few attributes a status needs, each in one pass.

Optuna's ``study.get_trials`` on a database loads every trial with all its params and attributes into ORM
objects (and its cache re-reads every unfinished one on each call): seconds at 10,000 models, every second
in a progress bar. On PostgreSQL these are single SQL statements instead; a journal is already replayed
into memory, so there they are scans of memory.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import optuna
from optuna.trial import TrialState

from .queue import is_postgres


@dataclass
class TrialView:
    """The part of a FrozenTrial that model_states, a status and the enqueue pass read (duck-typed for them)."""

    _trial_id: int
    number: int
    state: TrialState
    datetime_start: datetime.datetime | None
    value: float | None
    user_attrs: dict[str, Any] = field(default_factory=dict)


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


def trial_views(study: optuna.Study, storage: optuna.storages.BaseStorage, keys: Iterable[str]) -> list[TrialView]:
    """Every trial of the study with the user attributes named in ``keys`` (others left out), in one pass."""
    keys = tuple(keys)
    if not is_postgres(storage):
        return [TrialView(t._trial_id, t.number, t.state, t.datetime_start, t.value if t.values else None,
                          {k: t.user_attrs[k] for k in keys if k in t.user_attrs})
                for t in storage.get_all_trials(study._study_id, deepcopy=False)]
    from sqlalchemy import bindparam, text

    query = text("""
        SELECT t.trial_id, t.number, t.state, t.datetime_start, v.value, a.key, a.value_json
        FROM trials t
        LEFT JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0
        LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key IN :keys
        WHERE t.study_id = :s""").bindparams(bindparam("keys", expanding=True))
    with storage.engine.connect() as connection:
        rows = connection.execute(query, {"s": study._study_id, "keys": list(keys)}).all()
    views: dict[int, TrialView] = {}
    for trial_id, number, state, start, value, key, value_json in rows:
        view = views.get(trial_id)
        if view is None:  # stored as naive UTC (as Optuna does); shown, like Optuna's, as naive local time
            local = start.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None) if start else None
            view = views[trial_id] = TrialView(trial_id, number, TrialState[state], local, value)
        if key is not None:
            view.user_attrs[key] = json.loads(value_json)
    return sorted(views.values(), key=lambda v: v.number)


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
