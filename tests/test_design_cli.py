"""`regnet-space design` through the CLI: bad specs, and a loop SIGKILLed mid-population that resumes to the same
lineage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from optuna.trial import TrialState

from regnet_space.cli import main
from regnet_space.study.spec import load_study_spec
from study_helpers import DESIGN_SPEC as SPEC, cli, load


def _spec(tmp_path, name="tinydesign", **replace):
    text = SPEC.format(name=name)
    for key, value in replace.items():
        text = text.replace(f"{key} = ", f"{key} = {value}\n# was: ", 1)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("key, value, message", [
    ("population", "5", "population: must be an integer >= 20"),
    ("alpha", "1.5", "alpha: must be a number in (0, 1)"),
    ("start", '"nospace"', "unknown design space 'nospace'"),
])
def test_bad_spec_is_one_line_and_exit_2(tmp_path, capsys, key, value, message):
    code = main(["design", str(_spec(tmp_path, **{key: value})), "--dir", str(tmp_path / "d"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("line, message", [
    ('evaluation = "pairs"', "evaluation: must be one of paired, population, got 'pairs'"),
    ("max_pairs = 1", "max_pairs: must be an integer >= 2"),
    ("verify = -1", "verify: must be an integer >= 0"),
    ('references = "regnetx"', "references: must be a list of built-in space names or TOML files"),
    ('references = ["nospace"]', "references: unknown design space 'nospace'"),
])
def test_bad_design_keys_are_one_line_and_exit_2(tmp_path, capsys, line, message):
    spec = _spec(tmp_path)
    spec.write_text(line + "\n" + spec.read_text())
    code = main(["design", str(spec), "--dir", str(tmp_path / "d"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_design_into_a_new_folder_writes_every_output_and_no_password(tmp_path, capsys):
    """Defects 1, 2 and 9 of issue 24: the run into a folder nothing created failed writing its figures (so no
    design_report.html); the report's "Design spec" block published the spec's database password; and the
    command said "storage <dir>" while the spec's database was used. Here the spec names a PostgreSQL URL with
    a password and --storage (an SQLite file) overrides it."""
    secret = "Qdes1gn/pw@x"
    spec = _spec(tmp_path, rounds="0")
    spec.write_text(f'storage = "postgresql+psycopg://alice:{secret}@db.invalid:5432/regnet"\n' + spec.read_text())
    directory = tmp_path / "fresh" / "run"
    url = f"sqlite:///{tmp_path / 'design.db'}"
    code = main(["design", str(spec), "--dir", str(directory), "--storage", url, "--threads", "1", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"storage {url}" in out.err
    for name in ("final_space.toml", "lineage.json", "results.csv", "design_report.html",
                 "figures/edf_rounds.png", "populations/start.toml"):
        assert (directory / name).stat().st_size > 0, name
    for path in directory.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert b"Qdes1gn" not in text and b"pw@x" not in text, path
    assert "db.invalid:5432/regnet" in (directory / "design_report.html").read_text()
    assert "Qdes1gn" not in out.err + out.out
    # Defect 12: the population's spec says where its study lives; status (or a joining worker) needs no --dir
    assert main(["study", "status", str(directory / "populations" / "start.toml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["complete"] == 20


def test_a_population_spec_names_the_design_folder(tmp_path):
    """Defect 12: `study worker runs/<name>/populations/<label>.toml` without --dir trained a separate study in
    runs/<name>-<label>/; a database URL with a password is not written into the file."""
    from regnet_space.design.spec import load_design_spec
    from regnet_space.study.session import study_dir

    design = load_design_spec(_spec(tmp_path))
    population = tmp_path / "run" / "populations" / "start.toml"
    population.parent.mkdir(parents=True)
    (tmp_path / "run" / "spaces").mkdir()
    from regnet_space.spaces import load_space

    (tmp_path / "run" / "spaces" / "start.toml").write_text(load_space("anynetx_a").to_toml())
    population.write_text(design.study_toml("start", "../spaces/start.toml"))
    assert study_dir(load_study_spec(population), None).resolve() == (tmp_path / "run").resolve()
    secret = design.study_toml("start", "../spaces/start.toml", "postgresql+psycopg://u:Qpw9@h/db")
    assert "Qpw9" not in secret and "--storage" in secret
    assert 'storage = "sqlite:///x.db"' in design.study_toml("start", "../spaces/start.toml", "sqlite:///x.db")


def test_design_prints_the_storage_the_spec_names(tmp_path, capsys, monkeypatch):
    """Defect 9: "storage <dir>" was printed while the spec's storage was used."""
    from regnet_space.design.study_evaluate import StudyEvaluator

    def interrupted(self, population):  # stop at the first population: the line is printed before it
        raise KeyboardInterrupt

    monkeypatch.setattr(StudyEvaluator, "__call__", interrupted)
    spec = _spec(tmp_path, rounds="0")
    spec.write_text('storage = "postgresql+psycopg://alice:Qpw1@127.0.0.1:1/regnet"\n' + spec.read_text())
    assert main(["design", str(spec), "--dir", str(tmp_path / "d"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "storage postgresql+psycopg://alice:***@127.0.0.1:1/regnet" in err and "Qpw1" not in err
    # An interrupt outside a population's study run (issue 24, item 13: it printed only "interrupted") says what
    # is kept and how to go on, without the password.
    assert "interrupted; every model trained so far is stored in postgresql+psycopg://alice:***@" in err
    assert "the same command resumes" in err


def _lineage(directory):
    return json.loads((directory / "lineage.json").read_text())


@pytest.mark.slow
def test_sigkilled_design_resumes_to_the_same_lineage(tmp_path):
    """The design process and its workers are SIGKILLed while the last study of the run with at least 4 models
    is training (found from the reference run: a population, or a batch of pairs; a first look of 10 pairs
    less the models already in the candidate space can be too small to kill part-way); the rerun finishes
    with the reference's lineage."""
    spec = _spec(tmp_path)
    reference = cli("design", str(spec), "--dir", str(tmp_path / "ref"), "--threads", "1", "--quiet", timeout=3600)
    assert reference.returncode == 0, reference.stderr
    # the study of 4 or more models trained last (a population, or a paired candidate's batch of pairs)
    studies = sorted((tmp_path / "ref" / "populations").glob("*.toml"), key=lambda p: p.stat().st_mtime_ns)
    last, size = next((p.stem, load_study_spec(p).total) for p in reversed(studies) if load_study_spec(p).total >= 4)
    killed_dir = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "regnet_space.cli", "design", str(spec), "--dir", str(killed_dir),
                                "--threads", "1", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)

    def trained() -> int:
        try:
            return len(load(f"tinydesign-{last}", killed_dir).get_trials(states=(TrialState.COMPLETE,)))
        except (KeyError, FileNotFoundError):  # that population has not started yet
            return 0

    deadline = time.time() + 1800
    while trained() < 3 and time.time() < deadline:
        time.sleep(0.5)
    assert 3 <= trained() < size, "the kill must land while the population is part-trained"
    os.killpg(process.pid, signal.SIGKILL)  # the design process and its workers, no chance to clean up
    process.wait()
    assert not (killed_dir / "lineage.json").exists()
    resumed = cli("design", str(spec), "--dir", str(killed_dir), "--threads", "1", "--quiet", timeout=3600)
    assert resumed.returncode == 0, resumed.stderr
    assert _lineage(killed_dir) == _lineage(tmp_path / "ref")
    assert (killed_dir / "final_space.toml").read_text() == (tmp_path / "ref" / "final_space.toml").read_text()
    for name in ("design_report.html", "results.csv"):
        assert (killed_dir / name).stat().st_size > 0
    # best.json exists when some trained model is a RegNet (not always, on this tiny data): as in the reference
    assert (killed_dir / "best.json").exists() == (tmp_path / "ref" / "best.json").exists()


def test_paired_batches_are_studies_of_listed_projections_with_their_sources_seeds(tmp_path, capsys):
    """Issue 28, item 3: a paired candidate's projections are trained as listed models, each with the training
    seed of the parent model it came from (so a pair shares seed and data order)."""
    import zlib

    spec = _spec(tmp_path, rounds="1")
    spec.write_text("max_pairs = 20\nverify = 0\n" + spec.read_text())
    directory = tmp_path / "run"
    assert main(["design", str(spec), "--dir", str(directory), "--threads", "1", "--quiet"]) == 0, \
        capsys.readouterr().err
    lineage = json.loads((directory / "lineage.json").read_text())
    paired = [row for row in lineage["lineage"] if row["evaluation"] == "paired"]
    assert paired and all(row["pairs"] == row["n"] + row["unchanged"] >= 2 for row in paired)
    start_specs = {int(row["model_index"]): row["spec"] for row in _rows(directory / "results.csv")
                   if row["space"] == "start"}
    listed = sorted((directory / "populations").glob("*-pairs1.models.json"))  # each candidate's first batch
    assert listed
    base = zlib.crc32(b"0:start")
    results = _rows(directory / "results.csv")
    for path in listed:
        models = json.loads(path.read_text())["models"]
        label = path.name.removesuffix(".models.json").rsplit("-pairs", 1)[0]
        mine = [row for row in results if row["space"] == label]
        for model, row in zip(models, mine[:len(models)]):
            assert model["seed"] == base + int(float(row["pair_of"]))  # the source model's seed
            assert row["spec"] != start_specs[int(float(row["pair_of"]))]  # a model already in the space is not retrained
        assert all(0 <= model["seed"] - base < len(start_specs) for model in models)


def _rows(path):
    import csv

    return list(csv.DictReader(path.open()))
