"""Populations published by others: pycls sweep.json and NDS JSON, built here in their published formats, read by
`edf`, `best` and `refine`; hostile files end with one clear line."""

import json

import numpy as np
import pytest

from regnet_space import RegNetParams, complexity
from regnet_space.analysis.table import load
from regnet_space.cli import main as cli
from regnet_space.errors import UserError


def pycls_job(params: RegNetParams, error: float, *, epochs=10, done=10, ema=True) -> dict:
    """One job of a pycls sweep.json: the json_stats of its log, as tools/sweep_collect.py writes them. The
    config is a RegNet converted to AnyNet by sweep setup (MODEL.TYPE anynet, REGNET.* kept)."""
    spec = params.to_spec(resolution=32, num_classes=10)
    cx = complexity(spec)
    curve = list(np.linspace(error + 20, error, done))

    def test_stats(offset):
        return {"epoch": [f"{e + 1}/{epochs}" for e in range(done)], "epoch_ind": list(range(1, done + 1)),
                "epoch_max": [epochs] * done, "top1_err": [c + offset for c in curve],
                "min_top1_err": list(np.minimum.accumulate([c + offset for c in curve])), "time_avg": [1.0] * done}

    job = {
        "cfg": {"MODEL": {"TYPE": "anynet", "NUM_CLASSES": 10},
                "ANYNET": {"STEM_TYPE": "simple_stem_in", "STEM_W": 32, "BLOCK_TYPE": "res_bottleneck_block",
                           "DEPTHS": spec.depths, "WIDTHS": spec.widths, "STRIDES": [2] * len(spec.stages),
                           "BOT_MULS": [1.0] * len(spec.stages), "GROUP_WS": spec.group_widths,
                           "SE_ON": False, "SE_R": 0.25},
                "REGNET": {"DEPTH": params.depth, "W0": int(params.w0), "WA": params.wa, "WM": params.wm,
                           "GROUP_W": params.group_width, "BOT_MUL": 1.0, "SE_ON": False, "SE_R": 0.25,
                           "STEM_W": 32, "STEM_TYPE": "simple_stem_in", "BLOCK_TYPE": "res_bottleneck_block",
                           "STRIDE": 2},
                "TRAIN": {"IM_SIZE": 32, "BATCH_SIZE": 128}, "OPTIM": {"BASE_LR": 0.1, "MAX_EPOCH": epochs}},
        "complexity": {"flops": cx.flops, "params": cx.params, "acts": cx.acts},
        "train_epoch": {"epoch": [f"{e + 1}/{epochs}" for e in range(done)], "loss": [1.0] * done},
        "test_epoch": test_stats(1.5),
        "log_file": "/sweeps/x/logs/000000/stdout.log", "err_file": "/sweeps/x/logs/000000/stderr.log", "err": "",
    }
    if ema:
        job["test_ema_epoch"] = test_stats(0.0)
    return job


def write_sweep(root, name, n, seed, offset):
    rng = np.random.default_rng(seed)
    jobs = []
    for _ in range(n):
        params = RegNetParams(depth=int(rng.integers(6, 14)), w0=8 * int(rng.integers(2, 6)),
                              wa=round(float(rng.uniform(8, 32)), 1), wm=round(float(rng.uniform(2.0, 2.8)), 3),
                              group_width=int(rng.choice([2, 4, 8])))
        jobs.append(pycls_job(params, offset + float(rng.normal(0, 1))))
    jobs.append(pycls_job(params, 1.0, done=3))  # still training: left out
    path = root / name / "sweep.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(jobs, sort_keys=True))
    return path


def write_nds(root, name, n, seed, offset, acts=False):
    rng = np.random.default_rng(seed)
    models = []
    for _ in range(n):
        flops, params = float(rng.uniform(8e6, 129e6)), float(rng.uniform(2e4, 8.5e5))
        model = {"net": {"ds": [1, 2, 3], "ws": [16, 32, 64]}, "flops": flops, "params": params,
                 "min_test_top1": offset + float(rng.normal(0, 1)), "test_ep_top1": [30.0, 20.0],
                 "epochs": 10, "lr": 0.1, "wd": 5e-4}
        if acts:
            model["acts"] = float(rng.uniform(1e5, 1e6))
        models.append(model)
    path = root / f"{name}.json"
    path.write_text(json.dumps(models))
    return path


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
