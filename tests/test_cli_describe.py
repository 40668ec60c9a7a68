"""`regnet-space describe` through the CLI: the three model forms, data flags, errors."""

import json
import subprocess
import sys

import pytest

from regnet_space.cli import main


def describe(capsys, *argv):
    code = main(["describe", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_catalog_name_json(capsys):
    code, out, _ = describe(capsys, "regnetx_002", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["widths"] == [24, 56, 152, 368] and data["depths"] == [1, 1, 4, 7]
    assert data["group_widths"] == [8, 8, 8, 8] and data["bottleneck_ratios"] == [1.0] * 4
    assert (data["flops"], data["params"], data["acts"]) == (199040872, 2684792, 2164056)
    assert data["spec"]["stages"][0]["width"] == 24


def test_regnet_parameters_form(capsys):
    code, out, _ = describe(capsys, "--regnet", "depth=22,w0=24,wa=24.48,wm=2.54,group_width=16", "--json")
    data = json.loads(out)
    assert data["widths"] == [32, 64, 160, 384] and data["params"] == 5157512
    assert data["regnet"]["group_width"] == 16


def test_saved_regnet_config_reproduces_widths(tmp_path, capsys):
    config = tmp_path / "model.json"
    config.write_text(json.dumps({"depth": 13, "w0": 24, "wa": 36.44, "wm": 2.49, "group_width": 8,
                                  "se_ratio": 0.25}))
    code, out, _ = describe(capsys, str(config), "--json")
    assert json.loads(out)["widths"] == [24, 56, 152, 368]
    assert json.loads(out)["params"] == 3162996  # RegNetY-200MF


def test_describe_output_is_itself_a_model_file(tmp_path, capsys):
    _, out, _ = describe(capsys, "regnety_004", "--resolution", "28", "--in-channels", "1", "--num-classes", "10", "--json")
    saved = tmp_path / "described.json"
    saved.write_text(json.dumps({"spec": json.loads(out)["spec"]}))
    _, again, _ = describe(capsys, str(saved), "--json")
    assert json.loads(again)["flops"] == json.loads(out)["flops"]
    assert json.loads(again)["resolution"] == 28


def test_data_flags_change_complexity(capsys):
    _, out, _ = describe(capsys, "regnetx_002", "--resolution", "28", "--in-channels", "1", "--num-classes", "10", "--json")
    data = json.loads(out)
    assert data["resolution"] == 28 and data["num_classes"] == 10
    assert data["flops"] < 199040872 / 50


def test_table_output(capsys):
    code, out, _ = describe(capsys, "regnetx_004")
    assert code == 0 and "flops 397.68M" in out and "384" in out


def test_table_shows_block_family_options(capsys):
    _, out, _ = describe(capsys, "resnest50d")
    stage_rows = [line for line in out.splitlines() if " resnest " in line]
    assert len(stage_rows) == 4
    assert all("shortcut=avgpool radix=2 avd=True" in row for row in stage_rows)


@pytest.mark.parametrize("argv, message", [
    (["nosuchmodel"], "unknown model 'nosuchmodel'"),
    (["--regnet", "depth=13,w0=24,wa=1,wm=0.5,group_width=8"], "regnet.wm"),
    (["--regnet", "depth=13,w0=24"], "regnet.group_width: missing"),
    (["--regnet", "depth=13,colour=3"], "unknown key 'colour'"),
    ([], "give a model"),
])
def test_bad_input_exits_2_with_message(capsys, argv, message):
    code, out, err = describe(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_bad_json_file_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = describe(capsys, str(bad))
    assert code == 2 and "bad.json: not valid JSON" in err


def test_console_script_runs_as_a_process():
    result = subprocess.run([sys.executable, "-m", "regnet_space.cli", "describe", "missing.json"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "missing.json" in result.stderr and "Traceback" not in result.stderr


def test_acts_convention_pycls_adds_the_stem_max_pool_output(capsys):
    """Ours counts conv/linear outputs; pycls also counts the stem max-pool's (64 x 56 x 56 for resnet50), the
    number tests/test_interop.py gets from pycls itself."""
    assert main(["describe", "resnet50", "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)["acts"]
    assert main(["describe", "resnet50", "--json", "--acts-convention", "pycls"]) == 0
    theirs = json.loads(capsys.readouterr().out)["acts"]
    assert (ours, theirs) == (11_114_984, 11_315_688) and theirs - ours == 64 * 56 * 56
    assert main(["describe", "regnetx_002", "--json", "--acts-convention", "pycls"]) == 0  # no pooled stem: same
    assert json.loads(capsys.readouterr().out)["acts"] == 2_164_056
