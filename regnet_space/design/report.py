"""design_report.html: the story of one design run — the EDF of every round's space overlaid (the paper's
Figures 4-9 for this data), each round's candidates against their parent, the lineage table, the final space.

EDFs are normalised by flops over the design's window (NDS weights 1/(k*m_j) over the bins a population
fills) when the window is finite, plain otherwise, as the loop's tests are. One self-contained page.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..analysis.edf import EDF, Binning, edf, normalised_weights
from ..analysis.report import _STYLE, _Page
from .loop import DesignResult


def binning_for(windows: dict[str, tuple[float, float]], population: int, bins: int | None = None) -> Binning | None:
    """The flops bins the report's figures normalise EDFs with: ``bins`` (default population // 8, 1..10)
    equal-width bins over the flops window; None (plain EDFs) without a finite window. The loop's tests do
    not use them: they hold flops equal by adjustment (``compare.py``)."""
    lo, hi = windows.get("flops", (0.0, float("inf")))
    if not np.isfinite(hi) or not hi > lo:
        return None
    return Binning(float(lo), float(hi), bins if bins is not None else min(10, max(1, population // 8)))


def population_edf(table: pd.DataFrame, binning: Binning | None) -> EDF:
    """A population's EDF, flops-normalised over the bins it fills when ``binning`` is given."""
    errors = table["error"].to_numpy(float)
    if binning is None:
        return edf(errors)
    index = binning.assign(table["flops"].to_numpy(float))
    inside = index >= 0
    present = np.unique(index[inside])
    return edf(errors[inside], normalised_weights(np.searchsorted(present, index[inside]), len(present)))


