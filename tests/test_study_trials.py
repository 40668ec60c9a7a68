"""The trial bookkeeping of studies, on in-memory Optuna storage: enqueue order, claims, model states."""

import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from regnet_space.spaces import load_space, sample_models
from regnet_space.study.params import space_distributions
from regnet_space.study.queue import ensure_index, finish
from regnet_space.study.trials import claim, enqueue_missing, enqueue_population, fail, model_states, waiting_trial


SPACES = ("anynetx_a", "regnetx")
DISTRIBUTIONS = {label: space_distributions(load_space(label)) for label in SPACES}


def population(n=3):
    return {label: sample_models(load_space(label), n, seed=i, resolution=8, in_channels=1, num_classes=4,
                                 windows={"flops": (0, 4e5)})
            for i, label in enumerate(SPACES)}


def new_study():
    storage = optuna.storages.InMemoryStorage()
    return optuna.create_study(storage=storage, direction="minimize"), storage


@pytest.fixture(params=["memory", "journal", "postgres"])
def any_study(request, tmp_path):
    """A new study on each storage the queue has its own code for (queue.py), with the raw storage."""
    if request.param == "memory":
        return new_study()
    if request.param == "journal":
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    else:
        pytest.importorskip("psycopg")
        storage = optuna.storages.RDBStorage(request.getfixturevalue("postgres_url"))
        ensure_index(storage)
    return optuna.create_study(study_name=tmp_path.name, storage=storage, direction="minimize"), storage


def test_models_are_enqueued_round_robin_across_spaces():
    study, storage = new_study()
    assert enqueue_missing(study, storage, population(), stale_after=60, distributions=DISTRIBUTIONS) == 6
    order = [(t.user_attrs["space"], t.user_attrs["model_index"]) for t in study.get_trials()]
    assert order == [("anynetx_a", 0), ("regnetx", 0), ("anynetx_a", 1), ("regnetx", 1),
                     ("anynetx_a", 2), ("regnetx", 2)]
    # Enqueuing again adds nothing: every model already has a live (waiting) trial.
    assert enqueue_missing(study, storage, population(), stale_after=60, distributions=DISTRIBUTIONS) == 0


def test_a_duplicate_trial_of_a_model_is_superseded_not_trained():
    study, storage = new_study()
    pop = population(1)
    enqueue_missing(study, storage, pop, stale_after=60, distributions=DISTRIBUTIONS)
    # A study from before enqueueing was locked: two processes enqueued the same population at once.
    for label, models in pop.items():
        study.add_trial(waiting_trial(label, 0, models[0], DISTRIBUTIONS[label]))
    assert enqueue_missing(study, storage, pop, stale_after=60, distributions=DISTRIBUTIONS) == 0
    claimed = []
    while (trial := claim(study, storage, "w", stale_after=60)) is not None:
        claimed.append((trial.user_attrs["space"], trial.user_attrs["model_index"]))
        storage.set_trial_state_values(trial._trial_id, state=TrialState.COMPLETE, values=[1.0])
    assert sorted(claimed) == [("anynetx_a", 0), ("regnetx", 0)]
    states = model_states(study.get_trials(), {"anynetx_a": 1, "regnetx": 1}, stale_after=60)
    assert {s.status for s in states.values()} == {"complete"}
    assert sum(t.user_attrs.get("superseded", False) for t in study.get_trials()) == 2


def test_a_dead_workers_model_is_retried_first_by_the_next_claim(any_study, monkeypatch):
    study, storage = any_study
    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    enqueue_missing(study, storage, population(3), stale_after=60, distributions=DISTRIBUTIONS)
    dead = claim(study, storage, "dead-worker", stale_after=60)
    key = (dead.user_attrs["space"], dead.user_attrs["model_index"])
    busy = claim(study, storage, "busy-worker", stale_after=60)
    assert busy.number == 1
    clock[0] += 61  # the dead worker stays silent past stale_after; the busy one beats on
    storage.set_trial_user_attr(busy._trial_id, "heartbeat", clock[0])
    # The next claim (any worker's) fails the dead trial and takes its model before the 4 others waiting.
    retry = claim(study, storage, "live", stale_after=60)
    assert (retry.user_attrs["space"], retry.user_attrs["model_index"]) == key
    assert retry.params == dead.params and retry.user_attrs["spec"] == dead.user_attrs["spec"]
    failed = storage.get_trial(dead._trial_id)
    assert failed.state == TrialState.FAIL and failed.user_attrs["lost"] and "heartbeat" in failed.user_attrs["error"]
    assert claim(study, storage, "live", stale_after=60).number == 2  # then the queue in order
    # Exactly once: the full pass finds every model live and enqueues nothing more.
    assert enqueue_missing(study, storage, population(3), stale_after=60, distributions=DISTRIBUTIONS) == 0
    assert len(storage.get_all_trials(study._study_id)) == 7


