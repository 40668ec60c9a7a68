"""One self-contained HTML page for a study: EDFs, KS tests, good ranges, linear fits, the best config, the spec.

Images are embedded as base64 PNGs and there are no scripts or external links, so the file opens anywhere
with no server. ``figures_dir`` also writes every figure as PNG and SVG.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..errors import UserError
from . import plots
from .best import best_config
from .bootstrap import good_ranges
from .edf import compare
from .linear_fit import fit_quantized_linear
from .table import block_widths, complexity_columns, parameter_columns

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 1.6em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
pre { background: #f4f4f4; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #a40; }
"""


def with_e_fit(frame: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
    """``frame`` plus ``e_fit`` (and the fit) for every model whose block widths are known."""
    fits = []
    for _, row in tqdm(frame.iterrows(), total=len(frame), desc="linear fits", unit="model", disable=not progress):
        widths = block_widths(row)
        fits.append(None if widths is None else fit_quantized_linear(widths))
    out = frame.copy()
    out["e_fit"] = [np.nan if f is None else f.e_fit for f in fits]
    out["_fit"] = fits
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

    def table(self, frame: pd.DataFrame) -> None:
        self.parts.append(frame.to_html(float_format=lambda v: f"{v:.4g}", border=0))

    def pre(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def figure(self, fig, stem: str) -> None:
        if self.figures_dir:
            plots.save_all(fig, self.figures_dir, stem)
        self.parts.append(f'<img alt="{html.escape(stem)}" src="data:image/png;base64,{plots.png_base64(fig)}">')


def build_report(frame: pd.DataFrame, meta: dict[str, Any], *, normalize: str = "flops", bins: int = 10,
                 samples: int = 10_000, top: int = 10, seed: int = 0, figures_dir: str | None = None,
                 progress: bool = False) -> str:
    """The HTML text of the report of ``frame`` (one row per model) and its study metadata ``meta``."""
    page = _Page(figures_dir)
    name = str(meta.get("name", "results"))
    counts = frame.groupby("space").size()
    page.text(f"{len(frame)} models: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    if meta.get("dataset") is not None or meta.get("proxy") is not None:
        page.text(f"data: {json.dumps(meta.get('dataset'))}; proxy: {json.dumps(meta.get('proxy'))}; "
                  f"seed: {meta.get('seed')}")

    page.heading("Error EDFs")
    plain = compare(frame, seed=seed)
    page.figure(plots.edf_figure(plain), "edf")
    _edf_summary(page, plain)
    try:
        normalised = compare(frame, normalize=normalize, bins=bins, seed=seed)
        page.figure(plots.edf_figure(normalised), f"edf_{normalize}")
        _edf_summary(page, normalised)
    except UserError as exc:
        page.text(f"no EDF normalised by {normalize}: {exc}", note=True)
    page.figure(plots.random_search_figure(plain), "random_search")

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

    page.heading("Quantized linear fit")
    fitted = with_e_fit(frame, progress)
    if fitted["e_fit"].notna().any():
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
        page.pre(json.dumps(best_config(frame, meta), indent=2))
    except UserError as exc:
        page.text(f"no best RegNet config: {exc}", note=True)
    if meta.get("spec_toml"):
        page.heading("Study spec")
        page.pre(str(meta["spec_toml"]))
    title = html.escape(f"regnet-space report: {name}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{title}</h1>\n" + "\n".join(page.parts) + "\n</body></html>\n")


def _edf_summary(page: _Page, comparison) -> None:
    rows = {name: {"n": e.n, "min error": e.min_error, "mean error": e.mean_error}
            for name, e in comparison.edfs.items()}
    if comparison.dropped:
        for name, dropped in comparison.dropped.items():
            rows[name]["dropped"] = dropped
    page.table(pd.DataFrame.from_dict(rows, orient="index"))
    if comparison.ks:
        page.text(comparison.holm_note())
        tests = pd.DataFrame(comparison.ks).set_index(["a", "b"])
        tests["mean_diff_ci"] = [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in tests["mean_diff_ci"]]
        page.table(tests)

