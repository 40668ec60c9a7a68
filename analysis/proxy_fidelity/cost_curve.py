"""Fidelity per cost (issue 26, item 7): how well does each proxy in a grid rank models as the 10x reference does,
against the CPU-seconds it costs per model; and which proxy should be the default?

    .venv/bin/python analysis/proxy_fidelity/cost_curve.py [--extra-per-space 2] [--shard K/N] [--grid NAMES] \
        [--out analysis/proxy_fidelity/cost_curve] [--limit N] [--dry-run] [--summary-only]

Models: the first ``--per-space`` (8) models of every space of the small-form progression
(``analysis/progression_small/results.csv``: AnyNetX_A, C, E and RegNetX, 2-8 MFLOPs, Fashion-MNIST), whose
references ``reference.py`` trained (``small_form/runs.jsonl``), plus the next ``--extra-per-space`` of each, for
which this script trains the reference and the second proxy seed itself (``--extra-per-space 2``, the default:
40 models). ``--limit N`` keeps the first N models only, for a smoke test.

Proxies: the knobs EcoNAS studied that this tool has. A proxy is named ``e<epochs>-f<train fraction>``, with
``-w<multiplier>`` to train the model with every stage's width scaled by the multiplier
(``regnet_space.models.scaling``, strategy ``w``: widths stay multiples of 8, so the narrowest stages stay 8 wide;
the stem keeps its width). Resolution is not a knob here: neither ``ProxyConfig`` nor the dataset loader can
train at another input size. Every proxy uses the study's recipe otherwise (``ProxyConfig`` defaults: lr, batch,
schedule shape, 5,000 validation images) and the study's seed of each model, so proxies differ only in the knob.

For each proxy the summary gives the median CPU-seconds per model, Spearman and Kendall against the reference
with 95% bootstrap intervals over the models, and the comparison of two spaces (``--pair``, AnyNetX_A vs RegNetX
by default) the method would make from it: whether the proxy orders the two spaces' mean errors as the reference
does, and the one-sided permutation p-value of the mean difference at the proxy, in the reference's direction.
The noise ceiling is the default proxy's agreement with itself under another seed (the study's own error vs
``proxy-seed1``). ``choose_default`` states and applies the rule that picks the default from the curve.

Runs are appended one per line to ``OUT/runs.jsonl`` and skipped on restart, so the script can be killed at any
time. ``--shard K/N`` takes every N-th job of the full plan, so N single-thread processes on N cores share the
work and one ``--out``; each writes ``summary.json`` and ``cost_curve.png`` from every row present when it ends
(``--summary-only`` redoes that without training). Each row has ``cpu_seconds`` (process CPU time of the
training: what the proxy costs) and ``seconds`` (its wall time, which a loaded machine inflates), the CPU model
and the 1-minute load when it started: costs compare only within one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxy_runs import (REFERENCE_OVERRIDES, ROOT, SEED1_OFFSET, SEED1_OVERRIDES, append_run,  # noqa: E402
                        chosen_models, model_seed, parse_shard, rank_correlations, read_runs, train_run)

from regnet_space.models.spec import AnyNetSpec  # noqa: E402
from regnet_space.userfiles import write_output  # noqa: E402

HERE = Path(__file__).resolve().parent
# Six points over an 8x range of training images, listed by expected cost (they run in this order), with the
# current default (e1-f0.2): less data (f0.05, f0.1), the default's images at half the width (its flops are
# 0.26-0.74x the model's on the 40 models: stages narrower than 16 stay 8 wide), more data (f0.4), and the
# same extra images as a second epoch instead (e2-f0.2).
DEFAULT_GRID = ("e1-f0.05", "e1-f0.1", "e1-f0.2-w0.5", "e1-f0.2", "e1-f0.4", "e2-f0.2")
CURRENT_DEFAULT = "e1-f0.2"
DEFAULT_PAIR = ("anynetx_a", "regnetx")
PERMUTATIONS = 10_000
_NAME = re.compile(r"^e(?P<epochs>\d+)-f(?P<fraction>\d*\.?\d+)(-w(?P<width>\d*\.?\d+))?$")
RULE = ("the cheapest proxy (median CPU-seconds per model) that reproduces the reference's comparison of the two "
        "spaces (same order, one-sided p <= 0.05) and ranks the models as well as the best proxy within the noise: "
        "the paired 95% interval of its Spearman gap to the best includes 0, or its Spearman reaches the noise "
        "ceiling (two seeds of the default proxy against each other)")


@dataclass(frozen=True)
class Proxy:
    """One point of the grid: epochs, fraction of the training split, and a width multiplier of the model."""

    name: str
    epochs: int
    train_fraction: float
    width: float = 1.0

    @classmethod
    def parse(cls, name: str) -> Proxy:
        """``e1-f0.2`` (1 epoch on 20% of the training split), ``e1-f0.2-w0.5`` (the same at half the width)."""
        match = _NAME.match(name.strip())
        if not match:
            raise ValueError(f"proxy {name!r}: expected e<epochs>-f<train fraction>[-w<width multiplier>], "
                             f"e.g. e1-f0.2 or e1-f0.2-w0.5")
        epochs, fraction = int(match["epochs"]), float(match["fraction"])
        width = float(match["width"]) if match["width"] else 1.0
        if epochs < 1 or not 0 < fraction <= 1 or not 0 < width <= 1:
            raise ValueError(f"proxy {name!r}: needs epochs >= 1, 0 < fraction <= 1 and 0 < width <= 1")
        return cls(name.strip(), epochs, fraction, width)

    @property
    def overrides(self) -> dict[str, Any]:
        """What this proxy changes in the study's ``ProxyConfig``."""
        return {"epochs": self.epochs, "train_fraction": self.train_fraction}

    @property
    def images(self) -> float:
        """Training images seen, as a multiple of the whole training split (the default proxy: 0.2)."""
        return self.epochs * self.train_fraction

    def model(self, spec: AnyNetSpec) -> AnyNetSpec:
        """The network this proxy trains: ``spec`` itself, or its stages narrowed by ``width``. The width
        strategy scales flops by s with widths by s^(1/2), so s = width^2."""
        if self.width == 1.0:
            return spec
        from regnet_space.models.scaling import scale_by, strategy

        return scale_by(spec, self.width ** 2, strategy("w"))