def test_a_stale_running_trial_found_by_the_full_pass_is_failed_and_enqueued_again():
    study, storage = new_study()
    enqueue_missing(study, storage, population(1), stale_after=60, distributions=DISTRIBUTIONS)
    trial = claim(study, storage, "dead-worker", stale_after=60)
    storage.set_trial_user_attr(trial._trial_id, "heartbeat", 0.0)
    states = model_states(study.get_trials(), {"anynetx_a": 1, "regnetx": 1}, stale_after=60)
    assert states[(trial.user_attrs["space"], 0)].status == "pending"  # lost, not failed: it will be retried
    assert enqueue_missing(study, storage, population(1), stale_after=60, distributions=DISTRIBUTIONS) == 1
    assert storage.get_trial(trial._trial_id).state == TrialState.FAIL
    assert "heartbeat" in storage.get_trial(trial._trial_id).user_attrs["error"]


def test_a_model_failing_max_attempts_times_is_failed_for_good(any_study):
    study, storage = any_study
    pop = population(1)
    sizes = {"anynetx_a": 1, "regnetx": 1}
    enqueue_missing(study, storage, pop, stale_after=60, distributions=DISTRIBUTIONS, max_attempts=2)
    rounds = 0
    while True:
        while (trial := claim(study, storage, "w", stale_after=60)) is not None:
            if trial.user_attrs["space"] == "regnetx":
                fail(storage, trial._trial_id, reason="RuntimeError: always")
            elif rounds == 0:  # interruptions and lost workers are not the model's fault: they do not count
                fail(storage, trial._trial_id, reason="interrupted", interrupted=True)
            else:
                storage.set_trial_state_values(trial._trial_id, state=TrialState.COMPLETE, values=[1.0])
        rounds += 1
        if not enqueue_missing(study, storage, pop, stale_after=60, distributions=DISTRIBUTIONS, max_attempts=2):
            break
    assert rounds == 2
    states = model_states(study.get_trials(), sizes, stale_after=60, max_attempts=2)
    assert states[("regnetx", 0)].status == "failed" and states[("regnetx", 0)].failures == 2
    assert states[("regnetx", 0)].trial.user_attrs["error"] == "RuntimeError: always"
    assert states[("anynetx_a", 0)].status == "complete" and states[("anynetx_a", 0)].failures == 0
    assert states[("anynetx_a", 0)].attempts == 2
    regnet_trials = [t for t in study.get_trials() if t.user_attrs["space"] == "regnetx"]
    assert [t.state for t in regnet_trials] == [TrialState.FAIL, TrialState.FAIL]
    # With a bigger budget the same study retries it once more.
    assert enqueue_missing(study, storage, pop, stale_after=60, distributions=DISTRIBUTIONS, max_attempts=3) == 1


def test_finishing_a_model_stores_its_attributes_and_value_once_and_refuses_a_finished_trial(any_study):
    """``finish`` (one transaction on a database) leaves what Optuna's calls one by one would: every attribute,
    the value, the state and an end time; and like them it refuses a trial another process finished."""
    study, storage = any_study
    enqueue_missing(study, storage, population(2), stale_after=60, distributions=DISTRIBUTIONS, max_attempts=3)
    done, failed = claim(study, storage, "w", stale_after=60), claim(study, storage, "w", stale_after=60)
    finish(storage, done._trial_id, TrialState.COMPLETE, {"val_error": 12.5, "diverged": False, "latency_ms": None},
           [12.5])
    finish(storage, failed._trial_id, TrialState.FAIL, {"error": "RuntimeError: x"})
    stored, gone = storage.get_trial(done._trial_id), storage.get_trial(failed._trial_id)
    assert stored.state == TrialState.COMPLETE and stored.values == [12.5] and stored.datetime_complete is not None
    assert {k: stored.user_attrs[k] for k in ("val_error", "diverged", "latency_ms", "worker")} == {
        "val_error": 12.5, "diverged": False, "latency_ms": None, "worker": "w"}
    assert gone.state == TrialState.FAIL and gone.values is None and gone.user_attrs["error"] == "RuntimeError: x"
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        finish(storage, done._trial_id, TrialState.FAIL, {"error": "late"})
    assert storage.get_trial(done._trial_id).user_attrs.get("error") is None  # nothing of the refused call stays
    unbounded = claim(study, storage, "w", stale_after=60)  # Optuna stores infinities as a kind, not a number
    finish(storage, unbounded._trial_id, TrialState.COMPLETE, {}, [float("inf")])
    assert storage.get_trial(unbounded._trial_id).values == [float("inf")]


def test_a_claimed_trial_is_what_the_storage_holds(any_study):
    """The claim builds the trial it returns itself on PostgreSQL (plain statements, not Optuna's ORM read):
    it must be the stored trial, params decoded through their distributions."""
    study, storage = any_study
    enqueue_missing(study, storage, population(1), stale_after=60, distributions=DISTRIBUTIONS, max_attempts=3)
    for _ in range(2):
        claimed = claim(study, storage, "w", stale_after=60)
        stored = storage.get_trial(claimed._trial_id)
        assert claimed.params and claimed.params == stored.params and claimed.distributions == stored.distributions
        assert (claimed.number, claimed.state, claimed.user_attrs) == (stored.number, TrialState.RUNNING,
                                                                        stored.user_attrs)
        assert claimed.datetime_start == stored.datetime_start and claimed.user_attrs["worker"] == "w"


