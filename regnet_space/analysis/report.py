"""One self-contained HTML page for a study: EDFs, KS tests, good ranges, linear fits, the best config, the spec.

Images are embedded as base64 PNGs and there are no scripts or external links, so the file opens anywhere
with no server. ``figures_dir`` also writes every figure as PNG and SVG.
"""

from __future__ import annotations

import html
import json
import os
from concurrent.futures import Executor
from contextlib import ExitStack
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import UserError
from ..models.summary import compact, percent
from . import plots
from .best import best_config
from .bootstrap import good_ranges
from .edf import Comparison
from .linear_fit import SPREAD_FROM, PendingFits, worker_pool
from .table import block_widths, complexity_columns, frame_block_widths, parameter_columns
from .verdict import SpaceComparison, compare_spaces

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 1.6em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
pre { background: #f4f4f4; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #a40; }
.verdict { background: #eef6ee; border-left: 4px solid #4a4; padding: 0.6em 1em; }
.verdict.unsure { background: #f6f3e8; border-left-color: #c90; }
td:first-child, th:first-child { text-align: left; }
"""


# Models per space the report fits by default; its e_fit summaries are estimates from them. On 10,000 sampled
# models (5,000 per space, benchmarks/analysis_speed.py's table) the median e_fit of 500 lay within 0.037 of all
# 5,000's (AnyNetX_A, median 0.569) in 95% of 1,000 draws, 0.024 with 1,000 models; and a fit costs ~4 ms a model.
FIT_SAMPLE = 500


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system says, else all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def with_e_fit(frame: pd.DataFrame, progress: bool = False, *, per_space: int | None = None, seed: int = 0,
               top: int = 0, processes: int = 1) -> pd.DataFrame:
    """``frame`` plus ``e_fit`` (and the fit) for every model whose block widths are known; with ``per_space``,
    only for a seeded random sample of at most that many of them per space plus the ``top`` lowest-error ones
    (NaN for the others; ``attrs["known"]``: how many have known widths). A fit costs milliseconds per model,
    the bulk of a report at 10,000 models, and a few hundred models per space estimate the spread and median of
    e_fit well (see FIT_SAMPLE)."""
    with EFits(frame, per_space=per_space, seed=seed, top=top, processes=processes) as fitting:
        return fitting.fitted(progress)


class EFits:
    """``with_e_fit`` started ahead: the models to fit are chosen and, with ``processes`` > 1, their fits started
    at once in ``processes`` - 1 worker processes (``PendingFits``; or in ``pool``'s), so a report draws its
    other sections meanwhile; ``fitted`` takes part in what is left and waits for the rest. A context manager:
    leaving it early cancels the fits no worker has started."""

    def __init__(self, frame: pd.DataFrame, *, per_space: int | None = None, seed: int = 0, top: int = 0,
                 processes: int = 1, pool: Executor | None = None) -> None:
        widths = pd.Series(frame_block_widths(frame), index=frame.index, dtype=object)
        chosen = widths.notna()
        self._known = int(chosen.sum())
        if per_space is not None:
            rng = np.random.default_rng(seed)
            keep = pd.Series(False, index=frame.index)
            for _, rows in widths[chosen].groupby(frame.loc[chosen, "space"]):
                keep[rng.permutation(rows.index.to_numpy())[:per_space]] = True
            keep[frame[chosen].sort_values(["error", "flops"], kind="stable").index[:top]] = True
            chosen &= keep
        self._frame, self._chosen = frame, chosen
        self._fits = PendingFits(widths[chosen].tolist(), processes=processes, pool=pool)

    def __enter__(self) -> "EFits":
        return self

    def __exit__(self, *exc_info) -> None:
        self._fits.__exit__(*exc_info)

    def fitted(self, progress: bool = False) -> pd.DataFrame:
        """The frame with ``e_fit`` and ``_fit`` (NaN and None where not fitted)."""
        found = iter(self._fits.result(progress))
        fits = [next(found) if fit else None for fit in self._chosen]
        out = self._frame.copy()
        out["e_fit"] = [np.nan if f is None else f.e_fit for f in fits]
        out["_fit"] = fits
        out.attrs["known"] = self._known
        return out


class _Page:
    """Sections of the page, in order; figures embedded and optionally saved."""

    def __init__(self, figures_dir: str | None) -> None:
        self.parts: list[str] = []
        self.figures_dir = figures_dir

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, note: bool = False) -> None:
        self.parts.append(f"<p{' class=note' if note else ''}>{html.escape(text)}</p>")

    def verdict(self, sentences: list[str], sure: bool) -> None:
        body = "".join(f"<p>{html.escape(s)}</p>" for s in sentences)
        self.parts.append(f'<div class="verdict{"" if sure else " unsure"}" id="verdict">{body}</div>')

    def table(self, frame: pd.DataFrame) -> None:
        self.parts.append(frame.to_html(float_format=_number, border=0))

    def config_table(self, config: dict[str, Any]) -> None:
        """A flat mapping as a two-column table (nested values as compact JSON)."""
        rows = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in config.items()}
        self.table(pd.DataFrame({"value": pd.Series(rows, dtype=object)}))

    def pre(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def figure(self, fig, stem: str) -> None:
        if self.figures_dir:
            plots.save_all(fig, self.figures_dir, stem)
        self.parts.append(f'<img alt="{html.escape(stem)}" src="data:image/png;base64,{plots.png_base64(fig)}">')


def build_report(frame: pd.DataFrame, meta: dict[str, Any], *, normalize: str = "flops", bins: int = 10,
                 samples: int = 10_000, top: int = 10, seed: int = 0, figures_dir: str | None = None,
                 progress: bool = False, fit_sample: int | None = FIT_SAMPLE, processes: int = 1,
                 effect_ks: float | None = None, effect_gap: float | None = None) -> str:
    """The HTML text of the report of ``frame`` (one row per model) and its study metadata ``meta``. The linear
    fit covers at most ``fit_sample`` models per space (None: every model) and always the ``top`` best.

    With ``processes`` > 1 and enough models, ``processes`` - 1 worker processes take the comparison of the
    spaces (``verdict.compare_spaces``) first, then the linear fits, while this one computes the good ranges
    and draws the figures; this process then draws the comparison's figures, and searches the fits no worker
    has started. The page is the same either way. The verdict's power is for a KS distance ``effect_ks`` and a
    shift of ``effect_gap`` points (None: the planner's defaults)."""
    effects = {"effect_ks": effect_ks, "effect_gap": effect_gap}
    with ExitStack() as stack:
        if processes < 2 or len(frame) < SPREAD_FROM:
            pool, comparison = None, lambda: compare_spaces(frame, normalize, bins, seed, **effects)
        else:
            pool = stack.enter_context(worker_pool(processes - 1))
            needed = [column for column in dict.fromkeys(("space", "error", normalize)) if column in frame.columns]
            comparison = pool.submit(compare_spaces, frame[needed], normalize, bins, seed,
                                     **effects).result  # ahead of the fits
        fitting = stack.enter_context(EFits(frame, per_space=fit_sample, seed=seed, top=top, pool=pool))
        return _render(frame, meta, fitting, comparison, normalize=normalize, samples=samples, top=top, seed=seed,
                       figures_dir=figures_dir, progress=progress, fit_sample=fit_sample)


def _render(frame: pd.DataFrame, meta: dict[str, Any], fitting: EFits, comparison: Callable[[], SpaceComparison],
            *, normalize: str, samples: int, top: int, seed: int, figures_dir: str | None, progress: bool,
            fit_sample: int | None) -> str:
    """The page of ``build_report``: its linear fits from ``fitting``, and the comparison of its spaces from
    ``comparison()``, called once the sections that do not need it are drawn."""
    ranges = _Page(figures_dir)
    _good_ranges(ranges, frame, samples, seed)
    found = comparison()
    plain, normalised = found.plain, found.normalised

    page = _Page(figures_dir)
    name = str(meta.get("name", "results"))
    counts = frame.groupby("space").size()
    page.heading("Verdict")
    page.verdict(found.verdict, found.sure)
    page.text(f"{len(frame)} models: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    if meta.get("dataset") is not None or meta.get("proxy") is not None:
        page.heading("Data and proxy")
        setup = {"seed": meta.get("seed")}
        setup.update({f"data.{k}": v for k, v in (meta.get("dataset") or {}).items()})
        setup.update({f"proxy.{k}": v for k, v in (meta.get("proxy") or {}).items()})
        page.config_table(setup)

    page.heading("Error EDFs")
    page.figure(plots.edf_figure(plain), "edf")
    _edf_summary(page, plain)
    page.heading(f"Error EDFs at equal {normalize}")
    for line in found.binning_notes:
        page.text(line, note=normalised is None)
    if normalised is not None:
        page.parts.append('<div id="normalised-edf">')
        page.figure(plots.edf_figure(normalised), f"edf_{normalize}")
        page.parts.append("</div>")
        _edf_summary(page, normalised)
    page.figure(plots.random_search_figure(plain), "random_search")
    page.parts += ranges.parts

    page.heading("Quantized linear fit")
    fitted = fitting.fitted(progress)
    if fitted["e_fit"].notna().any():
        count = int(fitted["e_fit"].notna().sum())
        if count < fitted.attrs["known"]:
            page.text(f"e_fit of a random {fit_sample} models per space (seed {seed}) and the {top} lowest-error "
                      f"models: {count} of the {fitted.attrs['known']} with known widths, so the summary and the "
                      f"figure are estimates (`--fit-sample 0` fits every model).")
        summary = fitted.groupby("space")["e_fit"].describe(percentiles=[0.5])[["count", "min", "50%", "mean"]]
        page.table(summary.rename(columns={"50%": "median"}))
        page.figure(plots.e_fit_figure(fitted[fitted["e_fit"].notna()]), "e_fit")
        best = fitted[fitted["e_fit"].notna()].sort_values(["error", "flops"], kind="stable").head(top)
        models = [(f"{r['space']} {r['error']:.2f}%", block_widths(r), r["_fit"]) for _, r in best.iterrows()]
        page.text(f"per-block widths of the {len(models)} lowest-error models and their fits")
        page.figure(plots.block_widths_figure(models), "block_widths")
    else:
        page.text("no model has known block widths (no spec and no d1..d4/w1..w4 columns)", note=True)

    page.heading("Best model")
    try:
        config = best_config(frame, meta)
    except UserError as exc:
        page.text(f"no best RegNet config: {exc}", note=True)
    else:
        shown = ("space", "source", "depth", "w0", "wa", "wm", "group_width", "bottleneck_ratio", "se_ratio",
                 "widths", "depths", "group_widths", "flops", "params", "acts", "e_fit")
        table = {k: config[k] for k in shown if k in config}
        table.update({f"error ({k})": percent(v, 2) for k, v in config.get("errors", {}).items()})
        for key in ("flops", "params", "acts"):
            if isinstance(table.get(key), (int, float)):
                table[key] = compact(table[key])
        page.config_table(table)
        page.parts.append("<details><summary>best.json</summary>")
        page.pre(json.dumps(config, indent=2))
        page.parts.append("</details>")
    if meta.get("spec_toml"):
        page.heading("Study spec")
        page.pre(str(meta["spec_toml"]))
    title = html.escape(f"regnet-space report: {name}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{title}</h1>\n" + "\n".join(page.parts) + "\n</body></html>\n")


def _good_ranges(page: _Page, frame: pd.DataFrame, samples: int, seed: int) -> None:
    """The good-ranges section: per space, the bootstrap ranges of every parameter and complexity, and the
    errors against them; then the errors against flops and latency."""
    page.heading("Good ranges (bootstrap)")
    for space, models in frame.groupby("space"):
        columns = parameter_columns(models) + complexity_columns(models)
        ranges = good_ranges(models, columns, samples=samples, seed=seed)
        page.text(f"{space}: 95% interval and median of the best model of {samples} resamples of 25% of its "
                  f"{len(models)} models")
        page.table(ranges)
        page.figure(plots.error_vs_figure(models, columns, ranges, hue=None), f"error_vs_{space}")
    axes = [c for c in ("flops", "latency") if c in frame.columns and frame[c].notna().any()]
    page.figure(plots.error_vs_figure(frame, axes), "error_vs_complexity")


def _edf_summary(page: _Page, comparison: Comparison) -> None:
    rows = {name: {"n": e.n, "min error": percent(e.min_error), "mean error": percent(e.mean_error)}
            for name, e in comparison.edfs.items()}
    if comparison.dropped:
        for name, dropped in comparison.dropped.items():
            rows[name]["left out (outside the range)"] = dropped
    page.table(pd.DataFrame.from_dict(rows, orient="index"))
    if comparison.ks:
        page.text(comparison.holm_note())
        tests = pd.DataFrame(comparison.ks).set_index(["a", "b"])
        tests["mean_diff"] = [f"{d:+.2f}" for d in tests["mean_diff"]]
        tests["mean_diff_ci"] = [f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in tests["mean_diff_ci"]]
        for column in ("pvalue", "p_holm"):
            tests[column] = [f"{p:.3g}" for p in tests[column]]
        tests["statistic"] = [f"{d:.3f}" for d in tests["statistic"]]
        page.table(tests)


def _number(value: float) -> str:
    """Table cells: large numbers (complexity) compact (5.66M), the others to 4 significant digits."""
    if abs(value) >= 1e4:
        return compact(value)
    return f"{value:.4g}"
