"""A study that trains listed models (``models = FILE``): the design loop's paired evaluation trains each
projection with its source model's seed, so the listed seed must be the one training uses."""

from __future__ import annotations

import csv
import json
import re

from study_helpers import cli, synthetic_study

from regnet_space.spaces import load_space, sample_models
from regnet_space.study.spec import MODELS_FORMAT


def _listed(tmp_path, entries) -> str:
    path = tmp_path / "listed.json"
    path.write_text(json.dumps({"format": MODELS_FORMAT, "models": entries}))
    return path.name


def _models(n: int):
    return sample_models(load_space("regnetx"), n, seed=3, windows={"flops": (0, 400e3)}, resolution=8,
                         in_channels=1, num_classes=4, input_form="imagenet")


def test_listed_models_train_with_their_own_seeds(tmp_path):
    a, b = _models(2)
    entry = lambda m, seed: {"params": m.params, "spec": json.loads(m.spec.to_json()), "seed": seed}  # noqa: E731
    listed = _listed(tmp_path, [entry(a, 7), entry(a, 7), entry(a, 8), entry(b, 7)])
    text = synthetic_study("listed", n=4, spaces=("regnetx",)).replace("\nn = 4\n", f'\nn = 4\nmodels = "{listed}"\n')
    spec = tmp_path / "listed.toml"
    spec.write_text(text)
    run = cli("study", "run", str(spec), "--dir", str(tmp_path / "d"), "--quiet", "--workers", "2")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "r.csv"
    assert cli("study", "export", str(spec), "--dir", str(tmp_path / "d"), "--out", str(out)).returncode == 0
    rows = sorted(csv.DictReader(out.open()), key=lambda r: int(r["model_index"]))
    assert [r["spec"] for r in rows] == [m.spec.to_json() for m in (a, a, a, b)]
    errors = [float(r["val_error"]) for r in rows]
    assert errors[0] == errors[1]  # the same model and seed, trained by different workers: the same error


def test_a_changed_model_list_is_a_different_study(tmp_path):
    a, b = _models(2)
    entry = lambda m: {"params": m.params, "spec": json.loads(m.spec.to_json()), "seed": 1}  # noqa: E731
    listed = _listed(tmp_path, [entry(a)])
    spec = tmp_path / "s.toml"
    spec.write_text(synthetic_study("s", n=1, spaces=("regnetx",)).replace("\nn = 1\n", f'\nn = 1\nmodels = "{listed}"\n'))
    assert cli("study", "run", str(spec), "--dir", str(tmp_path / "d"), "--quiet").returncode == 0
    _listed(tmp_path, [entry(b)])
    again = cli("study", "run", str(spec), "--dir", str(tmp_path / "d"), "--quiet")
    assert again.returncode == 2 and "different spec" in again.stderr, again.stderr


def test_bad_model_lists_are_one_line_errors(tmp_path):
    a, = _models(1)
    good = {"params": a.params, "spec": json.loads(a.spec.to_json()), "seed": 1}
    cases = {
        "not json": ("{", "not valid JSON"),
        "wrong format": (json.dumps({"format": "x", "models": []}), "not a model list"),
        "extra key": (json.dumps({"format": MODELS_FORMAT, "models": [{**good, "code": 1}]}), "exactly params"),
        "bad seed": (json.dumps({"format": MODELS_FORMAT, "models": [{**good, "seed": -1}]}), r"seed: expected"),
        "bad spec": (json.dumps({"format": MODELS_FORMAT, "models": [{**good, "spec": {"stem": 1}}]}),
                     "not a model spec"),
        "count": (json.dumps({"format": MODELS_FORMAT, "models": [good, good]}), "lists 2 models"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / "listed.json").write_text(content)
        spec = tmp_path / "s.toml"
        spec.write_text(synthetic_study("s", n=1, spaces=("regnetx",)).replace("\nn = 1\n", '\nn = 1\nmodels = "listed.json"\n'))
        result = cli("study", "status", str(spec), "--dir", str(tmp_path / "d"))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "regnet-space: error:" in lines[0], (name, result.stderr)
        assert re.search(message, lines[0]), (name, lines[0])