def test_workers_starting_at_once_enqueue_the_population_once(tmp_path):
    from optuna.storages.journal import JournalFileBackend

    optuna.create_study(study_name="s", storage=optuna.storages.JournalStorage(
        JournalFileBackend(str(tmp_path / "j"))))
    pop, start = population(5), threading.Barrier(4)

    def worker():
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "j")))
        study = optuna.load_study(study_name="s", storage=storage)
        start.wait()
        enqueue_population(study, storage, pop, stale_after=60, distributions=DISTRIBUTIONS)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        JournalFileBackend(str(tmp_path / "j"))))
    keys = [(t.user_attrs["space"], t.user_attrs["model_index"]) for t in study.get_trials()]
    assert len(keys) == 10 and len(set(keys)) == 10


def test_silence_is_not_judged_right_after_the_judge_itself_lost_the_storage():
    import time

    from regnet_space.study.trials import recover_stale

    study, storage = new_study()
    enqueue_missing(study, storage, population(1), stale_after=60, distributions=DISTRIBUTIONS)
    trial = claim(study, storage, "w", stale_after=60)
    storage.set_trial_user_attr(trial._trial_id, "heartbeat", time.time() - 120)  # silent for 2 minutes...
    # ...but this worker was itself cut off 10 s ago (an outage hides every heartbeat): no verdict yet.
    assert recover_stale(study, storage, stale_after=60, connected_since=time.time() - 10) == 0
    assert storage.get_trial(trial._trial_id).state == TrialState.RUNNING
    assert recover_stale(study, storage, stale_after=60, connected_since=time.time() - 61) == 1
    assert storage.get_trial(trial._trial_id).state == TrialState.FAIL


def queue_of(kind, n, path):
    """A study of ``n`` waiting trials on ``kind`` storage, whose reads count the trials they hand back."""
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(path / f"{n}.journal")))
    else:
        storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name=f"q{n}")
    distributions = {"x": optuna.distributions.IntDistribution(0, n)}
    study.add_trials([optuna.trial.create_trial(state=TrialState.WAITING, params={"x": i}, distributions=distributions,
                                                user_attrs={"space": "s", "model_index": i}) for i in range(n)])
    reads = [0]
    all_trials, one_trial = storage.get_all_trials, storage.get_trial

    def get_all_trials(*args, **kwargs):
        trials = all_trials(*args, **kwargs)
        reads[0] += len(trials)
        return trials

    def get_trial(trial_id):
        reads[0] += 1
        return one_trial(trial_id)

    storage.get_all_trials, storage.get_trial = get_all_trials, get_trial
    return study, storage, reads


@pytest.mark.parametrize("kind, small", [("memory", 1000), ("journal", 40)])  # a journal fsyncs each trial
def test_a_claims_work_does_not_grow_with_the_queue(kind, small, tmp_path):
    """Trials read per claim, after a worker's first: the same with 10x as many models waiting (a scan of the
    waiting trials per claim, as before, read 10x as many)."""
    per_claim = {}
    for n in (small, 10 * small):
        study, storage, reads = queue_of(kind, n, tmp_path)
        claim(study, storage, "w", stale_after=60)  # the first claim reads the study once
        reads[0] = 0
        numbers = []
        for _ in range(30):
            trial = claim(study, storage, "w", stale_after=60)
            numbers.append(trial.number)
            finish(storage, trial._trial_id, TrialState.COMPLETE, {}, [1.0])
        assert numbers == list(range(1, 31))  # still in queue order
        per_claim[n] = reads[0] / 30
    assert per_claim[10 * small] <= 1.5 * per_claim[small] and per_claim[10 * small] < 10, per_claim


def test_a_claim_skips_trials_another_process_took(tmp_path):
    """Two processes' cursors on one journal: each claim takes a trial nobody holds, in queue order."""
    from optuna.storages.journal import JournalFileBackend

    path = str(tmp_path / "shared.journal")
    first = optuna.storages.JournalStorage(JournalFileBackend(path))
    study = optuna.create_study(storage=first, study_name="shared")
    distributions = {"x": optuna.distributions.IntDistribution(0, 10)}
    study.add_trials([optuna.trial.create_trial(state=TrialState.WAITING, params={"x": i}, distributions=distributions)
                      for i in range(6)])
    second = optuna.storages.JournalStorage(JournalFileBackend(path))
    other = optuna.load_study(study_name="shared", storage=second)
    taken = [claim(study, first, "a", stale_after=60).number, claim(other, second, "b", stale_after=60).number,
             claim(other, second, "b", stale_after=60).number, claim(study, first, "a", stale_after=60).number]
    study.add_trials([optuna.trial.create_trial(state=TrialState.WAITING, params={"x": 9}, distributions=distributions)])
    taken += [claim(study, first, "a", stale_after=60).number for _ in range(3)]
    assert taken == [0, 1, 2, 3, 4, 5, 6]
    assert claim(other, second, "b", stale_after=60) is None