def edf_overlay(curves: list[tuple[str, EDF]], title: str, *, reference: bool = False) -> Figure:
    """The EDFs as step curves, in order (viridis); ``reference`` draws the first as a dashed black line."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    colors = sns.color_palette("viridis", max(2, len(curves)))
    for i, (color, (name, e)) in enumerate(zip(colors, curves)):
        style = dict(color="black", linestyle="--") if reference and i == 0 else dict(color=color)
        ax.step(e.errors, e.cdf, where="post", **style, label=f"{name}  n={e.n} min={e.min_error:.2f} "
                f"mean={e.mean_error:.2f}")
    ax.set_xlabel("error (%)")
    ax.set_ylabel("cumulative prob." + (" (flops-normalised)" if "normalised" in title else ""))
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def build_design_report(result: DesignResult, meta: dict[str, Any], binning: Binning | None,
                        figures_dir: str | None = None) -> str:
    """The HTML text of the report; ``meta`` holds name, dataset, proxy, seed, alpha and the spec text."""
    page = _Page(figures_dir)
    kind = f"flops-normalised, {binning.bins} bins over {binning.lo:.4g}..{binning.hi:.4g}" if binning else "plain"
    name = str(meta.get("name", "design"))
    lineage = result.lineage
    page.text(f"{len(lineage)} populations, {sum(r['n'] for r in lineage)} models; data: "
              f"{json.dumps(meta.get('dataset'))}; proxy: {json.dumps(meta.get('proxy'))}; seed {meta.get('seed')}; "
              f"alpha {meta.get('alpha')}")
    page.text(f"stopped: {result.stop}. Final space: {result.final_space.name} (population {result.path[-1]}).")
    page.heading("The space of every round")
    by_label = {r["label"]: r for r in lineage}
    curves = [(f"{label} ({by_label[label]['space']})", population_edf(result.populations[label], binning))
              for label in result.path]
    page.figure(edf_overlay(curves, f"error EDF of each round's accepted space ({kind})"), "edf_rounds")
    page.text("Each curve is the population of the space the loop kept after that round; a curve further left "
              "and higher has more good models.")
    for round_ in sorted({r["round"] for r in lineage if r["round"] > 0}):
        rows = [r for r in lineage if r["round"] == round_]
        parent = _parent_of(result, round_)
        curves = [(f"parent {parent}", population_edf(result.populations[parent], binning))]
        curves += [(f"{r['label']}{' (accepted)' if r['accepted'] else ''}{' better' if r['better'] else ''}",
                    population_edf(result.populations[r["label"]], binning)) for r in rows
                   if len(result.populations[r["label"]])]  # a paired candidate of unchanged models trained none
        page.heading(f"Round {round_}")
        page.figure(edf_overlay(curves, f"round {round_}: candidates vs parent ({kind})", reference=True),
                    f"edf_round{round_}")
        for r in rows:
            page.text(f"{r['candidate']}: {r['why']}")
    page.heading("Lineage")
    columns = ["round", "candidate", "label", "evaluation", "n", "reused", "mean_error", "median_error", "min_error",
               "shift", "ks", "effect", "effect_low", "effect_high", "decision", "p", "p_better", "accepted", "better"]
    frame = pd.DataFrame(lineage)
    page.table(frame[[c for c in columns if c in frame]])
    page.text("shift: the candidate's mean error rank minus its parent's at equal flops (ranks of both populations "
              "less a cubic in log flops, as a share of the models; > 0: better); ks: the KS distance of those "
              "adjusted ranks. p: Holm-adjusted (over the round's populations, the composition included) one-sided "
              "permutation p-value, labels permuted within flops strata, that the candidate is worse at equal "
              "flops; p_better: the same for better, called better at <= alpha / rounds. Accepted: the population "
              "that became the next parent (a candidate the data proposed when not worse; a paper step, or the "
              "composition of paper steps, only when better). A paired candidate (evaluation 'paired') is its "
              "projections: each parent model moved into the candidate space at its own flops and trained with "
              "its seed (n: the projections trained; a model already in the candidate space is its own projection, "
              "a pair with difference 0 that is not trained again); effect: the mean paired difference at equal "
              "flops with its 95% interval (< 0: the "
              "constraint helps); decision: the group-sequential rule's (better at alpha / rounds / candidates, "
              "futile: stopped with the effect pointing the harmful way; stopped: the round's composition was "
              "better first; or not better). A paired loop's next parent (evaluation 'projected') is the parent "
              "population projected into the accepted space: n models trained for it, reused the ones measured "
              "before.")
    if result.verification:
        page.heading("Verification: fresh populations at the end")
        first = result.verification[0]
        curves = [(f"final space ({first['final_label']})", population_edf(result.populations[first["final_label"]],
                                                                           binning))]
        curves += [(f"{r['against']} ({r['label']})", population_edf(result.populations[r["label"]], binning))
                   for r in result.verification]
        page.figure(edf_overlay(curves, f"the final space against the start and references ({kind})",
                                reference=True), "edf_verification")
        page.table(pd.DataFrame(result.verification)[["against", "space", "n", "mean_final", "mean_other", "shift",
                                                      "p_better", "p_worse", "verdict"]])
        page.text("Populations drawn and trained after the loop, used for nothing else: the paper's unpaired "
                  "comparison at equal flops (one-sided permutation tests of complexity-adjusted ranks; p_better "
                  "and p_worse Holm-adjusted over the comparisons, the raw p-values in lineage.json). shift > 0: "
                  "the final space is better.")
    page.heading("Final space")
    page.pre(result.final_space.to_toml())
    if meta.get("spec_text"):
        page.heading("Design spec")
        page.pre(str(meta["spec_text"]))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(name)} design</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(name)}: design loop</h1>"
            + "\n".join(page.parts) + "</body></html>\n")


def _parent_of(result: DesignResult, round_: int) -> str:
    """The population round ``round_`` compared its candidates with: the path's entry before that round."""
    rounds = {r["label"]: r["round"] for r in result.lineage}
    earlier = [label for label in result.path if rounds[label] < round_]
    return earlier[-1]