@dataclass(frozen=True)
class Job:
    """One training run: a model under a schedule (a grid proxy, ``reference`` or ``proxy-seed1``)."""

    space: str
    index: int
    schedule: str

    @property
    def key(self) -> tuple[str, int, str]:
        return self.space, self.index, self.schedule


def plan(models: pd.DataFrame, grid: list[Proxy], have: set[tuple[str, int, str]]) -> list[Job]:
    """Every run the curve needs, in the order they should run: each grid proxy over all models, in the grid's
    order (the default grid is listed cheapest first, so a stopped run already has whole points of the curve),
    then the reference and the second proxy seed of the models that ``reference.py`` did not train (``have``
    holds the keys already recorded there).

    The plan does not depend on what this script has already run, so every shard cuts the same list."""
    keys = [(space, int(index)) for space, index in models[["space", "model_index"]].itertuples(index=False)]
    jobs = [Job(space, index, proxy.name) for proxy in grid for space, index in keys]
    for schedule in ("reference", "proxy-seed1"):
        jobs += [Job(space, index, schedule) for space, index in keys if (space, index, schedule) not in have]
    return jobs


def shard_of(jobs: list[Job], shard: int, shards: int) -> list[Job]:
    """This shard's jobs: within each schedule's block every ``shards``-th model, the start moved on by one from
    block to block. Models alternate between spaces, so a fixed stride would give one shard the same spaces (and
    model sizes) under every proxy; the rotation gives each shard every model under some proxies."""
    mine, block, position, previous = [], -1, 0, None
    for job in jobs:
        if job.schedule != previous:
            block, position, previous = block + 1, 0, job.schedule
        if (position + block) % shards == shard:
            mine.append(job)
        position += 1
    return mine


