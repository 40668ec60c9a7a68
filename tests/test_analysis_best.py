"""`regnet-space best`: the winner as a RegNet config that describe/build_model rebuild at its own data size."""

import html
import importlib.util
import json

import pandas as pd
import pytest
import torch

from analysis_tables import SMALL_DATA, anynet_rows, regnet_rows, table
from regnet_space import build_model
from regnet_space.analysis.best import best_config, best_row
from regnet_space.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _describe(capsys, path):
    code, out, _ = _run(capsys, "describe", str(path), "--json")
    assert code == 0
    return json.loads(out)


def test_ties_go_to_fewer_flops():
    frame = pd.DataFrame({"space": ["a", "a", "b"], "error": [5.0, 5.0, 6.0], "flops": [20, 10, 1]})
    assert best_row(frame)["flops"] == 10
    assert best_row(frame, "b")["flops"] == 1


def test_best_json_round_trips_through_describe_and_build_model(tmp_path, capsys):
    results = tmp_path / "results.parquet"
    frame = table(40, seed=3).assign(test_error=lambda f: f["error"] + 1)
    frame.to_parquet(results)
    out = tmp_path / "best.json"
    code, text, _ = _run(capsys, "best", str(results), "--json", "--out", str(out))
    config = json.loads(text)
    assert code == 0 and json.loads(out.read_text()) == config
    winner = frame.sort_values(["error", "flops"]).iloc[0]
    assert config["space"] == winner["space"] == "regnetx" and config["source"] == "regnet"
    assert config["errors"] == {"val": winner["error"], "test_error": winner["test_error"]}
    for key in ("depth", "w0", "wa", "wm", "group_width", "bottleneck_ratio", "se_ratio"):
        assert config[key] == winner[key], key
    assert (config["flops"], config["params"], config["acts"]) == (winner["flops"], winner["params"], winner["acts"])
    assert config["matches_measured"] is True
    described = _describe(capsys, out)
    for key in ("widths", "depths", "group_widths", "flops", "params", "acts", "resolution", "in_channels",
                "num_classes"):
        assert described[key] == config[key], key
    assert described["resolution"] == SMALL_DATA["resolution"]
    model = build_model(str(out)).eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, SMALL_DATA["in_channels"], SMALL_DATA["resolution"], SMALL_DATA["resolution"]))
    assert logits.shape == (2, SMALL_DATA["num_classes"])
    # The data flags still override the stored size.
    code, text, _ = _run(capsys, "describe", str(out), "--resolution", "224", "--in-channels", "3", "--json")
    assert json.loads(text)["resolution"] == 224 and json.loads(text)["flops"] > config["flops"]


def test_anynet_winner_becomes_its_nearest_regnet(tmp_path, capsys):
    frame = pd.DataFrame(anynet_rows(30, seed=4))
    config = best_config(frame, {"name": "t", "dataset": {"name": "synthetic"}, "proxy": {"epochs": 1}})
    winner = frame.sort_values(["error", "flops"]).iloc[0]
    assert config["source"].startswith("anynet") and 0 < config["e_fit"] < 2
    assert config["measured"]["flops"] == winner["flops"] and config["matches_measured"] is False
    assert config["data"] == {"name": "synthetic"} and config["proxy"] == {"epochs": 1}
    path = tmp_path / "best.json"
    path.write_text(json.dumps(config))
    described = _describe(capsys, path)
    assert (described["widths"], described["flops"], described["params"]) == \
        (config["widths"], config["flops"], config["params"])


def test_unknown_space_exits_2(tmp_path, capsys):
    path = tmp_path / "r.csv"
    pd.DataFrame(regnet_rows(3, seed=0)).to_csv(path, index=False)
    code, _, err = _run(capsys, "best", str(path), "--space", "nope")
    assert code == 2 and "--space nope: no models of that space (spaces: regnetx)" in err


@pytest.mark.skipif(importlib.util.find_spec("regnet_space.study") is None,
                    reason="regnet_space.study (the study engine) is not in this tree yet")
def test_best_edf_and_report_of_a_real_study(tmp_path, capsys):
    from study_helpers import cli, tiny_spec

    spec = tiny_spec(tmp_path, n=2)
    run = cli("study", "run", str(spec), "--dir", str(tmp_path / "run"), "--quiet")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "best.json"
    code, _, err = _run(capsys, "best", str(spec), "--dir", str(tmp_path / "run"), "--out", str(out))
    assert code == 0, err
    config = json.loads(out.read_text())
    assert config["study"] == "tiny" and config["proxy"]["epochs"] == 1 and "synthetic" in config["data"]["name"]
    described = _describe(capsys, out)
    for key in ("widths", "depths", "flops", "params", "acts", "resolution", "num_classes"):
        assert described[key] == config[key], key
    code, text, _ = _run(capsys, "edf", str(spec), "--dir", str(tmp_path / "run"), "--json")
    groups = json.loads(text)["groups"]
    assert code == 0 and {g["n"] for g in groups.values()} == {2}
    assert min(g["min_error"] for g in groups.values()) == config["errors"]["val"]
    report = tmp_path / "report.html"
    assert main(["report", str(spec), "--dir", str(tmp_path / "run"), "--out", str(report), "--samples", "200",
                 "--bins", "1"]) == 0
    text = html.unescape(report.read_text())
    assert "<h2>Study spec</h2>" in text and 'name = "tiny"' in text and '"epochs": 1' in text
