"""How models map onto Optuna trials, and the claim/lease protocol that keeps them trained exactly once.

Each model (space label, index k) is enqueued as a WAITING trial carrying its spec in user attributes.
Enqueueing happens under the study's lock (queue.py), so however many workers start at once, on however
many machines, each model is enqueued once. A worker claims one by moving it WAITING -> RUNNING (the storage
lets only one process win that), then keeps a heartbeat attribute fresh while it trains. A RUNNING trial
whose heartbeat is older than ``stale_after`` belongs to a dead worker: whichever worker sees it first (every
claim and every heartbeat looks) fails it as ``lost`` and enqueues its model again at the front of the queue;
only the worker whose FAIL took effect enqueues, so the retry is enqueued once.

Failure budget: a model whose training raised ``max_attempts`` times is ``failed`` for good and not enqueued
again. Only genuine failures count: not ``interrupted`` (a stop signal), not ``lost`` (a killed or cut-off
worker: the machine's fault, not the model's; a model that kills its worker each time is retried while
workers remain), not ``superseded`` (a duplicate trial from before enqueueing was locked).

A model's status comes from all its trials together, so counts never exceed the population.
"""

from __future__ import annotations

import json
import time
import weakref
from dataclasses import dataclass
from typing import Any, Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..models.summary import summarize
from .queue import HEARTBEAT, WORKER, add_waiting, claim_next, exclusive, finish, waiting_retry
from .snapshot import trial_views

SPACE, INDEX = "space", "model_index"
SUPERSEDED, INTERRUPTED, LOST, ERROR = "superseded", "interrupted", "lost", "error"
PARAM_PREFIX = "param_"
MODEL_ATTRS = (SPACE, INDEX, "spec", "flops", "params", "acts", "mac")  # set at enqueue; the rest by workers
MAX_ATTEMPTS = 3
ENQUEUED = "regnet_space:population_enqueued"  # study system attribute: the first full enqueue is done
_PASS_ATTRS = (SPACE, INDEX, HEARTBEAT, SUPERSEDED, INTERRUPTED, LOST)  # what the enqueue pass reads of a trial


@dataclass(frozen=True)
class ModelState:
    """Where one model of the population stands: ``complete``, ``running``, ``failed`` (its failure budget
    spent) or ``pending``. ``attempts``: trials that ran; ``failures``: those that count against the budget."""

    label: str
    index: int
    status: str
    trial: FrozenTrial | None
    attempts: int
    failures: int = 0

    @property
    def diverged(self) -> bool:
        return bool(self.trial is not None and self.status == "complete" and self.trial.user_attrs.get("diverged"))


def model_key(trial: FrozenTrial) -> tuple[str, int] | None:
    attrs = trial.user_attrs
    if SPACE in attrs and INDEX in attrs:
        return attrs[SPACE], int(attrs[INDEX])
    return None


def is_stale(trial: FrozenTrial, now: float, stale_after: float) -> bool:
    return trial.state == TrialState.RUNNING and now - last_beat(trial, now) > stale_after


def last_beat(trial: FrozenTrial, now: float) -> float:
    """When a running trial was last heard of: its heartbeat, else its start, else ``now``."""
    beat = trial.user_attrs.get(HEARTBEAT)
    if beat is None:
        beat = trial.datetime_start.timestamp() if trial.datetime_start else now
    return float(beat)


def is_live(trial: FrozenTrial, now: float, stale_after: float) -> bool:
    """A trial that has or will train its model: complete, waiting, or running with a fresh heartbeat."""
    if trial.user_attrs.get(SUPERSEDED):
        return False
    if trial.state == TrialState.RUNNING:
        return not is_stale(trial, now, stale_after)
    return trial.state in (TrialState.COMPLETE, TrialState.WAITING)


def is_genuine_failure(trial: FrozenTrial) -> bool:
    """A failure of the model itself, which counts against its budget (see the module docstring)."""
    attrs = trial.user_attrs
    return trial.state == TrialState.FAIL and not (attrs.get(SUPERSEDED) or attrs.get(INTERRUPTED) or attrs.get(LOST))


