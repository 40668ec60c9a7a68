"""Populations published by others, written here in their published formats (pycls's sweep.json, NDS's JSON),
for tests/test_analysis_published.py and tests/test_interop.py."""

import json
from pathlib import Path

import numpy as np

from regnet_space import RegNetParams, complexity
from regnet_space.models.complexity import pycls_acts
from regnet_space.models.export import PYCLS_STEMS


def pycls_job(params: RegNetParams, error: float, *, epochs=10, done=10, ema=True) -> dict:
    """One job of a pycls sweep.json: the json_stats of its log, as tools/sweep_collect.py writes them. The
    config is a RegNet converted to AnyNet by sweep setup (MODEL.TYPE anynet, REGNET.* kept)."""
    spec = params.to_spec(resolution=32, num_classes=10)
    cx = complexity(spec)
    stem = {"STEM_TYPE": PYCLS_STEMS[params.stem_type], "STEM_W": params.stem_width}
    se = {"SE_ON": params.se_ratio > 0, "SE_R": params.se_ratio or 0.25}
    curve = list(np.linspace(error + 20, error, done))

    def test_stats(offset):
        return {"epoch": [f"{e + 1}/{epochs}" for e in range(done)], "epoch_ind": list(range(1, done + 1)),
                "epoch_max": [epochs] * done, "top1_err": [c + offset for c in curve],
                "min_top1_err": list(np.minimum.accumulate([c + offset for c in curve])), "time_avg": [1.0] * done}

    job = {
        "cfg": {"MODEL": {"TYPE": "anynet", "NUM_CLASSES": 10},
                "ANYNET": {**stem, "BLOCK_TYPE": "res_bottleneck_block",
                           "DEPTHS": spec.depths, "WIDTHS": spec.widths, "STRIDES": [s.stride for s in spec.stages],
                           "BOT_MULS": [1.0] * len(spec.stages), "GROUP_WS": spec.group_widths, **se},
                "REGNET": {"DEPTH": params.depth, "W0": int(params.w0), "WA": params.wa, "WM": params.wm,
                           "GROUP_W": params.group_width, "BOT_MUL": 1.0, **se, **stem,
                           "BLOCK_TYPE": "res_bottleneck_block", "STRIDE": params.first_stride},
                "TRAIN": {"IM_SIZE": 32, "BATCH_SIZE": 128}, "OPTIM": {"BASE_LR": 0.1, "MAX_EPOCH": epochs}},
        "complexity": {"flops": cx.flops, "params": cx.params, "acts": pycls_acts(spec)},
        "train_epoch": {"epoch": [f"{e + 1}/{epochs}" for e in range(done)], "loss": [1.0] * done},
        "test_epoch": test_stats(1.5),
        "log_file": "/sweeps/x/logs/000000/stdout.log", "err_file": "/sweeps/x/logs/000000/stderr.log", "err": "",
    }
    if ema:
        job["test_ema_epoch"] = test_stats(0.0)
    return job


def write_sweep(root, name, n, seed, offset, **form):
    """A sweep of n RegNets (+ one still training); ``form``: RegNetParams fields such as pycls's CIFAR sweep's
    stem_type="cifar", stem_width=16, se_ratio=0.25."""
    rng = np.random.default_rng(seed)
    jobs = []
    for _ in range(n):
        params = RegNetParams(depth=int(rng.integers(6, 14)), w0=8 * int(rng.integers(2, 6)),
                              wa=round(float(rng.uniform(8, 32)), 1), wm=round(float(rng.uniform(2.0, 2.8)), 3),
                              group_width=int(rng.choice([2, 4, 8])), **form)
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


def nds_resnext_record(ds, ws, bot_muls, num_gs, error, ss=(1, 2, 2)) -> dict:
    """One record of an NDS CIFAR ResNeXt space: its ``net`` (pycls's 2019 AnyNet fields; ``num_gs`` is the
    group count) and the flops/params of that network with pycls's CIFAR stem (3x3 of 16) at 32 px."""
    from regnet_space.models.spec import AnyNetSpec, StageSpec, StemSpec

    stages = tuple(StageSpec(depth=d, width=w, stride=s, bottleneck_ratio=1 / bm,
                             group_width=round(w * bm) // g if g > 1 else 0)
                   for d, w, s, bm, g in zip(ds, ws, ss, bot_muls, num_gs))
    cx = complexity(AnyNetSpec(stages=stages, stem=StemSpec("cifar", 16), resolution=32, num_classes=10))
    return {"net": {"block_type": "res_bottleneck_block", "ds": list(ds), "ws": list(ws), "ss": list(ss),
                    "bot_muls": list(bot_muls), "num_gs": list(num_gs)},
            "flops": float(cx.flops), "params": float(cx.params), "min_test_top1": error,
            "test_ep_top1": [error + 10.0, error], "optim": {"lr": 0.1, "wd": 5e-4, "max_ep": 100}}


def write_nds_resnext(root, name, n, seed, *, dict_shaped=False):
    """An NDS ResNeXt-style CIFAR space of n models: per stage d in 1..16, w in 16..256 (x8), b in {1, 2, 4},
    g in {1, 2, 4} groups. Written as a list, or as the release's {"top": [...], "mid": [...]} halves."""
    rng = np.random.default_rng(seed)
    models = []
    while len(models) < n:
        ds = [int(x) for x in rng.integers(1, 17, 3)]
        ws = [8 * int(x) for x in rng.integers(2, 33, 3)]
        bot_muls = [float(x) for x in rng.choice([1.0, 0.5, 0.25], 3)]
        num_gs = [int(x) for x in rng.choice([1, 2, 4], 3)]
        if any(round(w * b) % g for w, b, g in zip(ws, bot_muls, num_gs)):
            continue
        error = 12.0 - 0.01 * sum(ws) / 8 + float(rng.normal(0, 1))  # wider is better, plus noise
        models.append(nds_resnext_record(ds, ws, bot_muls, num_gs, error))
    data = {"top": models[: n // 2], "mid": models[n // 2:]} if dict_shaped else models
    path = root / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


# pycls's example CIFAR RegNet sweep config, as experiments/paper/ ships it.
CIFAR_REGNET_SWEEP_CFG = (Path(__file__).parent.parent / "experiments/paper/spaces/cifar_regnet.yaml").read_text()


def write_sweep_of_cfg(root, cfg_text, n, seed, offset=9.0):
    """``ROOT/NAME/sweep.json`` of n jobs drawn from the sweep config's own space, with sweep_cfg.yaml beside
    it, as pycls's sweep setup and collect leave them."""
    from regnet_space.spaces import sample_models
    from regnet_space.spaces.pycls_sweep import load_sweep_space

    folder = root / "cifar_regnet"
    folder.mkdir(parents=True)
    (folder / "sweep_cfg.yaml").write_text(cfg_text)
    space = load_sweep_space(folder / "sweep_cfg.yaml")
    rng = np.random.default_rng(seed)
    jobs = [pycls_job(m.regnet, offset + float(rng.normal(0, 1)) - 0.02 * m.regnet.depth)
            for m in sample_models(space, n, seed=seed, resolution=32, num_classes=10)]
    (folder / "sweep.json").write_text(json.dumps(jobs))
    return folder / "sweep.json"
