"""How models map onto Optuna trials, and the claim/lease protocol that keeps them trained exactly once.

Each model (space label, index k) is enqueued as a WAITING trial carrying its spec in user attributes.
A worker claims one by moving it WAITING -> RUNNING (the storage lets only one process win that), then
keeps a heartbeat attribute fresh while it trains. A RUNNING trial whose heartbeat is older than
``stale_after`` belongs to a dead worker: it is failed and its model enqueued again. If a model ever has
two live trials (two processes enqueued it at once), only the lowest-numbered one trains; the others are
marked ``superseded`` and ignored. A model's status comes from all its trials together, so counts never
exceed the population.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..summary import summarize

SPACE, INDEX = "space", "model_index"
HEARTBEAT, WORKER = "heartbeat", "worker"
SUPERSEDED, INTERRUPTED, ERROR = "superseded", "interrupted", "error"
PARAM_PREFIX = "param_"


@dataclass(frozen=True)
class ModelState:
    """Where one model of the population stands: ``complete``, ``running``, ``failed`` or ``pending``."""

    label: str
    index: int
    status: str
    trial: FrozenTrial | None
    attempts: int

    @property
    def diverged(self) -> bool:
        return bool(self.trial is not None and self.status == "complete" and self.trial.user_attrs.get("diverged"))


def model_key(trial: FrozenTrial) -> tuple[str, int] | None:
    attrs = trial.user_attrs
    if SPACE in attrs and INDEX in attrs:
        return attrs[SPACE], int(attrs[INDEX])
    return None


def is_stale(trial: FrozenTrial, now: float, stale_after: float) -> bool:
    if trial.state != TrialState.RUNNING:
        return False
    beat = trial.user_attrs.get(HEARTBEAT)
    if beat is None:
        beat = trial.datetime_start.timestamp() if trial.datetime_start else now
    return now - float(beat) > stale_after


def is_live(trial: FrozenTrial, now: float, stale_after: float) -> bool:
    """A trial that has or will train its model: complete, waiting, or running with a fresh heartbeat."""
    if trial.user_attrs.get(SUPERSEDED):
        return False
    if trial.state == TrialState.RUNNING:
        return not is_stale(trial, now, stale_after)
    return trial.state in (TrialState.COMPLETE, TrialState.WAITING)


def model_states(trials: Iterable[FrozenTrial], population_sizes: dict[str, int], *, stale_after: float,
                 now: float | None = None) -> dict[tuple[str, int], ModelState]:
    """The status of every model of the population, from all trials of the study."""
    now = time.time() if now is None else now
    by_model: dict[tuple[str, int], list[FrozenTrial]] = {}
    for trial in trials:
        key = model_key(trial)
        if key is not None:
            by_model.setdefault(key, []).append(trial)
    states = {}
    for label, n in population_sizes.items():
        for k in range(n):
            own = sorted(by_model.get((label, k), []), key=lambda t: t.number)
            attempts = [t for t in own if not t.user_attrs.get(SUPERSEDED) and t.state != TrialState.WAITING]
            complete = [t for t in own if t.state == TrialState.COMPLETE]
            running = [t for t in own if t.state == TrialState.RUNNING and not is_stale(t, now, stale_after)]
            failed = [t for t in own if (t.state == TrialState.FAIL or is_stale(t, now, stale_after))
                      and not t.user_attrs.get(SUPERSEDED)]
            waiting = [t for t in own if t.state == TrialState.WAITING]
            if complete:
                status, trial = "complete", complete[0]
            elif running:
                status, trial = "running", running[0]
            elif failed and not waiting:
                status, trial = "failed", failed[-1]
            else:
                status, trial = "pending", None
            states[(label, k)] = ModelState(label, k, status, trial, len(attempts))
    return states


def model_attrs(label: str, index: int, sampled: Any, recorded: dict[str, Any]) -> dict[str, Any]:
    """The user attributes a model's trial carries from the start: its spec and complexity, plus (as
    ``param_*``) the few sampled parameters Optuna cannot hold as trial params (``recorded`` has the rest)."""
    from .params import used_params  # imports the sampler: only workers enqueue

    summary = summarize(sampled.spec, sampled.regnet)
    attrs = {SPACE: label, INDEX: index, "spec": sampled.spec.to_json(),
             **{k: summary[k] for k in ("flops", "params", "acts", "mac")}}
    attrs.update({PARAM_PREFIX + name: value for name, value in used_params(sampled).items() if name not in recorded})
    return attrs


def waiting_trial(label: str, index: int, sampled: Any, distributions: dict[str, Any]) -> FrozenTrial:
    """A model's WAITING trial with its sampled parameters as real Optuna params (see params.py)."""
    from .params import trial_params

    params, dists = trial_params(sampled, distributions)
    return optuna.trial.create_trial(state=TrialState.WAITING, params=params, distributions=dists,
                                     user_attrs=model_attrs(label, index, sampled, params))


