"""A study worker: claims models one at a time, trains them, stores the results, until the population is done.

Any number of workers, on one machine or many, may share a study; see trials.py for the protocol that keeps
each model trained exactly once. A worker reads the whole study only at the start of a new study (to enqueue
its population) and when the queue runs dry (to re-enqueue what failed or was lost); each claim and each
heartbeat costs O(workers), whatever the population size. SIGINT/SIGTERM fail the running model as
``interrupted`` (a rerun retrains it); a worker killed outright stops its heartbeat, and another worker
retries its model.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..models.spec import AnyNetSpec
from ..threads import DEFAULT_THREADS
from .population import DataShape, build_population, population_distributions, tiny_stage_warning, training_seed
from .queue import ensure_index, finish
from .session import StudySession
from .storage import retry
from .trials import (HEARTBEAT, INDEX, INTERRUPTED, SPACE, WORKER, claim, enqueue_missing, enqueue_population, fail,
                     recover_stale)

T = TypeVar("T")


@dataclass
class WorkerReport:
    trained: int = 0
    failed: int = 0


class Contact:
    """When this worker last failed to reach the storage (0: never). Dead workers are judged by their silence
    only over time this worker could see the storage itself (see trials.recover_stale)."""

    def __init__(self) -> None:
        self.since = 0.0

    def track(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except Exception:
            self.since = time.time()
            raise


class Heartbeat:
    """Refreshes the trial's heartbeat attribute from a background thread while the model trains, and looks
    for dead workers' models each beat, so they are re-enqueued (at the front) even while every live worker
    is busy: a free worker then restarts one within ``stale_after + heartbeat_interval`` of its last beat."""

    def __init__(self, session: StudySession, trial_id: int, contact: Contact) -> None:
        self._session, self._trial_id, self._contact = session, trial_id, contact
        self._storage, self._interval = session.storage, session.spec.heartbeat_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._contact.track(lambda: self._storage.set_trial_user_attr(self._trial_id, HEARTBEAT, time.time()))
                recover_stale(self._session.study, self._storage, stale_after=self._session.spec.stale_after,
                              connected_since=self._contact.since)
            except Exception:  # a missed beat is retried next interval; staleness needs many in a row
                pass

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def chance_error(num_classes: int) -> float:
    """The error of guessing: what a diverged model enters the EDF with, so failure does not flatter a space."""
    return 100.0 * (1.0 - 1.0 / num_classes)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Interrupt:
    """A stop signal that arrives inside a storage call is held until the call returns: cut in half, a call
    can leave Optuna's in-memory replay of a journal one record short (it counts a record before applying
    it), and the marking of the model as interrupted then fails. Between calls (training, back-off sleeps
    during an outage) it interrupts at once."""

    depth = 0
    pending = False
    raised = False  # raised by a stop signal and not yet caught by run_worker: see _redeliver


REDELIVER_EVERY = 1.0  # seconds


def _raise_interrupt(signum: int, frame: Any) -> None:
    """The first stop signal interrupts; later ones (the runner's SIGTERM after a terminal's SIGINT) are
    ignored, so they cannot cut short the marking of the running model as interrupted."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if _Interrupt.depth:
        _Interrupt.pending = True
        return
    _Interrupt.raised = True
    threading.Thread(target=_redeliver, daemon=True, name="interrupt").start()
    raise KeyboardInterrupt


def _redeliver() -> None:
    """A signal handler runs in whatever Python code the main thread is executing; when that is a weakref
    callback or a ``__del__`` (torch's WeakKeyDictionary clean-up, seen under SLURM's scancel), the
    KeyboardInterrupt is printed as "Exception ignored" and dropped, and the worker would train on with its
    stop signals ignored until SIGKILL, its model left RUNNING. Until run_worker has caught it, raise it again
    in the main thread each second (held like a signal while a storage call runs)."""
    import ctypes

    main = threading.main_thread().ident
    while True:
        time.sleep(REDELIVER_EVERY)
        if not _Interrupt.raised:
            return
        if _Interrupt.depth:
            _Interrupt.pending = True
            continue
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(main), ctypes.py_object(KeyboardInterrupt))


def whole(call: Callable[[], T]) -> Callable[[], T]:
    """``call`` made uninterruptible by stop signals while it runs (see _Interrupt); for ``retry``."""

    def run() -> T:
        _Interrupt.depth += 1
        try:
            return call()
        finally:
            _Interrupt.depth -= 1
            if not _Interrupt.depth and _Interrupt.pending:
                _Interrupt.pending = False
                raise KeyboardInterrupt

    return run


