"""``snapshot.read_journal`` (what `study status` reads a journal with) against Optuna's own replay of the same file,
including the records Optuna's replay drops: a claim that lost its race, updates to a finished trial."""

import json

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from regnet_space.study.snapshot import read_journal
from regnet_space.study.storage import journal_records

KEYS = ("space", "model_index", "heartbeat", "val_error")


def test_read_journal_sees_what_optunas_replay_sees(tmp_path):
    path = tmp_path / "study.journal"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    other = optuna.create_study(study_name="other", storage=storage)
    gone = optuna.create_study(study_name="s", storage=storage)
    gone.enqueue_trial({"x": 1.0})  # trial ids count the trials of a study deleted later too
    optuna.delete_study(study_name="s", storage=storage)
    study = optuna.create_study(study_name="s", storage=storage)
    study.set_user_attr("population_fingerprint", "abc")
    for i in range(6):
        study.enqueue_trial({"x": float(i)}, user_attrs={"space": "a", "model_index": i, "spec": "{...}"})
        other.enqueue_trial({"x": 9.0})
    ids = [t._trial_id for t in storage.get_all_trials(study._study_id)]
    for trial_id in ids[:4]:
        storage.set_trial_state_values(trial_id, TrialState.RUNNING)
        storage.set_trial_user_attr(trial_id, "heartbeat", 1.5)
        storage.set_trial_user_attr(trial_id, "worker", "w0")  # not among KEYS
    storage.set_trial_user_attr(ids[0], "val_error", 12.5)
    storage.set_trial_state_values(ids[0], TrialState.COMPLETE, [12.5])
    storage.set_trial_state_values(ids[1], TrialState.FAIL)
    storage.set_trial_state_values(ids[5], TrialState.COMPLETE, [7.0])  # straight from WAITING
    # Records of another process that Optuna's replay drops: a second claim of a running trial, and updates
    # to finished trials.
    rival = "another-process-1"
    dropped = [
        {"op_code": 6, "worker_id": rival, "trial_id": ids[2], "state": 0, "values": None,
         "datetime_start": "2030-01-01T00:00:00+00:00"},
        {"op_code": 8, "worker_id": rival, "trial_id": ids[0], "user_attr": {"val_error": 99.0}},
        {"op_code": 6, "worker_id": rival, "trial_id": ids[1], "state": 1, "values": [1.0],
         "datetime_complete": "2030-01-01T00:00:00+00:00"},
    ]
    with open(path, "a") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in dropped)

    replayed = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    expected = replayed.get_all_trials(optuna.load_study(study_name="s", storage=replayed)._study_id)
    read = read_journal(journal_records(path), "s", KEYS)
    # status leaves other keys' attribute records unparsed (Optuna writes "op_code": 8, ours "op_code":8)
    assert read_journal(journal_records(path, frozenset(KEYS)), "s", KEYS) == read
    compact = tmp_path / "compact.journal"
    compact.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in journal_records(path)))
    assert read_journal(journal_records(compact, frozenset(KEYS)), "s", KEYS) == read
    for journal in (path, compact):  # the "worker" attribute records were left out
        assert len(list(journal_records(journal, frozenset(KEYS)))) < len(list(journal_records(journal)))

    assert read.user_attrs == {"population_fingerprint": "abc"}
    assert [(v._trial_id, v.number, v.state, v.datetime_start, v.value, v.user_attrs) for v in read.trials] == [
        (t._trial_id, t.number, t.state, t.datetime_start, t.value if t.values else None,
         {k: t.user_attrs[k] for k in KEYS if k in t.user_attrs}) for t in expected]
    assert [v.state for v in read.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING,
                                              TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE]
    assert read.trials[0].user_attrs["val_error"] == 12.5 and read.trials[0]._trial_id == 1  # after the deleted one
    assert read_journal(journal_records(path), "missing", KEYS) is None
