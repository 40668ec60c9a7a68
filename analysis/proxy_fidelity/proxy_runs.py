"""What the proxy-fidelity scripts share: which models of a study they retrain, with which seed, under which
reference, how a run is appended to a resumable ``runs.jsonl``, how shards split the work, and the rank
correlations with their bootstrap intervals.

``reference.py`` (32 models against a 10x reference) and ``cost_curve.py`` (a grid of proxies against that same
reference) must agree on all of these, or the curve would compare its proxies with references of other models,
seeds or evaluations; so they live here once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from regnet_space.models.spec import AnyNetSpec  # noqa: E402
from regnet_space.study.population import space_seed  # noqa: E402

BOOTSTRAP = 2000
# The reference: 2 epochs on the whole training split (10x the default proxy's 10,000 images). The 32 references
# of small_form/runs.jsonl were evaluated on all 10,000 validation images (ProxyConfig had no eval_images then),
# so the evaluation is pinned to all of them: a reference trained today must be the same measurement.
REFERENCE_OVERRIDES: dict[str, Any] = {"epochs": 2, "train_fraction": 1.0, "eval_images": None}
# The default proxy under a second seed (its own noise: the ceiling any proxy can reach). Evaluated on all
# 10,000 validation images like the study's own proxy errors (results.csv) it is compared with.
SEED1_OVERRIDES: dict[str, Any] = {"eval_images": None}
SEED1_OFFSET = 1_000_003


def rank_correlations(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Spearman and Kendall of x against y with percentile bootstrap 95% intervals over the models.

    Resampling the models (not the runs) is what the question needs: would another draw of models from the same
    spaces be ranked as well? Resamples where either side is constant have no rank correlation and are skipped.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"n": int(x.size)}
    for name, statistic in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau)):
        draws = []
        for _ in range(BOOTSTRAP):
            pick = rng.integers(0, x.size, x.size)
            if np.ptp(x[pick]) > 0 and np.ptp(y[pick]) > 0:
                draws.append(statistic(x[pick], y[pick]).statistic)
        low, high = np.percentile(draws, [2.5, 97.5])
        out.update({name: float(statistic(x, y).statistic), f"{name}_ci": [float(low), float(high)]})
    return out


def read_runs(path: Path) -> list[dict]:
    """The finished runs appended so far (none before the first)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def append_run(path: Path, row: dict) -> None:
    """Append one finished run as one line, at once: a killed process loses at most the run in progress, and
    shards writing the same file (O_APPEND, one short write each) never interleave inside a line."""
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def chosen_models(results: pd.DataFrame, per_space: int) -> pd.DataFrame:
    """The first ``per_space`` completed models of every space, ordered index-major (a0, c0, e0, r0, a1, ...).

    The study enqueues round-robin, so low indices are its earliest, unselected draws; the index-major order
    keeps every prefix of the list (and every shard of it) balanced across the spaces."""
    done = results[(results["status"] == "complete") & (results["model_index"] < per_space)]
    return done.sort_values(["model_index", "space"]).reset_index(drop=True)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 0 <= K < N; ValueError otherwise."""
    shard, shards = (int(part) for part in text.split("/"))
    if not 0 <= shard < shards:
        raise ValueError(f"--shard must be K/N with 0 <= K < N, got {text!r}")
    return shard, shards


def model_seed(study_seed: int, space: str, index: int, offset: int = 0) -> int:
    """The seed the study trained model ``index`` of ``space`` with (plus ``offset`` for another seed), so a
    retrained model starts from the study's initialisation and batch order."""
    return space_seed(study_seed, space) + int(index) + offset


def train_run(spec: AnyNetSpec, dataset, config, *, seed: int, device: str, threads: int) -> dict[str, Any]:
    """Train one model and return its result as a row, with the CPU seconds the training took.

    ``cpu_seconds`` is this process's CPU time over the call (``time.process_time``: every thread of the process,
    user and system), the cost a proxy puts on a machine whatever else shares it; ``seconds`` (the trainer's) is
    the wall time, which a loaded machine inflates."""
    import time

    from regnet_space.proxy.train import train_model

    cpu = time.process_time()
    result = train_model(spec, dataset, config, seed=seed, device=device, progress=False, threads=threads)
    return {**result.to_dict(), "cpu_seconds": time.process_time() - cpu}
