"""Issue 27, item 5: the committed analyses' claims, each checked against the committed tables with a test.

    PYTHONPATH=. python analysis/reread.py

Prints one line per claim: the test, its statistic and its p-value. Every comparison of one design choice is also
made at equal complexity: the choice's coefficient in an ordinary least-squares fit of error on log flops and the
choice (t-test), since inside a flops window a choice that adds flops lowers error by that alone (issue 27).
Readings in analysis/progression_small/, analysis/design_loop/ and analysis/anynet_progression/ quote these lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from regnet_space.analysis.edf import Binning, holm
from regnet_space.design.compare import one_sided_tests

HERE = Path(__file__).resolve().parent
STAGES = (1, 2, 3, 4)


def complete(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    if "status" in frame.columns:
        frame = frame[frame["status"] == "complete"].rename(columns={"val_error": "error"})
    return frame


def at_equal_flops(group: pd.DataFrame, choice: pd.Series) -> tuple[float, float]:
    """The choice's effect on error (points) with log flops held equal, and its t-test p (OLS)."""
    x = np.c_[np.ones(len(group)), np.log(group["flops"].to_numpy(float)), choice.to_numpy(float)]
    y = group["error"].to_numpy(float)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ beta
    dof = len(y) - x.shape[1]
    covariance = residual @ residual / dof * np.linalg.inv(x.T @ x)
    t = beta[2] / np.sqrt(covariance[2, 2])
    return float(beta[2]), float(2 * stats.t.sf(abs(t), dof))


def two_groups(name: str, group: pd.DataFrame, choice: pd.Series) -> None:
    """Median error with and without ``choice``, Mann-Whitney (two-sided), and the effect at equal flops."""
    yes, no = group["error"][choice], group["error"][~choice]
    test = stats.mannwhitneyu(yes, no, alternative="two-sided")
    effect, p = at_equal_flops(group, choice)
    print(f"  {name}: {len(yes)} vs {len(no)} models, median {yes.median():.2f}% vs {no.median():.2f}%; "
          f"Mann-Whitney U = {test.statistic:.0f}, p = {test.pvalue:.2g}; at equal log flops "
          f"{effect:+.2f} points, t-test p = {p:.2g}")


def by_stage_b(name: str, group: pd.DataFrame) -> None:
    """Kruskal-Wallis of error across b values, per stage."""
    for stage in STAGES:
        values = sorted(group[f"b{stage}"].unique())
        samples = [group["error"][group[f"b{stage}"] == v] for v in values]
        test = stats.kruskal(*samples)
        medians = ", ".join(f"b={v:g}: {s.median():.1f}% (n {len(s)})" for v, s in zip(values, samples))
        print(f"  {name}, stage {stage}: {medians}; Kruskal-Wallis H = {test.statistic:.2f}, p = {test.pvalue:.2g}")


def progression_small() -> None:
    frame = complete(HERE / "progression_small" / "results.csv")
    print("progression_small: 'b = 1 helps' (b = 1 in every stage vs not)")
    for space in ("anynetx_c", "anynetx_e"):
        group = frame[frame["space"] == space]
        two_groups(space, group, (group[[f"b{s}" for s in STAGES]] == 1).all(axis=1))


def design_loop() -> None:
    frame = complete(HERE / "design_loop" / "fashion_mnist" / "results.csv")
    start, round1 = frame[frame["space"] == "start"], frame[frame["space"] == "r1-narrow-monotone-width"]
    print("design_loop: 'bottleneck models did better' (start population, error by b per stage)")
    by_stage_b("start", start)
    widths = start[[f"w{s}" for s in STAGES]].to_numpy()
    print("design_loop: round 1's evidence (start population)")
    two_groups("non-decreasing widths", start, pd.Series((np.diff(widths, axis=1) >= 0).all(axis=1), start.index))
    two_groups("w4 >= 32", start, start["w4"] >= 32)
    print("design_loop: round 2's evidence (round-1 population)")
    two_groups("d3 >= 3", round1, round1["d3"] >= 3)
    print("design_loop: 'better' of each round vs the number of flops bins (one-sided stratified permutation test, "
          "2000 permutations, 0.5-2 MFLOPs; the run used 5)")
    for parent, child in (("start", "r1-narrow-monotone-width"), ("r1-narrow-monotone-width", "r2-narrow-depth")):
        a, b = frame[frame["space"] == parent], frame[frame["space"] == child]
        cells = []
        for bins in (1, 2, 3, 4, 5, 6, 8, 10):
            binning = Binning(0.5e6, 2e6, bins) if bins > 1 else None
            test = one_sided_tests((a["error"].to_numpy(), a["flops"].to_numpy()),
                                   (b["error"].to_numpy(), b["flops"].to_numpy()), binning, seed=0)
            heaviest = ""
            if binning is not None:
                counts = [np.bincount(binning.assign(g["flops"].to_numpy(float)), minlength=bins) for g in (a, b)]
                share = max(1 / (np.count_nonzero(c) * c[c > 0].min()) for c in counts)
                heaviest = f", heaviest model {share:.0%}"
            cells.append(f"{bins} bin{'s' if bins > 1 else ''}: p_better {test.p_better:.3f}{heaviest}")
        print(f"  {child} vs {parent}: " + "; ".join(cells))


def anynet_progression() -> None:
    frame = complete(HERE / "anynet_progression" / "results.csv")
    print("anynet_progression: KS vs anynetx_a, Holm over the 5 comparisons (p from table.md)")
    for name, pvalues in (("plain", [0.579, 0.579, 0.0971, 0.266, 0.0541]),
                          ("flops-normalised", [0.398, 0.0899, 0.82, 0.562, 0.0659]),
                          ("latency-normalised", [0.369, 0.299, 0.402, 0.333, 0.025])):
        adjusted = holm(pvalues)
        print(f"  {name}: B..E, RegNetX Holm p = " + ", ".join(f"{p:.2g}" for p in adjusted))
    print("anynet_progression: 'b explains more' (D and E: b = 1 vs b = 2 or 4; b is shared from B on)")
    for space in ("anynetx_d", "anynetx_e"):
        group = frame[frame["space"] == space]
        two_groups(space, group, group["b1"] == 1)
    print("anynet_progression: 'error rises with parameter count in D and E' (Spearman)")
    for space in ("anynetx_a", "anynetx_d", "anynetx_e", "regnetx"):
        group = frame[frame["space"] == space]
        rho = stats.spearmanr(group["params"], group["error"])
        print(f"  {space}: rho = {rho.statistic:+.2f}, p = {rho.pvalue:.2g} (n {len(group)})")


if __name__ == "__main__":
    progression_small()
    design_loop()
    anynet_progression()
