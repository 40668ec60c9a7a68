"""Populations published by others: pycls sweep.json and NDS JSON, built here in their published formats, read by
`edf`, `best` and `refine`; hostile files end with one clear line."""

import json

import pytest
from published_fixtures import pycls_job, write_nds, write_sweep

from regnet_space import RegNetParams, complexity
from regnet_space.analysis.table import load
from regnet_space.cli import main as cli
from regnet_space.errors import UserError
from regnet_space.models.complexity import pycls_acts
from regnet_space.models.resolve import load_json_model


def test_pycls_sweep_maps_to_the_table(tmp_path):
    path = write_sweep(tmp_path, "regnet_cifar", 12, 0, 10.0)
    frame, meta = load(str(path))
    assert len(frame) == 12 and set(frame["space"]) == {"regnet_cifar"} and meta["name"] == "sweep"
    raw = json.loads(path.read_text())
    assert frame["error"][0] == pytest.approx(min(raw[0]["test_ema_epoch"]["min_top1_err"]))
    assert frame["acts"][0] == raw[0]["complexity"]["acts"]
    assert frame["depth"][0] == raw[0]["cfg"]["REGNET"]["DEPTH"]  # the converted RegNet's parameters are kept
    spec = json.loads(frame["spec"][0])
    assert [s["width"] for s in spec["stages"]] == raw[0]["cfg"]["ANYNET"]["WIDTHS"]


def test_a_sweep_without_ema_uses_the_test_error(tmp_path):
    job = pycls_job(RegNetParams(depth=8, w0=24, wa=16.0, wm=2.5, group_width=8), 12.0, ema=False)
    path = tmp_path / "s.json"
    path.write_text(json.dumps([job]))
    frame, _ = load(str(path))
    assert frame["error"][0] == pytest.approx(13.5)


def test_jobs_without_ema_stats_are_left_out_as_pycls_load_sweep_does(tmp_path):
    """pycls's analysis keeps only jobs with test_ema_epoch; a sweep of 28 + 1 without EMA reads as 28."""
    path = write_sweep(tmp_path, "s", 28, 0, 10.0)
    jobs = json.loads(path.read_text())
    jobs.append(pycls_job(RegNetParams(depth=8, w0=24, wa=16.0, wm=2.5, group_width=8), 1.0, ema=False))
    path.write_text(json.dumps(jobs))
    frame, _ = load(str(path))
    assert len(frame) == 28 and frame["error"].min() > 5  # the EMA-less job (error 2.5) is not among them


def test_a_cifar_stem_regnet_keeps_its_stem_through_best(tmp_path):
    """pycls's CIFAR RegNet sweep (res_stem_cifar, STEM_W 16, SE): best emits the RegNet with that stem, so
    it rebuilds the network the sweep trained (same flops/params as the sweep recorded)."""
    path = write_sweep(tmp_path, "cifar_regnet", 12, 5, 9.0, stem_type="cifar", stem_width=16, se_ratio=0.25)
    assert cli(["best", str(path), "--out", str(tmp_path / "best.json")]) == 0
    spec, regnet = load_json_model(tmp_path / "best.json")
    job = next(j for j in json.loads(path.read_text()) if (j["cfg"]["REGNET"]["DEPTH"], j["cfg"]["REGNET"]["WA"])
               == (regnet.depth, regnet.wa))
    assert spec.stem.type == "cifar" and spec.stem.width == 16 and regnet.stem_type == "cifar"
    assert (complexity(spec).flops, complexity(spec).params, pycls_acts(spec)) == tuple(
        job["complexity"][k] for k in ("flops", "params", "acts"))


def test_commands_read_two_sweeps_and_nds_files(tmp_path, capsys):
    a, b = write_sweep(tmp_path, "A", 24, 1, 12.0), write_sweep(tmp_path, "B", 24, 2, 8.0)
    both = f"{a},{b}"
    assert cli(["edf", both, "--json"]) == 0
    points = json.loads(capsys.readouterr().out)
    assert set(json.dumps(points).split('"')) >= {"A", "B"}
    assert cli(["best", both, "--out", str(tmp_path / "best.json")]) == 0
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["space"] == "B" and best["source"] == "regnet"
    assert cli(["refine", both, "--space", "B", "--definition", "regnetx",
                "--out", str(tmp_path / "narrowed.toml")]) == 0
    nds = f"{write_nds(tmp_path, 'ResNeXt-A', 40, 3, 9.0)},{write_nds(tmp_path, 'ResNeXt-B', 40, 4, 7.0)}"
    assert cli(["edf", nds, "--normalize", "params", "--json"]) == 0
    capsys.readouterr()
    assert cli(["best", nds]) == 2  # NDS files hold no network to emit
    assert "no model is a RegNet" in capsys.readouterr().err  # NDS records hold no network to emit


@pytest.mark.parametrize("content, message", [
    ("{}", "expected a JSON list of models"),
    ("[1, 2]", "expected a JSON list of models"),
    ('[{"foo": 1}]', "neither a pycls sweep.json"),
    ('[{"min_test_top1": "x", "flops": 1, "params": 1}]', "min_test_top1='x' is not a finite number"),
    ('[{"min_test_top1": 5, "flops": 1}]', "missing 'params'"),
    ("\x80\x04\x95 pickle", "not UTF-8 text"),
])
def test_hostile_files_end_with_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(UserError, match=message):
        load(str(path))
