"""End-to-end studies through the CLI on synthetic data: parallel workers, interrupts, killed workers."""

from __future__ import annotations

import csv
import json
import signal
import time

from optuna.trial import TrialState

from study_helpers import cli, complete_counts, load, start_cli, tiny_spec


def test_run_with_two_workers_trains_each_model_exactly_once(tmp_path):
    spec = tiny_spec(tmp_path, n=3)
    result = cli("study", "run", str(spec), "--workers", "2", "--dir", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 0, result.stderr
    counts = complete_counts(load("tiny", tmp_path / "run"))
    assert sorted(counts) == [(s, k) for s in ("anynetx_e", "regnetx") for k in range(3)]
    assert set(counts.values()) == {1}
    study = load("tiny", tmp_path / "run")
    trial = study.get_trials(states=(TrialState.COMPLETE,))[0]
    for key in ("spec", "flops", "params", "acts", "mac", "val_error", "latency_ms", "latency_cv", "latency_reliable",
                "latency_load", "worker", "seconds"):
        assert key in trial.user_attrs, key
    assert trial.user_attrs["latency_ms"] > 0
    assert trial.user_attrs["threads"] == 1  # one torch thread per worker by default
    # A rerun of a finished study trains nothing, and its progress bar does not count the models it found
    # complete as trained in no time (issue 24, item 13: "3.3 s/model" where models took 20-60 s); it says when
    # it asks for more threads than there are CPUs.
    again = cli("study", "run", str(spec), "--dir", str(tmp_path / "run"), "--workers", "2", "--threads", "512")
    assert again.returncode == 0
    assert "6/6" in again.stderr and "?model/s" in again.stderr and "fail: given up" not in again.stderr, again.stderr
    assert "warning: 2 worker(s) x 512 thread(s) = 1024 threads" in again.stderr
    assert len(load("tiny", tmp_path / "run").get_trials(states=(TrialState.COMPLETE,))) == 6


def test_status_json_and_export_agree(tmp_path):
    spec = tiny_spec(tmp_path, n=2)
    assert cli("study", "run", str(spec), "--dir", str(tmp_path / "d"), "--quiet").returncode == 0
    status = json.loads(cli("study", "status", str(spec), "--dir", str(tmp_path / "d"), "--json").stdout)
    table = cli("study", "status", str(spec), "--dir", str(tmp_path / "d")).stdout
    assert "Optuna (and optuna-dashboard) shows every failed attempt as FAIL" in table  # issue 24, item 13
    out = tmp_path / "results.csv"
    assert cli("study", "export", str(spec), "--dir", str(tmp_path / "d"), "--out", str(out)).returncode == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4
    for label, counts in status["spaces"].items():
        mine = [r for r in rows if r["space"] == label]
        assert counts["target"] == 2 == len(mine)
        for key in ("complete", "running", "failed"):
            assert counts[key] == sum(r["status"] == key for r in mine)
        assert counts["diverged"] == sum(r["diverged"] == "True" for r in mine)
    row = rows[0]
    for column in ("space", "model_index", "status", "diverged", "val_error", "flops", "params", "acts", "mac",
                   "latency_ms", "spec", "seconds", "worker"):
        assert column in row
    for jsonl in (tmp_path / "r.jsonl", tmp_path / "r.parquet"):
        assert cli("study", "export", str(spec), "--dir", str(tmp_path / "d"), "--out", str(jsonl)).returncode == 0


def _wait_for(predicate, timeout=120.0, every=0.2):
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = predicate()
        except (FileNotFoundError, KeyError):  # the worker has not created the study yet
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def _running_by(study_dir, worker):
    study = load("slow", study_dir)
    return [t for t in study.get_trials(states=(TrialState.RUNNING,)) if t.user_attrs.get("worker") == worker]


def test_interrupt_then_rerun_trains_no_complete_model_twice(tmp_path):
    spec = tiny_spec(tmp_path, name="slow", n=2, train=3000, epochs=2)
    d = tmp_path / "d"
    log = tmp_path / "w1.log"
    worker = start_cli("study", "worker", str(spec), "--dir", str(d), "--name", "w1", "--threads", "1", log=log)
    _wait_for(lambda: complete_counts(load("slow", d)) and _running_by(d, "w1"))
    completed_before = {t.number for t in load("slow", d).get_trials(states=(TrialState.COMPLETE,))}
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=60) == 130, log.read_text()[-3000:]
    study = load("slow", d)
    interrupted = [t for t in study.get_trials(states=(TrialState.FAIL,)) if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 1
    status = json.loads(cli("study", "status", str(spec), "--dir", str(d), "--json").stdout)
    # Interrupted is not failed: the model is pending again, and its try does not count against its budget.
    assert sum(s["failed"] for s in status["spaces"].values()) == 0
    assert sum(s["pending"] for s in status["spaces"].values()) == 4 - len(completed_before)
    assert cli("study", "run", str(spec), "--dir", str(d), "--quiet").returncode == 0
    study = load("slow", d)
    counts = complete_counts(study)
    assert len(counts) == 4 and set(counts.values()) == {1}
    still = {t.number for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert completed_before <= still  # nothing complete was retrained


def test_sigkilled_worker_is_detected_and_its_model_retried(tmp_path):
    spec = tiny_spec(tmp_path, name="slow", n=2, train=3000, epochs=2)
    d = tmp_path / "d"
    victim = start_cli("study", "worker", str(spec), "--dir", str(d), "--name", "victim", "--threads", "1")
    _wait_for(lambda: _running_by(d, "victim"))
    survivor = start_cli("study", "worker", str(spec), "--dir", str(d), "--name", "survivor", "--threads", "1",
                         log=tmp_path / "survivor.log")
    killed_trial = _running_by(d, "victim")[0].number
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert survivor.wait(timeout=300) == 0, (tmp_path / "survivor.log").read_text()
    study = load("slow", d)
    counts = complete_counts(study)
    assert len(counts) == 4 and set(counts.values()) == {1}
    killed = next(t for t in study.get_trials() if t.number == killed_trial)
    assert killed.state == TrialState.FAIL and "heartbeat" in killed.user_attrs["error"]
    retried = [t for t in study.get_trials(states=(TrialState.COMPLETE,))
               if t.user_attrs["space"] == killed.user_attrs["space"]
               and t.user_attrs["model_index"] == killed.user_attrs["model_index"]]
    assert retried[0].user_attrs["worker"] == "survivor"


def test_stored_study_from_a_different_spec_is_refused(tmp_path):
    spec = tiny_spec(tmp_path, n=1)
    assert cli("study", "run", str(spec), "--dir", str(tmp_path / "d"), "--quiet").returncode == 0
    spec.write_text(spec.read_text().replace("seed = 0", "seed = 1"))
    result = cli("study", "run", str(spec), "--dir", str(tmp_path / "d"), "--quiet")
    assert result.returncode == 2 and "different spec" in result.stderr


def test_status_of_missing_study_is_a_clear_error(tmp_path):
    spec = tiny_spec(tmp_path, n=1)
    result = cli("study", "status", str(spec), "--dir", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "no study at" in result.stderr and "Traceback" not in result.stderr
