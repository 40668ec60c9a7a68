"""Populations published by others: pycls sweep.json and NDS JSON, built here in their published formats, read by
`edf`, `best` and `refine`; hostile files end with one clear line."""

import json

import pytest
from published_fixtures import pycls_job, write_nds, write_nds_resnext, write_sweep

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


def test_nds_dict_and_list_files_read_the_same_models(tmp_path):
    as_list = write_nds_resnext(tmp_path, "ResNeXt-A", 40, 7)
    as_dict = write_nds_resnext(tmp_path / "..", "ResNeXt-A_halves", 40, 7, dict_shaped=True)
    a, _ = load(str(as_list))
    b, _ = load(str(as_dict))
    assert len(a) == len(b) == 40 and list(a["error"]) == list(b["error"]) and list(a["flops"]) == list(b["flops"])


def test_nds_resnext_records_become_anynet_specs_with_the_records_counts(tmp_path):
    frame, _ = load(str(write_nds_resnext(tmp_path, "ResNeXt-A", 30, 8)))
    assert frame["spec"].notna().all() and "no_spec" not in frame
    raw = json.loads((tmp_path / "ResNeXt-A.json").read_text())
    spec = json.loads(frame["spec"][3])
    assert [s["depth"] for s in spec["stages"]] == raw[3]["net"]["ds"] and spec["stem"]["type"] == "cifar"
    assert [frame[f"b{s}"][3] for s in (1, 2, 3)] == [1 / m for m in raw[3]["net"]["bot_muls"]]
    # a record whose counts do not match the network we would build keeps no network, and says why
    raw[0]["flops"] += 1
    (tmp_path / "off.json").write_text(json.dumps(raw))
    frame, _ = load(str(tmp_path / "off.json"))
    assert frame["spec"].isna()[0] and "not the record's" in frame["no_spec"][0]


def test_best_and_refine_work_on_an_nds_resnext_space(tmp_path, capsys):
    path = write_nds_resnext(tmp_path, "ResNeXt-A", 120, 9, dict_shaped=True)
    assert cli(["best", str(path), "--out", str(tmp_path / "best.json")]) == 0
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["space"] == "ResNeXt-A" and best["source"].startswith("anynet") and best["stem_type"] == "cifar"
    space = tmp_path / "resnext_a.toml"
    space.write_text(NDS_RESNEXT_SPACE)
    assert cli(["refine", str(path), "--space", "ResNeXt-A", "--definition", str(space), "--permutations", "200",
                "--out", str(tmp_path / "narrowed.toml")]) == 0
    assert "ResNeXt-A" in capsys.readouterr().out + (tmp_path / "narrowed.toml").read_text()


def test_cell_networks_are_refused_with_the_reason(tmp_path, capsys):
    record = {"net": {"genotype": {"normal": [], "reduce": []}, "width": 16, "depth": 20, "aux": False},
              "flops": 1e8, "params": 1e6, "min_test_top1": 8.0}
    (tmp_path / "DARTS.json").write_text(json.dumps({"top": [record] * 20, "mid": [record] * 20}))
    assert cli(["best", str(tmp_path / "DARTS.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "40 of 40 models carry no network" in err and "DARTS-style" in err


# The NDS ResNeXt fixture's space (write_nds_resnext): 3 stages after pycls's CIFAR stem at 32 px.
NDS_RESNEXT_SPACE = """
name = "ResNeXt-A"
num_stages = 3
input_form = "imagenet"
[stem]
type = "cifar"
width = 16
[stage]
block = "res_bottleneck"
stride = 2
depth = { dist = "uniform", lo = 1, hi = 16 }
width = { dist = "uniform", lo = 16, hi = 256, q = 8 }
bottleneck_ratio = { dist = "choice", values = [1.0, 2.0, 4.0] }
group_width = { dist = "choice", values = [0, 8, 16, 32, 64] }
[stages.1]
stride = 1
"""


def test_a_pycls_sweep_config_is_read_as_its_design_space(tmp_path):
    from published_fixtures import CIFAR_REGNET_SWEEP_CFG

    from regnet_space.spaces import load_space

    path = tmp_path / "sweep_cfg.yaml"
    path.write_text(CIFAR_REGNET_SWEEP_CFG)
    space = load_space(str(path))
    assert space.name == "cifar_regnet" and space.regnet_stages == (2, 2)
    assert space.stem == {"type": "cifar", "width": 16} and space.regnet["se_ratio"] == 0.25
    depth, group = space.regnet["depth"], space.regnet["group_width"]
    assert (depth.kind, depth.lo, depth.hi) == ("uniform", 6, 16)
    assert group.kind == "power2_or_log_uniform" and list(group.values) == [1, 2, 4, 8, 16, 24, 32]
    assert group.pmf()[:3].tolist() == [1 / 6] * 3  # 1, 2, 4 as powers of two; 8..32 log-uniform (the other half)
    assert (space.regnet["w0"].lo, space.regnet["w0"].hi, space.regnet["w0"].q) == (8, 256, 8)


def test_refine_on_a_pycls_sweep_uses_its_sweep_cfg(tmp_path, capsys):
    """Without --definition, refine reads sweep_cfg.yaml beside NAME/sweep.json: every model lies in the space
    it narrows (with the built-in regnet space, none did: other stem, 4 stages)."""
    from published_fixtures import CIFAR_REGNET_SWEEP_CFG, write_sweep_of_cfg

    sweep = write_sweep_of_cfg(tmp_path, CIFAR_REGNET_SWEEP_CFG, 60, 3)
    assert cli(["refine", str(sweep), "--space", "cifar_regnet", "--permutations", "200",
                "--out", str(tmp_path / "narrowed.toml")]) == 0
    out = capsys.readouterr().out
    narrowed = (tmp_path / "narrowed.toml").read_text()
    assert 'type = "cifar"' in narrowed and "num_stages = [2, 2]" in narrowed
    inside = int(out.split(" of the 60 models lie")[0].rsplit(" ", 1)[-1])
    assert inside == 60, out  # with --definition regnet (the built-in space): 0 of the 60


@pytest.mark.parametrize("edit, message", [
    (("REGNET:\n      TYPE: regnet_sampler", "OPTIM.BASE_LR:\n      TYPE: float_sampler"), "an lr/wd sweep"),
    (("SE_ON: True", "SE_ON: True\n      STRIDE: 1"), "REGNET.STRIDE 1"),
    (("STEM_TYPE: res_stem_cifar", "STEM_TYPE: fancy_stem"), "'fancy_stem' is not one of"),
])
def test_what_a_sweep_config_samples_beyond_a_space_is_refused(tmp_path, capsys, edit, message):
    from published_fixtures import CIFAR_REGNET_SWEEP_CFG

    (tmp_path / "s.yaml").write_text(CIFAR_REGNET_SWEEP_CFG.replace(*edit))
    from regnet_space.spaces import load_space

    with pytest.raises(UserError, match=message):
        load_space(str(tmp_path / "s.yaml"))