def model_states(trials: Iterable[FrozenTrial], population_sizes: dict[str, int], *, stale_after: float,
                 now: float | None = None, max_attempts: int = MAX_ATTEMPTS) -> dict[tuple[str, int], ModelState]:
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
            failures = [t for t in own if is_genuine_failure(t)]
            waiting = [t for t in own if t.state == TrialState.WAITING and not t.user_attrs.get(SUPERSEDED)]
            if complete:
                status, trial = "complete", complete[0]
            elif running:
                status, trial = "running", running[0]
            elif len(failures) >= max_attempts and not waiting:
                status, trial = "failed", failures[-1]
            else:
                status, trial = "pending", None
            states[(label, k)] = ModelState(label, k, status, trial, len(attempts), len(failures))
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
                    stale_after: float, distributions: dict[str, dict[str, Any]],
                    max_attempts: int = MAX_ATTEMPTS) -> int:
    """Under the study's lock: fail stale trials, then enqueue every model that has no live trial and budget
    left. Returns how many were enqueued. Reads every trial, so workers call it at start (once per study, see
    ``enqueue_population``) and when the queue runs dry. ``distributions``: space label -> its parameters'
    Optuna distributions (``population_distributions``)."""
    study_id = study._study_id
    with exclusive(study, storage):
        now = time.time()
        for trial in trial_views(study, storage, (HEARTBEAT,), states=(TrialState.RUNNING,)):
            if is_stale(trial, now, stale_after):
                fail(storage, trial._trial_id, reason=LOST_REASON, **{LOST: True})
        trials = trial_views(study, storage, _PASS_ATTRS)  # one light pass, not Optuna's full read
        if _supersede_twins(storage, trials):
            trials = trial_views(study, storage, _PASS_ATTRS)
        live = {model_key(t) for t in trials if is_live(t, now, stale_after)}
        failures: dict[tuple[str, int] | None, int] = {}
        for trial in trials:
            if is_genuine_failure(trial):
                failures[model_key(trial)] = failures.get(model_key(trial), 0) + 1
        new = []
        # Round-robin over spaces (model 0 of every space, then model 1, ...), so a study stopped part-way
        # still compares its spaces on equal footing.
        for k in range(max(len(models) for models in population.values())):
            for label, models in population.items():
                key = (label, k)
                if k < len(models) and key not in live and failures.get(key, 0) < max_attempts:
                    new.append(waiting_trial(label, k, models[k], distributions[label]))
        add_waiting(study, storage, new)
        storage.set_study_system_attr(study_id, ENQUEUED, True)
    return len(new)


def enqueue_population(study: optuna.Study, storage: optuna.storages.BaseStorage, population: dict[str, list], *,
                       stale_after: float, distributions: dict[str, dict[str, Any]],
                       max_attempts: int = MAX_ATTEMPTS) -> int:
    """The first worker of a study enqueues its population; later ones (a marker says so) read nothing."""
    if storage.get_study_system_attrs(study._study_id).get(ENQUEUED):
        return 0
    return enqueue_missing(study, storage, population, stale_after=stale_after, distributions=distributions,
                           max_attempts=max_attempts)


def _supersede_twins(storage: optuna.storages.BaseStorage, trials: list) -> int:
    """Studies made before enqueueing was locked may hold two live trials of one model: keep the first
    (a complete one if any), mark the other waiting ones superseded, so they are never trained."""
    keep: dict[tuple[str, int] | None, FrozenTrial] = {}
    superseded = 0
    for trial in sorted(trials, key=lambda t: (t.state != TrialState.COMPLETE, t.number)):
        if trial.user_attrs.get(SUPERSEDED) or trial.state not in (TrialState.COMPLETE, TrialState.WAITING):
            continue
        key = model_key(trial)
        if key not in keep:
            keep[key] = trial
        elif trial.state == TrialState.WAITING:
            storage.set_trial_user_attr(trial._trial_id, SUPERSEDED, True)
            fail(storage, trial._trial_id, reason="superseded: the model had another live trial")
            superseded += 1
    return superseded


