"""`regnet-space best`: the winner as a RegNet config that describe/build_model rebuild at its own data size."""

import html
import importlib.util
import json

import pandas as pd
import pytest
import torch

from analysis_tables import SMALL_DATA, regnet_rows, table
from regnet_space import build_model
from regnet_space import AnyNetSpec, RegNetParams, StageSpec, complexity
from regnet_space.analysis.best import MAX_E_FIT, best_config, best_row, nearest_regnet
from regnet_space.analysis.table import REGNET_PARAMETERS
from regnet_space.cli import main
from regnet_space.models.resolve import resolve_model


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


def _anynet_row(widths, depths, error, group_width=8, space="anynetx_a", index=0):
    spec = AnyNetSpec(stages=tuple(StageSpec(depth=d, width=w, stride=2, group_width=group_width)
                                   for w, d in zip(widths, depths)), **SMALL_DATA)
    cx = complexity(spec)
    return {"space": space, "error": error, "flops": cx.flops, "params": cx.params, "acts": cx.acts,
            "mac": cx.mac, "spec": spec.to_json(), "model_index": index}


def test_demo_situation_emits_the_best_measured_regnet_and_no_unmeasured_error():
    # The best model is an AnyNet model far from any RegNet (e_fit well above the limit): the emitted config
    # must be the best model of the RegNet space, with its own measured error, and name the AnyNet winner.
    far = _anynet_row([128, 16, 128, 16], [7, 7, 7, 7], error=18.33)
    regnets = regnet_rows(10, seed=5)
    best_regnet = min(regnets, key=lambda r: (r["error"], r["flops"]))
    best_regnet["error"] = 18.37
    config = best_config(pd.DataFrame([far] + regnets), {"name": "t"})
    assert config["source"] == "regnet" and config["space"] == "regnetx"
    assert config["model_index"] == best_regnet["model_index"] and config["errors"] == {"val": 18.37}
    assert config["matches_measured"] is True and len(config["widths"]) == 4
    assert config["study_best"] == {"space": "anynetx_a", "error": 18.33, "flops": far["flops"], "is_regnet": False,
                                    "model_index": 0}


def test_an_anynet_model_near_a_regnet_is_emitted_without_errors_of_its_own():
    # RegNetX-200MF's stages with one width off the line: e_fit ~ 0.016, same 4 stages, so it is a RegNet
    # candidate; the emitted config is not the trained network, so its error is the source's, not its own.
    near = _anynet_row([24, 56, 160, 368], [1, 1, 4, 7], error=10.0)
    config = best_config(pd.DataFrame([near] + regnet_rows(5, seed=1)), {"name": "t"})
    assert config["source"].startswith("anynet") and 0 < config["e_fit"] <= MAX_E_FIT
    assert "errors" not in config and config["matches_measured"] is False
    assert config["measured"]["errors"] == {"val": 10.0} and len(config["widths"]) == 4
    assert (config.get("stem_type", "simple"), config.get("first_stride", 2)) == ("simple", 2)  # its input form


def test_no_regnet_in_the_table_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "r.csv"
    pd.DataFrame([_anynet_row([128, 16, 128, 16], [7, 7, 7, 7], error=20.0)]).to_csv(path, index=False)
    code, _, err = _run(capsys, "best", str(path))
    assert code == 2 and "no model is a RegNet" in err


