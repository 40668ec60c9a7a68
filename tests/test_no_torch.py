"""Commands that build no model never import PyTorch (its import is over a second of every start-up), and still
work: each runs in a fresh process through ``regnet_space.cli.main``, which then reports which of ``torch`` and
``pandas`` are in ``sys.modules``. ``edf`` on a CSV or JSON-lines file needs no pandas either (half a second)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from analysis_tables import table
from study_helpers import tiny_study

# main(argv), then a last line naming which of torch and pandas were imported; the exit code is the command's.
RUN = ("import sys; from regnet_space.cli import main; code = main(sys.argv[1:]); "
       "print('imported:', *(m for m in ('torch', 'pandas') if m in sys.modules)); sys.exit(code)")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A results table, and a journal study with its population enqueued and one trial finished (no training)."""
    from optuna.trial import TrialState

    from regnet_space.study import load_study_spec
    from regnet_space.study.population import DataShape, build_population, population_distributions
    from regnet_space.study.session import open_study
    from regnet_space.study.trials import enqueue_missing

    tmp = tmp_path_factory.mktemp("no-torch")
    spec = tmp / "tiny.toml"
    spec.write_text(tiny_study("tiny", n=2, train=64))
    session = open_study(load_study_spec(spec), directory=str(tmp / "study"))
    population = build_population(session.spec, DataShape(8, 1, 4))
    enqueue_missing(session.study, session.storage, population, stale_after=8,
                    distributions=population_distributions(session.spec))
    trial = session.study.get_trials()[0]
    session.storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING)
    session.storage.set_trial_user_attr(trial._trial_id, "val_error", 50.0)
    session.storage.set_trial_state_values(trial._trial_id, state=TrialState.COMPLETE, values=[50.0])
    table(30).to_csv(tmp / "results.csv", index=False)
    table(30).to_json(tmp / "results.jsonl", orient="records", lines=True)
    return tmp


def run(*argv: str) -> tuple[str, list[str], str]:
    """(stdout less the last line, the modules of the last line, stderr) of a command that succeeds."""
    done = subprocess.run([sys.executable, "-c", RUN, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    *output, marker = done.stdout.rstrip("\n").split("\n")
    assert marker.startswith("imported:")
    return "\n".join(output), marker.split()[1:], done.stderr


@pytest.mark.parametrize("argv, expected", [
    (["spaces"], "regnetx"),
    (["sample", "regnetx", "-n", "3", "--flops", "100M:800M"], '"sampled"'),
    (["edf", "{tmp}/results.csv", "--json"], '"groups"'),
    (["refine", "{tmp}/results.csv", "--space", "anynetx_a", "--out", "{tmp}/refined.toml"], "refined.toml"),
    (["best", "{tmp}/results.csv", "--out", "{tmp}/best.json"], "best RegNet"),
    (["report", "{tmp}/results.csv", "--out", "{tmp}/report.html", "--samples", "200"], "report.html"),
    (["power", "{tmp}/results.csv", "--replicates", "50", "--max-n", "40"], "anynetx_a"),
    (["study", "status", "{tmp}/tiny.toml", "--dir", "{tmp}/study"], "regnetx"),
    (["study", "export", "{tmp}/tiny.toml", "--dir", "{tmp}/study", "--out", "{tmp}/export.csv"], "wrote 4 models"),
], ids=lambda v: v[0] if isinstance(v, list) and v[0] != "study" else None)
def test_command_runs_without_torch(world, argv, expected):
    output, imported, messages = run(*(a.format(tmp=world) for a in argv))
    assert expected in output + messages
    assert "torch" not in imported


@pytest.mark.parametrize("argv", [["results.csv", "--json"], ["results.jsonl", "--normalize", "flops", "--bins", "3"],
                                  ["results.csv,results.jsonl", "--by", "depth"]])
def test_edf_on_a_csv_or_jsonl_file_imports_neither_torch_nor_pandas(world, argv):
    output, imported, _ = run("edf", *(",".join(str(world / p) for p in argv[0].split(",")), *argv[1:]))
    assert output and imported == []


def test_edf_json_is_the_analysis(world):
    output, _, _ = run("edf", str(world / "results.csv"), "--json")
    assert json.loads(output)["groups"]["regnetx"]["n"] == 30


def test_the_check_sees_torch_where_a_model_is_built():
    build = RUN.replace("code = main(sys.argv[1:])", "import regnet_space; regnet_space.build_model('regnetx_002'); code = 0")
    done = subprocess.run([sys.executable, "-c", build], capture_output=True, text=True, timeout=300)
    assert "torch" in done.stdout.split()[1:]
