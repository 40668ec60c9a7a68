"""Proxy fidelity against a reference 10x longer: does the study's proxy rank a study's models as longer training does?

    .venv/bin/python analysis/proxy_fidelity/reference.py experiments/progression_small.toml \
        analysis/progression_small/results.csv --per-space 8 --out analysis/proxy_fidelity/small_form [--threads 1] \
        [--shard K/N]

Takes the first ``--per-space`` models of every space of a finished study (the study enqueues round-robin, so
these are its earliest, unselected draws), and trains each again under two schedules with the study's own
dataset split: the REFERENCE (2 epochs on the whole training split: 10x the default proxy's 10,000 images) and
the proxy under a second seed (its own noise, the ceiling any proxy can reach), both evaluated on all 10,000
validation images as when they were first run (``proxy_runs.py``, shared with ``cost_curve.py``). The proxy's
error is the study's. Reports Spearman and Kendall rank correlations over the models with a 95% bootstrap interval
(models resampled with replacement).

Each finished run is appended to ``runs.jsonl`` at once and skipped when the script restarts, so it can be
stopped at any time; ``summary.json`` is recomputed from every row present. ``--shard K/N`` trains only every N-th
model (from the K-th), so N single-thread processes can share one ``--out`` on N cores; each appends whole lines to
``runs.jsonl``, and the last to finish writes the summary over all of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxy_runs import (REFERENCE_OVERRIDES, SEED1_OFFSET, SEED1_OVERRIDES, append_run,  # noqa: E402
                        chosen_models, model_seed, parse_shard, rank_correlations, read_runs)

from regnet_space.models.spec import AnyNetSpec  # noqa: E402
from regnet_space.proxy.data import load_dataset  # noqa: E402
from regnet_space.proxy.train import ProxyConfig, train_model  # noqa: E402
from regnet_space.study.spec import load_study_spec  # noqa: E402

# name -> (ProxyConfig overrides on top of the study's proxy, seed offset added to the study's model seed)
SCHEDULES = {
    "reference": (REFERENCE_OVERRIDES, 0),
    "proxy-seed1": (SEED1_OVERRIDES, SEED1_OFFSET),
    # issue 26: the proxy as it now evaluates (5,000 validation images, inference mode, batch 256), the study's seed
    "proxy-eval5k": ({"eval_images": 5000, "eval_batch_size": 256}, 0),
}


def summarize(models: pd.DataFrame, rows: list[dict]) -> dict:
    errors = {(r["space"], r["model_index"], r["schedule"]): r["val_error"] for r in rows if r["status"] == "ok"}
    summary: dict = {"schedules": {k: {"overrides": o, "seed_offset": s} for k, (o, s) in SCHEDULES.items()},
                     "seconds_per_model": {}, "correlations": {}}
    for name in SCHEDULES:
        seconds = [r["seconds"] for r in rows if r["schedule"] == name and r["status"] == "ok"]
        if seconds:
            summary["seconds_per_model"][name] = float(np.median(seconds))
    proxy = {(s, i): e for s, i, e in models[["space", "model_index", "val_error"]].itertuples(index=False)}
    pairs = {"proxy vs reference": ("proxy", "reference"), "proxy-seed1 vs reference": ("proxy-seed1", "reference"),
             "proxy vs proxy-seed1 (noise ceiling)": ("proxy", "proxy-seed1"),
             "proxy-eval5k vs reference": ("proxy-eval5k", "reference")}
    for label, (a, b) in pairs.items():
        def error(key: tuple, schedule: str) -> float | None:
            return proxy.get(key) if schedule == "proxy" else errors.get((*key, schedule))
        both = [(error(k, a), error(k, b)) for k in proxy if error(k, a) is not None and error(k, b) is not None]
        if len(both) >= 5:
            x, y = (np.array(v, dtype=float) for v in zip(*both))
            summary["correlations"][label] = rank_correlations(x, y)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="the study's spec (its dataset split, proxy and seed are reused)")
    parser.add_argument("results", help="the study's exported results.csv")
    parser.add_argument("--per-space", type=int, default=8, help="models per space (default 8)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shard", default="0/1", help="K/N: train models K, K+N, K+2N, ... of the list (default 0/1)")
    args = parser.parse_args()
    try:
        shard, shards = parse_shard(args.shard)
    except ValueError:
        parser.error(f"--shard must be K/N with 0 <= K < N, got {args.shard!r}")
    study = load_study_spec(args.spec)
    models = chosen_models(pd.read_csv(args.results), args.per_space)
    args.out.mkdir(parents=True, exist_ok=True)
    runs_path = args.out / "runs.jsonl"
    rows = read_runs(runs_path)
    done = {(r["space"], r["model_index"], r["schedule"]) for r in rows}
    dataset = load_dataset(**{**study.dataset, "device": args.device})
    start = time.perf_counter()
    for name, (overrides, seed_offset) in SCHEDULES.items():  # one schedule for every model, then the next
        config = ProxyConfig.from_dict(study.proxy).replace(**overrides)
        mine = models.iloc[shard::shards]
        for space, index, spec_json in mine[["space", "model_index", "spec"]].itertuples(index=False):
            if (space, index, name) in done:
                continue
            seed = model_seed(study.seed, space, index, seed_offset)
            result = train_model(AnyNetSpec.from_json(spec_json), dataset, config, seed=seed, device=args.device,
                                 progress=False, threads=args.threads)
            row = {"space": space, "model_index": int(index), "schedule": name, "seed": seed, **result.to_dict()}
            rows.append(row)
            append_run(runs_path, row)
            print(f"[{time.perf_counter() - start:7.0f}s] {space} {index:3d} {name:11s} {result.status:8s} "
                  f"val_err {result.val_error} ({result.seconds:.0f}s)", flush=True)
    rows = read_runs(runs_path)  # every shard's rows so far
    summary = summarize(models, rows)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n| pair | n | Spearman [95% CI] | Kendall [95% CI] |\n|---|---|---|---|")
    for label, c in summary["correlations"].items():
        print(f"| {label} | {c['n']} | {c['spearman']:.3f} [{c['spearman_ci'][0]:.2f}, {c['spearman_ci'][1]:.2f}] "
              f"| {c['kendall']:.3f} [{c['kendall_ci'][0]:.2f}, {c['kendall_ci'][1]:.2f}] |")


if __name__ == "__main__":
    main()