def test_small_form_regnet_config_rebuilds_the_trained_network(tmp_path, capsys):
    params = RegNetParams(depth=13, w0=24, wa=36.44, wm=2.49, group_width=8, stem_type="cifar", stem_width=16,
                          first_stride=1)
    spec = params.to_spec(**SMALL_DATA)
    row = {"space": "regnetx", "error": 12.0, "model_index": 3, **complexity(spec).to_dict(),
           "spec": spec.to_json(), **{k: v for k, v in params.to_dict().items() if k in REGNET_PARAMETERS}}
    config = best_config(pd.DataFrame([row]), {"name": "t"})
    assert config["matches_measured"] is True and config["errors"] == {"val": 12.0}
    path = tmp_path / "best.json"
    path.write_text(json.dumps(config))
    assert resolve_model(str(path)) == spec and spec.stage_resolutions() == [28, 14, 7, 4]


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
    code, text, err = _run(capsys, "best", str(spec), "--dir", str(tmp_path / "run"), "--out", str(out), "--verify")
    assert code == 0, err
    config = json.loads(out.read_text())
    # --verify trained the emitted config with the study's proxy: its own error, beside the source model's.
    verified = config["verified"]
    assert verified["status"] in ("ok", "diverged") and verified["seed"] == 0
    assert verified["status"] != "ok" or 0 <= verified["val_error"] <= 100
    assert "verified: the emitted config trained" in text
    assert config["study"] == "tiny" and config["proxy"]["epochs"] == 1 and "synthetic" in config["data"]["name"]
    described = _describe(capsys, out)
    for key in ("widths", "depths", "flops", "params", "acts", "resolution", "num_classes"):
        assert described[key] == config[key], key
    code, text, _ = _run(capsys, "edf", str(spec), "--dir", str(tmp_path / "run"), "--json")
    groups = json.loads(text)["groups"]
    assert code == 0 and {g["n"] for g in groups.values()} == {2}
    assert groups["regnetx"]["min_error"] == config["measured"]["errors"]["val"]  # the best RegNet-space model
    report = tmp_path / "report.html"
    assert main(["report", str(spec), "--dir", str(tmp_path / "run"), "--out", str(report), "--samples", "200",
                 "--bins", "1"]) == 0
    text = html.unescape(report.read_text())
    assert "<h2>Study spec</h2>" in text and 'name = "tiny"' in text and '"epochs": 1' in text


def _regnet_row(params: RegNetParams, error: float, index: int, space: str = "regnetx") -> dict:
    spec = params.to_spec(**SMALL_DATA)
    cx = complexity(spec)
    return {"space": space, "error": error, "flops": cx.flops, "params": cx.params, "acts": cx.acts, "mac": cx.mac,
            "spec": spec.to_json(), "model_index": index,
            **{k: v for k, v in params.to_dict().items() if k not in ("stem_width", "q")}}


def _fitted_and_measured(fit_error=15.5, config_error=28.57, other_error=16.0):
    """The audit's table: an AnyNet model near a RegNet labelled fit_error; that RegNet config itself measured at
    config_error in the RegNet space; another measured RegNet at other_error."""
    near = _anynet_row([24, 56, 160, 368], [1, 1, 4, 7], error=fit_error, index=7)
    params, _ = nearest_regnet(AnyNetSpec.from_json(near["spec"]))
    others = [_regnet_row(RegNetParams(depth=d, w0=16, wa=24.0, wm=2.5, group_width=8), e, index)
              for index, (d, e) in enumerate([(8, other_error), (10, 20.0), (12, 22.0)], start=1)]
    return [near, _regnet_row(params, config_error, index=0)] + others


def test_a_fit_whose_config_was_measured_carries_that_measurement_and_loses_to_a_better_measured_regnet():
    config = best_config(pd.DataFrame(_fitted_and_measured()), {"name": "t"})
    assert (config["source"], config["errors"], config["model_index"]) == ("regnet", {"val": 16.0}, 1)
    assert config["matches_measured"] is True and config["study_best"]["error"] == 15.5
    # Where the measured config is better than the fit's label, it wins, with its own measurement as its error.
    config = best_config(pd.DataFrame(_fitted_and_measured(fit_error=17.0, config_error=14.0)), {"name": "t"})
    assert config["errors"] == {"val": 14.0} and config["model_index"] == 0 and config["source"] == "regnet"


