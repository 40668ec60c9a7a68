"""Proxy fidelity: do short proxy schedules rank models the way a ~5x longer schedule does?

    .venv/bin/python analysis/proxy_fidelity/run.py [--models 20] [--seed 0] [--threads 1] [--out DIR]

Samples RegNetX-like models (b = 1, stride-2 simple stem) for 28x28 Fashion-MNIST inside a flops window with a
seeded RNG, trains each under every schedule in SCHEDULES (the trainer's defaults for everything else), and
reports Spearman and Kendall rank correlations between each short schedule's validation error and the
reference's. Two seeds of the same proxy give the noise ceiling: no proxy can agree with the reference better
than the proxy agrees with itself.

Each finished run is appended to ``results.jsonl`` at once, and runs already there are skipped, so the script
can be stopped and restarted (``--models K`` with K already done only recomputes the summary: the sampler
draws the same first K models for any --models); ``summary.json`` and the table come from all rows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from regnet_space import RegNetParams, complexity  # noqa: E402
from regnet_space.proxy.data import load_dataset  # noqa: E402
from regnet_space.proxy.train import ProxyConfig, train_model  # noqa: E402

# name -> (ProxyConfig overrides, seed). "ref-5ep-f0.2" is the long schedule, 5x the 1-epoch proxy on the same
# images; the two seeds of "1ep-f0.2" measure the proxy's own noise.
SCHEDULES = {
    "1ep-f0.1": ({"epochs": 1, "train_fraction": 0.1}, 0),
    "1ep-f0.2": ({"epochs": 1, "train_fraction": 0.2}, 0),
    "1ep-f0.2-seed1": ({"epochs": 1, "train_fraction": 0.2}, 1),
    "ref-5ep-f0.2": ({"epochs": 5, "train_fraction": 0.2}, 0),
}
FLOPS_WINDOW = (1e6, 3e6)


def sample_regnetx(n: int, seed: int) -> list[RegNetParams]:
    """n RegNetX parameter sets (pycls-like ranges scaled to 28x28) whose models fall in FLOPS_WINDOW."""
    rng = np.random.default_rng(seed)
    found: list[RegNetParams] = []
    while len(found) < n:
        params = RegNetParams(depth=int(rng.integers(6, 17)), w0=8 * int(rng.integers(1, 9)),
                              wa=round(float(np.exp(rng.uniform(np.log(8), np.log(64)))), 2),
                              wm=round(float(rng.uniform(1.5, 3.0)), 3), group_width=int(2 ** rng.integers(0, 5)))
        if FLOPS_WINDOW[0] <= complexity(to_spec(params)).flops <= FLOPS_WINDOW[1]:
            found.append(params)
    return found


def to_spec(params: RegNetParams):
    return params.to_spec(resolution=28, in_channels=1, num_classes=10)


def correlations(rows: list[dict], metric: str) -> dict[str, dict[str, float]]:
    """Spearman and Kendall of each schedule's ``metric`` against every other schedule, over models where
    both finished (status ok)."""
    by_model: dict[int, dict[str, float]] = {}
    for row in rows:
        if row["status"] == "ok":
            by_model.setdefault(row["model"], {})[row["schedule"]] = row[metric]
    out = {}
    for a, b in itertools.combinations(SCHEDULES, 2):
        pairs = [(m[a], m[b]) for m in by_model.values() if a in m and b in m]
        if len(pairs) < 3:
            continue
        x, y = zip(*pairs)
        out[f"{a} vs {b}"] = {"n": len(pairs), "spearman": float(stats.spearmanr(x, y).statistic),
                              "kendall": float(stats.kendalltau(x, y).statistic)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the model sampler")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on shared cores, a 2-thread run stalls whenever a core is taken)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.jsonl"
    rows = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    done = {(r["model"], r["schedule"]) for r in rows}

    dataset = load_dataset("fashion-mnist", seed=0)
    models = sample_regnetx(args.models, args.seed)
    start = time.perf_counter()
    for index, params in enumerate(models):
        spec = to_spec(params)
        for name, (overrides, seed) in SCHEDULES.items():
            if (index, name) in done:
                continue
            config = ProxyConfig().replace(**overrides)
            result = train_model(spec, dataset, config, seed=seed, progress=False, threads=args.threads)
            row = {"model": index, "schedule": name, "seed": seed, "regnet": params.to_dict(),
                   "flops": complexity(spec).flops, "params": complexity(spec).params, **result.to_dict()}
            rows.append(row)
            with results_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"[{time.perf_counter() - start:7.0f}s] model {index:2d} {name:10s} {result.status:8s} "
                  f"val_err {result.val_error} ({result.seconds:.1f}s, {result.images_per_s:.0f} img/s)", flush=True)

    complete = sum(all((m, name) in {(r["model"], r["schedule"]) for r in rows} for name in SCHEDULES)
                   for m in range(args.models))
    summary = {"flops_window": FLOPS_WINDOW, "models": complete, "sampler_seed": args.seed,
               "schedules": {k: {"overrides": o, "seed": s} for k, (o, s) in SCHEDULES.items()},
               "proxy_defaults": ProxyConfig().to_dict(),
               "seconds_per_model": {name: float(np.median([r["seconds"] for r in rows if r["schedule"] == name]))
                                     for name in SCHEDULES if any(r["schedule"] == name for r in rows)},
               "diverged": {name: sum(r["status"] == "diverged" for r in rows if r["schedule"] == name)
                            for name in SCHEDULES},
               "final_val_error": correlations(rows, "val_error"),
               "best_val_error": correlations(rows, "best_val_error")}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n| pair | n | Spearman | Kendall |\n|---|---|---|---|")
    for pair, c in summary["final_val_error"].items():
        print(f"| {pair} | {c['n']} | {c['spearman']:.3f} | {c['kendall']:.3f} |")
    print("\nmedian seconds per model:", {k: round(v, 1) for k, v in summary["seconds_per_model"].items()})


if __name__ == "__main__":
    main()