def machine() -> str:
    """The CPU's model name (what ``lscpu`` shows), so every cost is tied to the machine it was measured on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


# ----------------------------------------------------------------------------------------------- the summary

def error_table(models: pd.DataFrame, rows: Iterable[dict]) -> pd.DataFrame:
    """Validation error of every model (rows: space, model_index) under every schedule (columns), NaN where a run
    is missing or did not finish ``ok``; ``study`` is the study's own proxy error (the default proxy, seed 0,
    evaluated on all 10,000 validation images), from ``results.csv``."""
    table = models.set_index(["space", "model_index"])[["val_error"]].rename(columns={"val_error": "study"})
    long = pd.DataFrame([{"space": r["space"], "model_index": int(r["model_index"]), "schedule": r["schedule"],
                          "error": r["val_error"] if r["status"] == "ok" else np.nan} for r in rows],
                        columns=["space", "model_index", "schedule", "error"])
    if not long.empty:
        wide = long.drop_duplicates(["space", "model_index", "schedule"]).pivot(
            index=["space", "model_index"], columns="schedule", values="error")
        table = table.join(wide, how="left")
    return table.astype(float)


def cost_table(models: pd.DataFrame, rows: Iterable[dict]) -> pd.DataFrame:
    """Per schedule, over the chosen models: runs, median CPU and wall seconds per model, from the runs of this
    script only (those with ``cpu_seconds``; ``reference.py``'s ran on another machine). Every run counts,
    whatever its status: a diverged run's cost is what the proxy spent on that model."""
    keys = set(zip(models["space"], models["model_index"].astype(int)))
    frame = pd.DataFrame([{"schedule": r["schedule"], "cpu": r["cpu_seconds"], "wall": r["seconds"]}
                          for r in rows if "cpu_seconds" in r and (r["space"], int(r["model_index"])) in keys],
                         columns=["schedule", "cpu", "wall"])
    return frame.groupby("schedule").agg(runs=("cpu", "size"), cpu=("cpu", "median"), wall=("wall", "median"))


def space_comparison(errors: pd.Series, reference: pd.Series, pair: tuple[str, str], *, seed: int = 0,
                     permutations: int = PERMUTATIONS) -> dict[str, Any] | None:
    """The two-space comparison the method would make from ``errors``, judged against the reference's.

    Over the models of both spaces with an error under both, the mean error of each space under the proxy and the
    reference; ``same_order``: the proxy puts the same space ahead; ``p_one_sided``: the permutation p-value of
    the proxy's mean difference in the direction the reference orders the spaces (space labels shuffled over the
    pooled models, (1 + exceedances) / (1 + permutations)), small when the proxy finds the reference's order
    clearly. ``reference_p_one_sided`` is the same test of the reference in its own direction: how clear the
    order to be reproduced is at all with these few models. The models are the same under every proxy, so
    complexity confounds the two spaces equally for all; this measures agreement with the reference, not a
    design finding."""
    a, b = pair
    both = errors.notna() & reference.notna()
    spaces = errors.index.get_level_values("space")
    in_a, in_b = both & (spaces == a), both & (spaces == b)
    if in_a.sum() < 2 or in_b.sum() < 2:
        return None
    out: dict[str, Any] = {"a": a, "b": b, "n_a": int(in_a.sum()), "n_b": int(in_b.sum())}
    for name, values in (("reference", reference), ("proxy", errors)):
        out[f"{name}_mean_a"], out[f"{name}_mean_b"] = float(values[in_a].mean()), float(values[in_b].mean())
        out[f"{name}_diff"] = out[f"{name}_mean_a"] - out[f"{name}_mean_b"]
    direction = float(np.sign(out["reference_diff"]))
    out["same_order"] = bool(direction != 0 and np.sign(out["proxy_diff"]) == direction)
    for name, values in (("reference_p_one_sided", reference), ("p_one_sided", errors)):
        out[name] = one_sided_permutation_p(values[in_a].to_numpy(), values[in_b].to_numpy(), direction,
                                            permutations=permutations, seed=seed)
    return out


def one_sided_permutation_p(a: np.ndarray, b: np.ndarray, direction: float, *, permutations: int = PERMUTATIONS,
                            seed: int = 0) -> float:
    """P-value of mean(a) - mean(b) in ``direction`` (+1: a has the higher error, -1: b has), the labels
    shuffled over the pooled models: (1 + exceedances) / (1 + permutations). A direction of 0 (the reference
    finds no order) has nothing to reproduce: 1."""
    from regnet_space.analysis.edf import permute_within_bins

    if direction == 0:
        return 1.0
    pooled = np.concatenate([a, b]).astype(float)
    labels = np.arange(pooled.size) < a.size
    # One bin holding every model: a uniform permutation of the labels.
    shuffled = permute_within_bins(labels, np.zeros(pooled.size, dtype=int), permutations, np.random.default_rng(seed))
    diffs = (shuffled @ pooled) / a.size - (~shuffled @ pooled) / b.size
    observed = direction * (a.mean() - b.mean())
    exceed = int(np.sum(direction * diffs >= observed - 1e-12))
    return (1 + exceed) / (1 + permutations)


def spearman_gap(best: np.ndarray, other: np.ndarray, reference: np.ndarray, seed: int = 0,
                 samples: int = 2000) -> dict[str, Any]:
    """Spearman(best, reference) - Spearman(other, reference) with a paired percentile bootstrap 95% interval:
    both from the same resampled models. The proxies rank the same models, so their correlations move together
    over resamples, and the interval of the difference is much shorter than the two intervals side by side
    suggest (the rule's first version compared those, and chose a proxy of Spearman 0.46 that could not tell
    the two spaces apart: ``choose_default``)."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(samples):
        pick = rng.integers(0, best.size, best.size)
        if min(np.ptp(best[pick]), np.ptp(other[pick]), np.ptp(reference[pick])) > 0:
            draws.append(stats.spearmanr(best[pick], reference[pick]).statistic
                         - stats.spearmanr(other[pick], reference[pick]).statistic)
    point = stats.spearmanr(best, reference).statistic - stats.spearmanr(other, reference).statistic
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"gap": float(point), "gap_ci": [float(low), float(high)], "n": int(best.size)}


def _scored(proxies: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The proxies with both a Spearman and a cost: the ones a choice can weigh."""
    return {name: p for name, p in proxies.items()
            if p.get("spearman") is not None and p.get("cpu_seconds") is not None}


def best_proxy(proxies: dict[str, dict[str, Any]]) -> str | None:
    """The proxy with the highest Spearman against the reference among those with a cost."""
    scored = _scored(proxies)
    return max(scored, key=lambda name: scored[name]["spearman"]) if scored else None


def choose_default(proxies: dict[str, dict[str, Any]], ceiling: dict[str, Any] | None) -> dict[str, Any]:
    """The default proxy by ``RULE``: among the proxies with a Spearman and a cost, the best is the highest
    Spearman (``best_proxy``); a proxy qualifies when it reproduces the reference's comparison of the two spaces
    significantly (the method's own decision from a proxy must be the reference's), and when it ranks the
    models as well as the best within the noise: the paired interval of its gap to the best
    (``spearman_gap_to_best``) includes 0, or its Spearman reaches the noise ceiling (the default proxy against
    itself under another seed: no proxy of this kind can agree with the reference better than with itself).
    The cheapest qualifying proxy is the choice (ties: the higher Spearman).

    The first version of the rule (written before the grid ran) qualified a proxy whose Spearman interval
    merely overlapped the best's; on the 40 models it chose e1-f0.05 (Spearman 0.46, the two spaces told apart
    at p = 0.29): side-by-side intervals miss differences the paired gap sees, and a proxy that cannot
    reproduce the comparison the loop decides on is no proxy for it."""
    best = best_proxy(proxies)
    if best is None:
        return {"proxy": None, "rule": RULE, "reason": "no proxy has both a Spearman and a cost yet"}
    scored = _scored(proxies)
    qualified = {}
    for name, p in scored.items():
        comparison = p.get("space_comparison")
        if not comparison or not comparison["same_order"] or comparison["p_one_sided"] > 0.05:
            continue
        reasons = []
        gap = p.get("spearman_gap_to_best")
        if name == best or (gap is not None and gap["gap_ci"][0] <= 0):
            reasons.append("not detectably worse than the best")
        if ceiling is not None and p["spearman"] >= ceiling["spearman"]:
            reasons.append("at or above the noise ceiling")
        if reasons:
            qualified[name] = ["reproduces the space comparison"] + reasons
    if not qualified:
        return {"proxy": None, "best": best, "rule": RULE, "qualified": {},
                "reason": "no proxy reproduces the reference's comparison of the two spaces"}
    chosen = min(qualified, key=lambda name: (scored[name]["cpu_seconds"], -scored[name]["spearman"]))
    return {"proxy": chosen, "best": best, "rule": RULE, "qualified": qualified,
            "cpu_seconds": scored[chosen]["cpu_seconds"], "spearman": scored[chosen]["spearman"],
            "reason": f"{chosen}: {' and '.join(qualified[chosen])}; cheapest of {len(qualified)} qualifying"}


def summarize(errors: pd.DataFrame, costs: pd.DataFrame, grid: list[Proxy], *, pair: tuple[str, str] = DEFAULT_PAIR,
              permutations: int = PERMUTATIONS, min_models: int = 5) -> dict[str, Any]:
    """Everything the curve and the choice need, from the error table and the costs (no training).

    A correlation needs ``min_models`` models with both errors; with fewer, the proxy is listed without one."""
    reference = errors["reference"] if "reference" in errors else pd.Series(np.nan, index=errors.index)
    summary: dict[str, Any] = {"models": int(reference.notna().sum()), "pair": list(pair), "proxies": {}}
    if reference.notna().any():
        summary["reference_median_error"] = float(reference.median())

    def correlate(column: str, against: pd.Series) -> dict[str, Any] | None:
        if column not in errors:
            return None
        both = errors[column].notna() & against.notna()
        if both.sum() < min_models:
            return None
        return rank_correlations(errors.loc[both, column].to_numpy(), against[both].to_numpy())

    ceiling = correlate("study", errors["proxy-seed1"]) if "proxy-seed1" in errors else None
    summary["noise_ceiling"] = ceiling and {"pair": "study proxy (seed 0) vs proxy-seed1", **ceiling}
    as_studied = correlate("study", reference)
    summary["study_proxy"] = as_studied and {
        "what": "the study's own errors against the reference: the default proxy as the study ran it (its "
                "evaluation then on all 10,000 validation images; the same training as e1-f0.2)", **as_studied}
    for proxy in grid:
        entry: dict[str, Any] = {"epochs": proxy.epochs, "train_fraction": proxy.train_fraction, "width": proxy.width,
                                 "images": proxy.images, "current_default": proxy.name == CURRENT_DEFAULT}
        if proxy.name in costs.index:
            row = costs.loc[proxy.name]
            entry.update(runs=int(row["runs"]), cpu_seconds=None if pd.isna(row["cpu"]) else float(row["cpu"]),
                         wall_seconds=float(row["wall"]))
        if proxy.name in errors:
            column = errors[proxy.name]
            entry.update(ok=int(column.notna().sum()),
                         median_error=float(column.median()) if column.notna().any() else None)
            entry.update(correlate(proxy.name, reference) or {})
            comparison = space_comparison(column, reference, pair, permutations=permutations)
            if comparison is not None:
                entry["space_comparison"] = comparison
        summary["proxies"][proxy.name] = entry
    summary["other_schedules"] = {name: {"runs": int(row["runs"]), "cpu_seconds": float(row["cpu"]),
                                         "wall_seconds": float(row["wall"])}
                                  for name, row in costs.iterrows() if name in ("reference", "proxy-seed1")}
    best = best_proxy(summary["proxies"])
    if best is not None:
        for name, entry in summary["proxies"].items():
            if name == best or entry.get("spearman") is None:
                continue
            both = errors[best].notna() & errors[name].notna() & reference.notna()
            if both.sum() >= min_models:
                entry["spearman_gap_to_best"] = spearman_gap(errors.loc[both, best].to_numpy(),
                                                             errors.loc[both, name].to_numpy(),
                                                             reference[both].to_numpy())
    summary["choice"] = choose_default(summary["proxies"], ceiling)
    return summary


def figure(summary: dict[str, Any]):
    """Spearman against the reference (95% interval) vs median CPU-seconds per model, log x, the noise ceiling as
    a band; filled markers order the two spaces as the reference does, hollow ones do not; the chosen default is
    a star, the current default ringed."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(7.5, 4.8))
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.9)
    ax = fig.add_subplot()
    ceiling = summary.get("noise_ceiling")
    if ceiling:
        low, high = ceiling["spearman_ci"]
        ax.axhspan(low, high, color="0.88", zorder=0,
                   label=f"noise ceiling: two seeds of the default, {ceiling['spearman']:.2f} [{low:.2f}, {high:.2f}]")
        ax.axhline(ceiling["spearman"], color="0.6", linestyle="--", linewidth=1, zorder=1)
    chosen = summary["choice"].get("proxy")
    a, b = summary["pair"]
    for name, p in summary["proxies"].items():
        if p.get("spearman") is None or p.get("cpu_seconds") is None:
            continue
        x, y = p["cpu_seconds"], p["spearman"]
        low, high = p["spearman_ci"]
        same = p.get("space_comparison", {}).get("same_order", True)
        color = "tab:red" if name == chosen else "tab:blue"
        ax.errorbar([x], [y], yerr=[[y - low], [high - y]], fmt="none", ecolor=color, capsize=3, zorder=2)
        ax.scatter([x], [y], marker="*" if name == chosen else "o", s=160 if name == chosen else 45, zorder=3,
                   facecolors=color if same else "white", edgecolors=color)
        if p.get("current_default"):
            ax.scatter([x], [y], marker="o", s=260, facecolors="none", edgecolors="black", zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 20, not 2x10^1
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.set_xlabel("median CPU-seconds per model (one thread)")
    ax.set_ylabel("Spearman vs the reference (95% CI)")
    ax.set_title(f"Proxy fidelity per cost, {summary['models']} models; star: chosen ({chosen}), ring: current "
                 f"default;\nhollow: orders {a} vs {b} unlike the reference", fontsize=9)
    if ceiling:
        ax.legend(loc="lower right", fontsize=8)
    return fig


def print_table(summary: dict[str, Any]) -> None:
    """The summary as a markdown table, for the README and the log."""
    a, b = summary["pair"]
    print(f"\n| proxy | images | CPU s/model | n | Spearman [95% CI] | Kendall [95% CI] | {a} - {b} "
          f"(ref. order?) | p one-sided |\n|---|---|---|---|---|---|---|---|")
    for name, p in summary["proxies"].items():
        cpu = f"{p['cpu_seconds']:.1f}" if p.get("cpu_seconds") is not None else "-"
        if p.get("spearman") is None:
            print(f"| {name} | {p['images']:g} | {cpu} | {p.get('ok', 0)} | - | - | - | - |")
            continue
        c = p.get("space_comparison")
        edf = (f"{c['proxy_diff']:+.2f} ({'yes' if c['same_order'] else 'no'}) | {c['p_one_sided']:.3f}"
               if c else "- | -")
        print(f"| {name} | {p['images']:g} | {cpu} | {p['n']} | {p['spearman']:.3f} [{p['spearman_ci'][0]:.2f}, "
              f"{p['spearman_ci'][1]:.2f}] | {p['kendall']:.3f} [{p['kendall_ci'][0]:.2f}, {p['kendall_ci'][1]:.2f}]"
              f" | {edf} |")
    ceiling = summary.get("noise_ceiling")
    if ceiling:
        print(f"\nnoise ceiling ({ceiling['pair']}, n = {ceiling['n']}): Spearman {ceiling['spearman']:.3f} "
              f"[{ceiling['spearman_ci'][0]:.2f}, {ceiling['spearman_ci'][1]:.2f}]")
    studied = summary.get("study_proxy")
    if studied:
        print(f"the study's own errors (the default proxy evaluated on 10,000 images) vs the reference, n = "
              f"{studied['n']}: Spearman {studied['spearman']:.3f} [{studied['spearman_ci'][0]:.2f}, "
              f"{studied['spearman_ci'][1]:.2f}]")
    choice = summary["choice"]
    print(f"rule: {choice['rule']}\nchoice: {choice['reason']}")


def write_summary(out: Path, models: pd.DataFrame, rows: list[dict], grid: list[Proxy], pair: tuple[str, str]
                  ) -> dict[str, Any]:
    """Recompute the summary and the figure from every row present (this shard's and the others')."""
    from regnet_space.analysis.plots import save

    summary = summarize(error_table(models, rows), cost_table(models, rows), grid, pair=pair)
    ours = [r for r in rows if "cpu_seconds" in r]
    summary["machines"] = sorted({r.get("cpu_model", "unknown") for r in ours})
    loads = [r["load_1min"] for r in ours if r.get("load_1min") is not None]
    summary["load_1min_range"] = [min(loads), max(loads)] if loads else None
    write_output(out / "summary.json", json.dumps(summary, indent=2) + "\n", "cost-curve summary")
    save(figure(summary), out / "cost_curve.png")
    print_table(summary)
    return summary


# ------------------------------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(ROOT / "experiments/progression_small.toml"),
                        help="the study's spec (its dataset split, proxy and seed are reused)")
    parser.add_argument("--results", default=str(ROOT / "analysis/progression_small/results.csv"),
                        help="the study's exported results.csv")
    parser.add_argument("--references", type=Path, default=HERE / "small_form" / "runs.jsonl",
                        help="runs.jsonl of reference.py: the reference and proxy-seed1 of its models")
    parser.add_argument("--per-space", type=int, default=8, help="models per space with references (default 8)")
    parser.add_argument("--extra-per-space", type=int, default=2,
                        help="the next K models of each space, references trained here (default 2: 40 models; "
                             "0: the 32 with references only)")
    parser.add_argument("--grid", default=",".join(DEFAULT_GRID),
                        help=f"comma-separated proxies e<epochs>-f<fraction>[-w<width>] (default {','.join(DEFAULT_GRID)})")
    parser.add_argument("--pair", default=",".join(DEFAULT_PAIR), help="the two spaces compared (default %(default)s)")
    parser.add_argument("--out", type=Path, default=HERE / "cost_curve")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shard", default="0/1", help="K/N: run jobs K, K+N, K+2N, ... of the plan (default 0/1)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N models (a smoke test)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and what is left of it; train nothing")
    parser.add_argument("--summary-only", action="store_true", help="recompute summary.json and the figure only")
    args = parser.parse_args(argv)
    try:
        shard, shards = parse_shard(args.shard)
        grid = [Proxy.parse(name) for name in args.grid.split(",") if name.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    pair = tuple(args.pair.split(","))
    if len(pair) != 2 or len({p.name for p in grid}) != len(grid) or not grid:
        parser.error("--pair needs two spaces, --grid at least one proxy and no repeats")

    from regnet_space.study.spec import load_study_spec

    study = load_study_spec(args.spec)
    models = chosen_models(pd.read_csv(args.results), args.per_space + args.extra_per_space)
    if args.limit is not None:
        models = models.iloc[:args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    runs_path = args.out / "runs.jsonl"
    earlier = [r for r in read_runs(args.references) if r["schedule"] in ("reference", "proxy-seed1")]
    jobs = shard_of(plan(models, grid, {(r["space"], r["model_index"], r["schedule"]) for r in earlier}),
                    shard, shards)
    done = {(r["space"], r["model_index"], r["schedule"]) for r in read_runs(runs_path)}
    todo = [job for job in jobs if job.key not in done]
    print(f"{len(models)} models, {len(grid)} proxies; shard {shard}/{shards}: {len(jobs)} runs, {len(todo)} to do",
          flush=True)
    if args.dry_run:
        for schedule in dict.fromkeys(job.schedule for job in jobs):
            mine = [job for job in jobs if job.schedule == schedule]
            print(f"  {schedule:14s} {len(mine):3d} runs, {sum(job in todo for job in mine):3d} to do")
        return
    if todo and not args.summary_only:
        train(todo, models, grid, study, args, runs_path)
    write_summary(args.out, models, earlier + read_runs(runs_path), grid, pair)


def train(todo: list[Job], models: pd.DataFrame, grid: list[Proxy], study, args, runs_path: Path) -> None:
    """Run the jobs in order, appending each finished run to ``runs_path``."""
    from tqdm import tqdm

    from regnet_space.proxy.config import ProxyConfig
    from regnet_space.proxy.data import load_dataset

    specs = {(s, int(i)): spec for s, i, spec in models[["space", "model_index", "spec"]].itertuples(index=False)}
    proxies = {p.name: p for p in grid}
    base = ProxyConfig.from_dict(study.proxy)
    dataset = load_dataset(**{**study.dataset, "device": args.device})
    cpu_model = machine()
    bar = tqdm(todo, unit="run", dynamic_ncols=True, file=sys.stderr)
    for job in bar:
        bar.set_postfix_str(f"{job.schedule} {job.space} {job.index}")
        spec = AnyNetSpec.from_json(specs[(job.space, job.index)])
        offset = 0
        if job.schedule == "reference":
            config = base.replace(**REFERENCE_OVERRIDES)
        elif job.schedule == "proxy-seed1":
            config, offset = base.replace(**SEED1_OVERRIDES), SEED1_OFFSET
        else:
            proxy = proxies[job.schedule]
            config, spec = base.replace(**proxy.overrides), proxy.model(spec)
        seed = model_seed(study.seed, job.space, job.index, offset)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        result = train_run(spec, dataset, config, seed=seed, device=args.device, threads=args.threads)
        append_run(runs_path, {"space": job.space, "model_index": job.index, "schedule": job.schedule, "seed": seed,
                               "cpu_model": cpu_model, "load_1min": load, **result})
        bar.write(f"{job.schedule:14s} {job.space} {job.index:3d} {result['status']:8s} val_err "
                  f"{result['val_error']} cpu {result['cpu_seconds']:.1f}s wall {result['seconds']:.1f}s")
    bar.close()


if __name__ == "__main__":
    main()