def test_an_identical_model_of_another_space_is_the_fits_measurement():
    rows = _fitted_and_measured(fit_error=15.5, config_error=15.9, other_error=16.0)
    rows[1] = {k: v for k, v in rows[1].items() if k not in REGNET_PARAMETERS} | {"space": "anynetx_e"}
    config = best_config(pd.DataFrame(rows), {"name": "t"})
    # The fit of model 7 is chosen (its evidence, 15.9%, is below 16.0%) and its error is the twin's measurement.
    assert config["source"].startswith("anynet") and config["matches_measured"] is True
    assert config["errors"] == {"val": 15.9} and config["measurements"] == [
        {"space": "anynetx_e", "error": 15.9, "model_index": 0}]
    assert config["measured"]["errors"] == {"val": 15.5}  # the source model's own error stays the source's


def test_an_unmeasured_fit_names_the_best_measured_regnet_and_warns():
    rows = _fitted_and_measured()
    del rows[1]  # nobody trained the fitted config
    with pytest.warns(RuntimeWarning, match="a fit nobody trained"):
        config = best_config(pd.DataFrame(rows), {"name": "t"})
    assert config["source"].startswith("anynet") and "errors" not in config
    assert (config["best_measured"]["error"], config["best_measured"]["model_index"]) == (16.0, 1)
    assert config["best_measured"]["depth"] == 8


def test_diverged_models_are_never_best(tmp_path, capsys):
    rows = _fitted_and_measured()[2:]  # three measured RegNets: 16.0, 20.0, 22.0
    rows[0]["error"] = 90.0  # at chance for 10 classes: what a study records for a diverged model
    with pytest.warns(RuntimeWarning, match="1 models diverged .* regnetx model 1 at 90.00%"):
        config = best_config(pd.DataFrame(rows), {"name": "t"})
    assert config["errors"] == {"val": 20.0}
    flagged = pd.DataFrame(_fitted_and_measured()[2:]).assign(diverged=[True, False, False])
    with pytest.warns(RuntimeWarning, match="1 models diverged"):
        assert best_config(flagged, {"name": "t"})["errors"] == {"val": 20.0}
    # A config measured diverged elsewhere is no candidate either.
    twin = _fitted_and_measured()[2] | {"space": "anynetx_e", "error": 89.0, "model_index": 9}
    for key in REGNET_PARAMETERS:
        twin.pop(key, None)
    with pytest.warns(RuntimeWarning, match="diverged in 1 of its 2 measurements"):
        assert best_config(pd.DataFrame(_fitted_and_measured()[2:] + [twin]), {"name": "t"})["errors"] == \
            {"val": 20.0}
    everything = pd.DataFrame(_fitted_and_measured()[2:]).assign(error=[89.5, 90.0, 90.0])
    path = tmp_path / "diverged.csv"
    everything.to_csv(path, index=False)
    assert main(["best", str(path)]) == 2
    assert "every such model diverged" in capsys.readouterr().err


def test_models_without_an_error_are_dropped_with_a_warning(tmp_path, capsys):
    rows = _fitted_and_measured()[2:]
    rows.append(rows[0] | {"error": float("nan"), "model_index": 5})
    with pytest.warns(RuntimeWarning, match="1 models have no error"):
        assert best_config(pd.DataFrame(rows), {"name": "t"})["errors"] == {"val": 16.0}


def test_best_cli_names_the_best_measured_regnet_and_prints_the_warnings(tmp_path, capsys):
    rows = _fitted_and_measured()
    del rows[1]  # the fit of model 7 was never trained
    rows.append(_regnet_row(RegNetParams(depth=14, w0=16, wa=24.0, wm=2.5, group_width=8), 90.0, 8))
    path = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert main(["best", str(path)]) == 0
    captured = capsys.readouterr()
    assert "not trained as emitted; its source model's val error 15.50%" in captured.out
    assert "the best measured RegNet: regnetx model 1, val error 16.00%" in captured.out
    assert "warning: 1 models diverged" in captured.err
    assert "warning: the emitted config is a fit nobody" in captured.err