LOST_REASON = "worker stopped sending heartbeats (killed or lost)"


def recover_stale(study: optuna.Study, storage: optuna.storages.BaseStorage, *, stale_after: float,
                  connected_since: float = 0.0) -> int:
    """Fail the trials of dead workers as ``lost`` and enqueue each model again at the front of the queue.
    Reads only the running trials (O(workers)). Returns how many models were re-enqueued.

    ``connected_since``: when the caller last failed to reach the storage. Silence is judged only over time
    the caller could see the storage itself: after an outage every worker's heartbeat looks old, and failing
    them all would retrain every running model."""
    now = time.time()
    if now - connected_since <= stale_after:
        return 0
    running = trial_views(study, storage, (HEARTBEAT,), states=(TrialState.RUNNING,))  # heartbeats only
    beats = [last_beat(t, now) for t in running]
    stale = [t for t, beat in zip(running, beats) if now - beat > stale_after]
    # No trial running now can go stale before its last beat + stale_after, one claimed later beats later,
    # and the stale ones are dealt with below.
    _STALE_DUE.setdefault(storage, {})[study._study_id] = min(
        [now] + [beat for beat in beats if now - beat <= stale_after]) + stale_after
    if not stale:
        return 0
    retries = []
    with exclusive(study, storage):  # serialised with enqueue_missing, which would enqueue these models too
        for view in stale:
            trial = storage.get_trial(view._trial_id)
            if not is_stale(trial, time.time(), stale_after):
                continue  # it beat again meanwhile, or a rival already recovered it
            if fail(storage, trial._trial_id, reason=LOST_REASON, **{LOST: True}):  # we, not a rival, failed it
                attrs = {k: v for k, v in trial.user_attrs.items() if k in MODEL_ATTRS or k.startswith(PARAM_PREFIX)}
                retries.append(waiting_retry(trial, attrs, now))
        add_waiting(study, storage, retries)
    return len(retries)


def fail(storage: optuna.storages.BaseStorage, trial_id: int, *, reason: str, **attrs: Any) -> bool:
    """Mark a trial failed with a reason. False if another process finished it first (its state is theirs)."""
    try:
        finish(storage, trial_id, TrialState.FAIL, {ERROR: reason, **attrs})
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return True


# When this process's next look for dead workers' trials is due, per storage and study (see ``claim``).
_STALE_DUE: "weakref.WeakKeyDictionary[optuna.storages.BaseStorage, dict[int, float]]" = weakref.WeakKeyDictionary()


def claim(study: optuna.Study, storage: optuna.storages.BaseStorage, worker: str, *,
          stale_after: float, connected_since: float = 0.0) -> FrozenTrial | None:
    """Recover the models of dead workers (see ``recover_stale``), then take the next waiting model (retries
    first), or None if none is waiting. The claimed trial is RUNNING and ours.

    The look for dead workers reads every running trial, which on the journal is a scan of the whole study in
    memory (2.6 ms at 10,000 models), so a claim looks only once one could have gone stale since the last
    look (the oldest heartbeat then + ``stale_after``); heartbeats only move forward, so none is missed."""
    if time.time() >= _STALE_DUE.get(storage, {}).get(study._study_id, 0.0):
        recover_stale(study, storage, stale_after=stale_after, connected_since=connected_since)
    return claim_next(study, storage, worker, time.time())


def decode_params(trial: FrozenTrial) -> dict[str, Any]:
    """A model's sampled parameters: its Optuna params, and ``param_*`` user attributes (all of them in studies
    made before parameters became Optuna params)."""
    legacy = {k[len(PARAM_PREFIX):]: v for k, v in trial.user_attrs.items() if k.startswith(PARAM_PREFIX)}
    return {**legacy, **trial.params}


def trial_spec_json(trial: FrozenTrial) -> dict[str, Any]:
    return json.loads(trial.user_attrs["spec"])
