"""A model whose training always fails is given up after `[workers] max_attempts` tries, and the study ends."""

from __future__ import annotations

import collections
import json

from optuna.trial import TrialState

from study_helpers import cli, load, tiny_spec


def test_a_model_that_always_fails_is_given_up_after_max_attempts(tmp_path):
    spec = tiny_spec(tmp_path, name="doomed", n=2)
    # On the CPU `compile = true` raises in training, for every model: a deterministic failure the spec
    # cannot catch when loaded (the device is the worker's).
    spec.write_text(spec.read_text().replace("epochs = 1", "epochs = 1\ncompile = true")
                    .replace("stale_after = 8", "stale_after = 8\nmax_attempts = 2"))
    result = cli("study", "run", str(spec), "--workers", "2", "--dir", str(tmp_path / "d"), "--quiet", timeout=240)
    assert result.returncode == 1, result.stderr
    assert "4 model(s) failed 2 time(s) each" in result.stderr
    assert "regnetx #0" in result.stderr and "anynetx_e #1" in result.stderr
    assert "proxy.compile: CUDA only" in result.stderr
    trials = load("doomed", tmp_path / "d").get_trials()
    fails = collections.Counter((t.user_attrs["space"], t.user_attrs["model_index"]) for t in trials
                                if t.state == TrialState.FAIL)
    assert fails == {(s, k): 2 for s in ("regnetx", "anynetx_e") for k in range(2)}
    assert len(trials) == 8  # nothing else was enqueued: no waiting trial is left behind
    status = json.loads(cli("study", "status", str(spec), "--dir", str(tmp_path / "d"), "--json").stdout)
    assert [s["failed"] for s in status["spaces"].values()] == [2, 2]
    assert status["complete"] == 0 and len(status["failed_models"]) == 4
    # A rerun trains nothing more and says the same.
    again = cli("study", "run", str(spec), "--dir", str(tmp_path / "d"), "--quiet", timeout=240)
    assert again.returncode == 1 and "4 model(s) failed" in again.stderr
    assert len(load("doomed", tmp_path / "d").get_trials()) == 8