def run_worker(session: StudySession, *, device: str = "cpu", threads: int | None = None,
               name: str | None = None, poll: float | None = None) -> WorkerReport:
    """Train models of the study until none is left to claim and no other worker is still running one. A stop
    signal ends it with KeyboardInterrupt, its running model marked interrupted."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_interrupt)
    try:
        return _work(session, device=device, threads=threads, name=name, poll=poll)
    except KeyboardInterrupt:
        _Interrupt.raised = False
        raise


def _work(session: StudySession, *, device: str, threads: int | None, name: str | None,
          poll: float | None) -> WorkerReport:
    import torch

    from ..proxy.data import load_dataset

    torch.set_num_threads(threads or DEFAULT_THREADS)
    spec, storage, study = session.spec, session.storage, session.study
    name = name or worker_name()
    poll = spec.heartbeat_interval if poll is None else poll
    dataset = load_dataset(**{**spec.dataset, "device": device})
    shape = DataShape(dataset.resolution, dataset.in_channels, dataset.num_classes)
    population, distributions = build_population(spec, shape), population_distributions(spec)
    warning = tiny_stage_warning(population)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    report = WorkerReport()
    outage = spec.outage_timeout  # storage calls ride out a database restart or fail-over this long
    contact = Contact()
    budget = dict(stale_after=spec.stale_after, distributions=distributions, max_attempts=spec.max_attempts)
    retry(whole(lambda: ensure_index(storage)), what="preparing the study's queue", timeout=outage)
    retry(whole(lambda: enqueue_population(study, storage, population, **budget)), what="enqueuing models",
          timeout=outage)
    while True:
        try:
            trial = retry(whole(lambda: contact.track(lambda: claim(study, storage, name, stale_after=spec.stale_after,
                                                                    connected_since=contact.since))),
                          what="claiming a model", timeout=outage)
            trained = trial is not None and _train_trial(session, trial, dataset, device, contact)
        except KeyboardInterrupt:
            # Claimed, training or being stored: wherever the signal came, the model must not stay RUNNING.
            _Interrupt.raised = False
            _release_claims(session, name)
            raise
        if trial is not None:
            report.trained += trained
            report.failed += not trained
            continue
        if retry(whole(lambda: running_count(session)), what="reading the study", timeout=outage):
            time.sleep(poll)  # another worker is busy; wait in case it dies and its model needs us
            continue
        # Nothing waiting or running: re-enqueue models that failed with budget left, or lost their trial.
        if not retry(whole(lambda: enqueue_missing(study, storage, population, **budget)),
                     what="recovering models", timeout=outage):
            return report


def running_count(session: StudySession) -> int:
    """How many trials are running (live or not yet declared dead): O(workers)."""
    return len(session.storage.get_all_trials(session.study._study_id, deepcopy=False, states=(TrialState.RUNNING,)))


def _release_claims(session: StudySession, name: str) -> None:
    """Interrupted by a stop signal: the trial this worker runs (just claimed, training, or being stored) is
    marked interrupted, so it does not stay RUNNING; a rerun trains it again."""
    def release() -> None:
        for trial in session.storage.get_all_trials(session.study._study_id, deepcopy=False,
                                                    states=(TrialState.RUNNING,)):
            if trial.user_attrs.get(WORKER) == name:
                fail(session.storage, trial._trial_id, reason="interrupted (a stop signal); a rerun trains it again",
                     **{INTERRUPTED: True})

    retry(release, what="marking the model interrupted", attempts=4)


def _train_trial(session: StudySession, trial: FrozenTrial, dataset: Any, device: str, contact: Contact) -> bool:
    from ..proxy.train import ProxyConfig, train_model

    spec, storage = session.spec, session.storage
    trial_id = trial._trial_id
    label, index = trial.user_attrs[SPACE], int(trial.user_attrs[INDEX])
    model_spec = AnyNetSpec.from_json(trial.user_attrs["spec"])
    seed = training_seed(spec, label, index)
    with Heartbeat(session, trial_id, contact):
        try:
            result = train_model(model_spec, dataset, ProxyConfig.from_dict(spec.proxy), seed=seed, device=device,
                                 time_limit=spec.time_limit, progress=False)
            latency = _latency(model_spec, device) if spec.measure_latency else {}
        except Exception as exc:  # a model that cannot train is data about the space, not a crash of the study
            reason = f"{type(exc).__name__}: {exc}"
            retry(whole(lambda: fail(storage, trial_id, reason=reason)), what="storing a failure",
                  timeout=spec.outage_timeout)
            return False
    outcome = result.to_dict()
    chance = chance_error(dataset.num_classes)
    diverged = outcome["status"] == "diverged"
    error = chance if diverged or outcome.get("val_error") is None else float(outcome["val_error"])
    attrs = {
        "val_error": error,
        "best_val_error": outcome.get("best_val_error") if not diverged else chance,
        "train_status": outcome["status"],
        "diverged": diverged,
        "diverged_epoch": outcome.get("diverged_epoch"),
        "epochs": outcome.get("epochs"),
        "seconds": outcome.get("seconds"),
        "images_per_s": outcome.get("images_per_s"),
        "threads": outcome.get("threads"),
        **latency,
        "device": device,
    }
    try:
        retry(whole(lambda: finish(storage, trial_id, TrialState.COMPLETE, attrs, [error])),
              what=f"storing model {index} of {label}", timeout=spec.outage_timeout)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # declared dead while finishing (a long stall); another worker retrains it
    return True


def _latency(spec: AnyNetSpec, device: str) -> dict[str, Any]:
    """Batch-1 latency by the shared protocol (proxy/latency.py), with what says how far to trust it."""
    from ..proxy.latency import measure_latency

    result = measure_latency(spec, device=device, batch_size=1)
    return {"latency_ms": result.latency_ms, "latency_median_ms": result.median_ms, "latency_cv": result.cv,
            "latency_reliable": result.reliable, "latency_load": result.load}
