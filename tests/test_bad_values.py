"""Hostile values in results tables, published files, model files and flags (issue 24, defects 5, 8 and 9):
each ends with exit 2 and one line naming the problem, never a traceback, a hang or a silent acceptance."""

from __future__ import annotations

import json
import re
import time

import pytest

from analysis_tables import table
from regnet_space.cli import main

NESTED = "[" * 200_000 + "]" * 200_000


def _sweep(path, mutate):
    """A pycls sweep.json of 12 tiny AnyNets, the first changed by ``mutate``."""
    jobs = []
    for i in range(12):
        jobs.append({"cfg": {"MODEL": {"TYPE": "anynet", "NUM_CLASSES": 10},
                             "ANYNET": {"DEPTHS": [1, 1], "WIDTHS": [8, 16], "STRIDES": [2, 2], "STEM_W": 8,
                                        "BLOCK_TYPE": "res_bottleneck_block", "STEM_TYPE": "simple_stem_in",
                                        "BOT_MULS": [1, 1], "GROUP_WS": [8, 8]}},
                     "complexity": {"flops": 1e6, "params": 1e4, "acts": 1e4},
                     "test_epoch": {"min_top1_err": [30.0 + i], "epoch_ind": [1], "epoch_max": [1]}})
    mutate(jobs[0])
    path.mkdir()
    (path / "sweep.json").write_text(json.dumps(jobs))
    return path / "sweep.json"


def _set(keys, value):
    def mutate(job):
        *parents, last = keys.split(".")
        for key in parents:
            job = job[key]
        job[last] = value
    return mutate


def _csv(tmp, name, **columns):
    path = tmp / name
    table(20).assign(**columns).to_csv(path, index=False)
    return path


def _files(tmp):
    """name -> the file each case reads."""
    files = {name: _sweep(tmp / name, _set(keys, value)) for name, keys, value in [
        ("cfg-list", "cfg", [1, 2]), ("model-text", "cfg.MODEL", "anynet"),
        ("epoch-empty", "test_epoch.epoch_ind", []), ("epoch-int", "test_epoch.epoch_ind", 3)]}
    for name, text in [("nested.jsonl", '{"space": "a", "error": ' + NESTED + "}\n"), ("nested.json", NESTED),
                       ("nested-model.json", NESTED),
                       ("repeated.csv", "space,error,error,flops,params\na,1,2,3,4\n"),
                       ("depth.json", json.dumps({"stages": [{"depth": 10**9, "width": 8}]})),
                       ("width.json", json.dumps({"stages": [{"depth": 1, "width": 10**9}]})),
                       ("big.json", json.dumps({"stages": [{"depth": 40, "width": 65536}] * 2})),
                       ("resolution.json", json.dumps({"stages": [{"depth": 1, "width": 8}], "resolution": 10**9})),
                       ("nds-negative.json", json.dumps([{"min_test_top1": 30.0 + i, "flops": -1.0 - i,
                                                          "params": 1.0} for i in range(12)]))]:
        (tmp / name).write_text(text)
        files[name] = tmp / name
    files["flops-huge.csv"] = _csv(tmp, "flops-huge.csv", flops=1e308)
    files["flops-negative.csv"] = _csv(tmp, "flops-negative.csv", flops=-1.0)
    files["wm.csv"] = _csv(tmp, "wm.csv", wm=0.5)
    files["good.csv"] = _csv(tmp, "good.csv")
    from regnet_space.spaces import load_space

    space = load_space("anynetx_a").to_toml()
    for name, old, new in (("deep.toml", "hi = 16 }", "hi = 1000000000 }"),
                           ("stages.toml", "num_stages = 4", "num_stages = 100000")):
        assert old in space
        (tmp / name).write_text(space.replace(old, new))
        files[name] = tmp / name
    groups = table(101)
    groups["space"] = [f"s{i}" for i in range(len(groups))]
    groups.head(101).to_csv(tmp / "groups.csv", index=False)
    files["groups.csv"] = tmp / "groups.csv"
    files["wa.csv"] = _csv(tmp, "wa.csv", wa=-1.0)
    frame = table(20)
    frame["error"] = [[1.0, 2.0]] * len(frame)
    frame.to_parquet(tmp / "list-error.parquet")
    files["list-error.parquet"] = tmp / "list-error.parquet"
    return files


