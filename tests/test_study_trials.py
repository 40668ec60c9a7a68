"""The trial bookkeeping of studies, on in-memory Optuna storage: enqueue order, claims, model states."""

import optuna
from optuna.trial import TrialState

from regnet_space.spaces import load_space, sample_models
from regnet_space.study.params import space_distributions
from regnet_space.study.trials import claim, enqueue_missing, model_states, waiting_trial


SPACES = ("anynetx_a", "regnetx")
DISTRIBUTIONS = {label: space_distributions(load_space(label)) for label in SPACES}


def population(n=3):
    return {label: sample_models(load_space(label), n, seed=i, resolution=8, in_channels=1, num_classes=4,
                                 windows={"flops": (0, 4e5)})
            for i, label in enumerate(SPACES)}


def new_study():
    storage = optuna.storages.InMemoryStorage()
    return optuna.create_study(storage=storage, direction="minimize"), storage


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
    # A second process enqueued the same population at the same moment: every model has two waiting trials.
    for label, models in pop.items():
        study.add_trial(waiting_trial(label, 0, models[0], DISTRIBUTIONS[label]))
    claimed = []
    while (trial := claim(study, storage, "w", stale_after=60)) is not None:
        claimed.append((trial.user_attrs["space"], trial.user_attrs["model_index"]))
        storage.set_trial_state_values(trial._trial_id, state=TrialState.COMPLETE, values=[1.0])
    assert sorted(claimed) == [("anynetx_a", 0), ("regnetx", 0)]
    states = model_states(study.get_trials(), {"anynetx_a": 1, "regnetx": 1}, stale_after=60)
    assert {s.status for s in states.values()} == {"complete"}
    assert sum(t.user_attrs.get("superseded", False) for t in study.get_trials()) == 2


def test_a_stale_running_trial_is_failed_and_its_model_enqueued_again():
    study, storage = new_study()
    enqueue_missing(study, storage, population(1), stale_after=60, distributions=DISTRIBUTIONS)
    trial = claim(study, storage, "dead-worker", stale_after=60)
    storage.set_trial_user_attr(trial._trial_id, "heartbeat", 0.0)  # last heard of in 1970
    states = model_states(study.get_trials(), {"anynetx_a": 1, "regnetx": 1}, stale_after=60)
    assert states[(trial.user_attrs["space"], 0)].status == "failed"
    assert enqueue_missing(study, storage, population(1), stale_after=60, distributions=DISTRIBUTIONS) == 1
    assert storage.get_trial(trial._trial_id).state == TrialState.FAIL
    assert "heartbeat" in storage.get_trial(trial._trial_id).user_attrs["error"]