def enqueue_missing(study: optuna.Study, storage: optuna.storages.BaseStorage, population: dict[str, list], *,
                    stale_after: float, distributions: dict[str, dict[str, Any]]) -> int:
    """Fail stale trials, then enqueue every model that has no live trial. Returns how many were enqueued.
    ``distributions``: space label -> its parameters' Optuna distributions (``population_distributions``)."""
    now = time.time()
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if is_stale(trial, now, stale_after):
            fail(storage, trial._trial_id, reason="worker stopped sending heartbeats (killed or lost)")
    trials = study.get_trials(deepcopy=False)
    live = {model_key(t) for t in trials if is_live(t, now, stale_after)}
    enqueued = 0
    # Round-robin over spaces (model 0 of every space, then model 1, ...), so a study stopped part-way still
    # compares its spaces on equal footing.
    for k in range(max(len(models) for models in population.values())):
        for label, models in population.items():
            if k < len(models) and (label, k) not in live:
                study.add_trial(waiting_trial(label, k, models[k], distributions[label]))
                enqueued += 1
    return enqueued


def fail(storage: optuna.storages.BaseStorage, trial_id: int, *, reason: str, **attrs: Any) -> None:
    """Mark a trial failed with a reason; a trial another process finished meanwhile is left alone."""
    try:
        storage.set_trial_user_attr(trial_id, ERROR, reason)
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


def claim(study: optuna.Study, storage: optuna.storages.BaseStorage, worker: str, *,
          stale_after: float) -> FrozenTrial | None:
    """Take the next waiting model, or None if none is waiting. The claimed trial is RUNNING and ours."""
    while True:
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not waiting:
            return None
        for candidate in waiting:
            try:
                if not storage.set_trial_state_values(candidate._trial_id, state=TrialState.RUNNING):
                    continue  # another worker took it first
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            storage.set_trial_user_attr(candidate._trial_id, WORKER, worker)
            storage.set_trial_user_attr(candidate._trial_id, HEARTBEAT, time.time())
            if _has_earlier_live_twin(study, candidate, stale_after):
                storage.set_trial_user_attr(candidate._trial_id, SUPERSEDED, True)
                fail(storage, candidate._trial_id, reason="superseded: the model had another live trial")
                break  # re-read the queue
            return storage.get_trial(candidate._trial_id)
        else:
            return None


def _has_earlier_live_twin(study: optuna.Study, trial: FrozenTrial, stale_after: float) -> bool:
    key = model_key(trial)
    now = time.time()
    for other in study.get_trials(deepcopy=False):
        if other.number == trial.number or model_key(other) != key:
            continue
        if other.state == TrialState.COMPLETE:
            return True
        if other.number < trial.number and is_live(other, now, stale_after):
            return True
    return False


def decode_params(trial: FrozenTrial) -> dict[str, Any]:
    """A model's sampled parameters: its Optuna params, and ``param_*`` user attributes (all of them in studies
    made before parameters became Optuna params)."""
    legacy = {k[len(PARAM_PREFIX):]: v for k, v in trial.user_attrs.items() if k.startswith(PARAM_PREFIX)}
    return {**legacy, **trial.params}


def trial_spec_json(trial: FrozenTrial) -> dict[str, Any]:
    return json.loads(trial.user_attrs["spec"])