CASES = [  # (id, argv with {file}, regex of the message)
    ("sweep-cfg-list", ["edf", "{cfg-list}"], r"model 0: cfg is list, not an object"),
    ("sweep-model-text", ["edf", "{model-text}"], r"cfg\.MODEL is str"),
    ("sweep-epoch-empty", ["edf", "{epoch-empty}"], r"test_epoch\.epoch_ind=\[\] is not a non-empty list"),
    ("sweep-epoch-int", ["edf", "{epoch-int}"], r"test_epoch\.epoch_ind=3"),
    ("nested-jsonl", ["edf", "{nested.jsonl}"], r"line 1: nested too deeply"),
    ("nested-published", ["edf", "{nested.json}"], r"nested too deeply"),
    ("nested-model", ["describe", "{nested-model.json}"], r"nested too deeply"),
    ("report-flops-1e308", ["report", "{flops-huge.csv}", "--out", "{tmp}/r.html", "--samples", "20"],
     r"flops=1e\+308 is not a count"),
    ("edf-flops-negative", ["edf", "{flops-negative.csv}", "--normalize", "flops"], r"flops=-1.0 is not a count"),
    ("edf-nds-flops-negative", ["edf", "{nds-negative.json}"], r"flops=-1.0 is not a count"),
    ("report-wm-below-1", ["report", "{wm.csv}", "--out", "{tmp}/r.html", "--samples", "20"], r"wm=0.5"),
    ("report-wa-negative", ["report", "{wa.csv}", "--out", "{tmp}/r.html", "--samples", "20"], r"wa=-1.0"),
    ("parquet-list-error", ["edf", "{list-error.parquet}"], r"error=.* is not a finite number"),
    ("describe-depth-1e9", ["describe", "{depth.json}"], r"stages\[0\]\.depth: must be an integer in \[1, 3,330\]"),
    ("describe-width-1e9", ["describe", "{width.json}"], r"stages\[0\]\.width: must be an integer in \[1, 65,536\]"),
    ("describe-resolution-1e9", ["describe", "{resolution.json}"], r"resolution: must be an integer in \[1, 8,000\]"),
    ("sample-resolution-1e9", ["sample", "regnetx", "-n", "2", "--resolution", "1000000000"], r"resolution: must be"),
    ("train-batch-1e7", ["train", "regnetx_002", "--dataset", "synthetic", "--batch-size", "10000000"],
     r"training needs at least .*GB of memory at batch size 10000000 .*available"),
    ("profile-batch-1e6", ["profile", "regnetx_002", "--batch-size", "1000000"],
     r"regnetx_002 needs at least 602\.12GB"),
    ("export-onnx-too-big", ["export", "{big.json}", "--format", "onnx", "--out", "{tmp}/big.onnx"],
     r"the model needs at least .*GB of memory at batch size 1"),
    ("edf-101-groups", ["edf", "{groups.csv}"], r"101 groups; at most 100"),
    ("edf-bins-1e9", ["edf", "{good.csv}", "--normalize", "flops", "--bins", "1000000000"],
     r"--bins 1,000,000,000: more bins than models \(40\)"),
    ("sample-n-1e9", ["sample", "regnetx", "-n", "1000000000"], r"at most 1,000,000 models a call"),
    ("space-depth-1e9", ["sample", "{deep.toml}", "-n", "2"], r"1,000,000,000 values .*at most 65,536"),
    ("space-1e5-stages", ["sample", "{stages.toml}", "-n", "2"], r"num_stages: must be an integer in \[1, 50\]"),
    ("report-repeated-column", ["report", "{repeated.csv}", "--out", "{tmp}/r.html", "--samples", "20"],
     r"a column name appears twice"),
    ("regnet-repeated-key", ["describe", "--regnet", "depth=13,depth=14,w0=24,wa=36.44,wm=2.49,group_width=8"],
     r"--regnet: depth is given twice"),
]


def _filled(arg, files):
    for name, path in files.items():
        arg = arg.replace("{" + name + "}", str(path))
    return arg


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-values")
    return {"tmp": tmp, **_files(tmp)}


@pytest.mark.parametrize("case, argv, pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_value_is_one_line_and_exit_2(files, capsys, case, argv, pattern):
    started = time.monotonic()
    code = main([_filled(a, files) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert lines[-1].startswith("regnet-space: error: ") and re.search(pattern, lines[-1]), err
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("argv", [["sample", "regnetx", "-n", "2", "--seed", "-1"],
                                  ["edf", "x.csv", "--seed", "-1"]])
def test_a_negative_seed_is_refused_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "--seed: -1 must be >= 0" in capsys.readouterr().err


def test_a_study_spec_with_a_negative_seed_is_refused(tmp_path, capsys):
    from study_helpers import tiny_study

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_study("neg").replace("seed = 0", "seed = -1"))
    assert main(["study", "status", str(spec), "--dir", str(tmp_path / "d")]) == 2
    assert "seed: must be an integer >= 0, got -1" in capsys.readouterr().err
