"""Figures of an analysis: EDFs with bands, error vs each parameter with its bootstrap range, per-block widths.

Figures are built as ``matplotlib.figure.Figure`` objects (no pyplot global state, no display needed) and
saved as PNG or SVG by the file's suffix; ``save_all`` writes both. They are drawn with plain matplotlib calls
and fixed margins: a report draws a dozen figures, some of 10,000 points, and seaborn's set-up per plot and
constrained layout (which measures every label before placing the axes) took most of their time.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from ..errors import UserError
from ..models.summary import compact, percent
from ..userfiles import check_output, safe_name, write_output
from .edf import Comparison
from .linear_fit import LinearFit

FORMATS = (".png", ".svg")
# Tick labels of log axes as plain numbers (1M, 20M; powers of two in full: 64, 1024): matplotlib's are typeset
# as powers (10^6, 2^6), and the typesetting (mathtext) cost more than the rest of drawing their figure.
_PLAIN = FuncFormatter(lambda value, _: compact(value))
_PLAIN_BASE_2 = FuncFormatter(lambda value, _: f"{value:.12g}")
# PNG compression: zlib's fastest level; on a report's figures (mostly white) the files grow by about 6%.
_PNG = {"compress_level": 1}
_LOG_COLUMNS = {"flops", "params", "acts", "mac", "latency", "w0", "wa", "group_width"} | {f"w{i}" for i in range(1, 5)}


def edf_figure(comparison: Comparison, alpha: float = 0.05) -> Figure:
    """Each group's EDF (weighted for the normalised one: the steps of ``EDF.cdf``) with its (1 - alpha)
    simultaneous DKW band; the KS result in the legend. A long tail of errors (e.g. diverged models at chance)
    gets a clipped x-axis and a note in its label (where no legend can cover it), so the bulk of the
    distribution is not squashed into a corner."""
    fig, ax = _one_axes(6.4, 4.4)
    for color, (name, e) in zip(_colors(len(comparison.edfs)), comparison.edfs.items()):
        left_out = f", {comparison.dropped[name]} outside the range" if comparison.dropped else ""
        ax.step(np.r_[e.errors[0], e.errors], np.r_[0.0, e.cdf], where="post", color=color,
                label=f"{name}: n={e.n}{left_out}, min {percent(e.min_error)}, mean {percent(e.mean_error)}")
        lower, upper = e.band(alpha)
        ax.fill_between(e.errors, lower, upper, step="post", color=color, alpha=0.2, linewidth=0)
    lo, hi, clipped = _bulk_range(comparison)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("error (%)" + (f"; {clipped}" if clipped else ""))
    if comparison.binning is not None:
        b = comparison.binning
        ax.set_ylabel("normalised cumulative prob.")
        ax.set_title(f"EDF normalised by {comparison.normalize}: {b.bins} bins over "
                     f"{compact(b.lo)}..{compact(b.hi)}", fontsize=10)
    else:
        ax.set_ylabel("cumulative prob.")
        ax.set_title("error EDF", fontsize=10)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7.5, loc="best", title=_ks_legend_title(comparison), title_fontsize=7.5)
    return fig


def _bulk_range(comparison: Comparison) -> tuple[float, float, str]:
    """(lo, hi, note): the x-range showing every group's errors up to its 90th percentile. When the rest
    reaches further than half that range again (a long tail), the axis stops shortly after and the note
    says how far the tail goes; otherwise the axis shows everything and the note is empty."""
    lows = [e.min_error for e in comparison.edfs.values()]
    p90 = [float(e.errors[np.searchsorted(e.cdf, 0.9 - 1e-12)]) for e in comparison.edfs.values()]
    worst = max(float(e.errors[-1]) for e in comparison.edfs.values())
    lo, bulk = min(lows), max(p90)
    span = max(bulk - lo, 1e-6)
    if worst > bulk + 0.5 * span:
        hi = bulk + 0.25 * span
        return lo - 0.05 * span, hi, f"x-axis clipped at {percent(hi)}: the tail reaches {percent(worst)}"
    return lo - 0.05 * span, worst + 0.05 * span, ""


def _ks_legend_title(comparison: Comparison) -> str | None:
    """KS D, p and Holm-adjusted p of each pair (at most three pairs; the report's table has them all)."""
    lines = [f"KS {t['a']} vs {t['b']}: D={t['statistic']:.2f}, p={t['pvalue']:.2g}"
             + (f", Holm p={t['p_holm']:.2g}" if len(comparison.ks) > 1 else "") for t in comparison.ks[:3]]
    if len(comparison.ks) > 3:
        lines.append(f"(+{len(comparison.ks) - 3} more pairs)")
    return "\n".join(lines) or None


def random_search_figure(comparison: Comparison) -> Figure:
    """Expected best error of a random search of k models drawn from each group's EDF, against k."""
    fig, ax = _one_axes(6, 4.2, top=0.15)
    for name, e in comparison.edfs.items():
        ks = np.unique(np.round(np.geomspace(1, e.n, 64)))
        ax.plot(ks, e.expected_best(ks), label=name)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(_PLAIN_BASE_2)
    ax.set_xlabel("models tried at random (k)")
    ax.set_ylabel("expected best error (%)")
    ax.legend(fontsize=8)
    return fig


def error_vs_figure(frame: pd.DataFrame, columns: list[str], ranges: pd.DataFrame | None = None,
                    hue: str | None = "space") -> Figure:
    """Error against each column (a grid of up to 20 panels of up to 10,000 points each); the bootstrap's 95%
    good range shaded and its median dashed."""
    if not columns:
        raise UserError("nothing to plot: no parameter or complexity columns")
    cols = min(4, len(columns))
    rows = math.ceil(len(columns) / cols)
    width, height = 3.6 * cols, 3.0 * rows
    fig = _figure(width, height, left=0.7, right=0.15, bottom=0.5, top=0.15)
    fig.subplots_adjust(wspace=0.3, hspace=0.4)
    # Every panel plots the same models' errors: one error axis (shared ticks), labelled on the left column only.
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    axes[0, 0].yaxis.set_major_locator(MaxNLocator(5))
    for ax in axes[:, 0]:
        ax.set_ylabel("error")
    axes = axes.ravel()
    hue = hue if hue in frame.columns and frame[hue].nunique() > 1 else None
    groups = list(frame.groupby(hue, sort=False)) if hue else [(None, frame)]
    colors = _colors(len(groups))
    for ax, column in zip(axes, columns):
        for color, (name, data) in zip(colors, groups):
            data = data[data[column].notna()]
            ax.scatter(data[column], data["error"], s=10, alpha=0.6, linewidths=0, color=color,
                       label=None if name is None else str(name))
        if ranges is not None and column in ranges.index:
            r = ranges.loc[column]
            ax.axvspan(r["low"], r["high"], color="tab:green", alpha=0.15)
            ax.axvline(r["median"], color="tab:green", linestyle="--", linewidth=1)
        if column in _LOG_COLUMNS and (frame[column].dropna() > 0).all():
            _log_x(ax, frame[column].dropna())
        ax.set_xlabel(column)
    if hue:
        axes[0].legend(title=hue, fontsize=7, title_fontsize=7, markerscale=1.5)
    for ax in axes[len(columns):]:
        ax.set_visible(False)
    return fig


def _log_x(ax, values: pd.Series) -> None:
    """A log x-axis with plain labels (1M, 20M, 100M) at 1, 2 and 5 times each power of ten, or at the powers only
    over a wide span, and no minor ticks: matplotlib's default log ticks (minor ticks everywhere, labels typeset
    as 10^k) cost most of the time of drawing a grid of panels, and their minor labels overlap. A span under 3x
    stays linear (log and linear hardly differ there), with at most 4 plain labels."""
    lo, hi = values.min(), values.max()
    if hi < 3 * lo:
        ax.xaxis.set_major_locator(MaxNLocator(4))
    else:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if hi < 100 * lo else (1.0,)))
        ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(_PLAIN)


def block_widths_figure(models: list[tuple[str, list[int], LinearFit]]) -> Figure:
    """Per-block widths (log2 axis) of models with their quantized linear fits and the line w0 + wa*j."""
    fig, ax = _one_axes(6.5, 4.5, left=0.85)
    for color, (label, widths, fit) in zip(_colors(len(models)), models):
        j = np.arange(len(widths))
        ax.plot(j, widths, "o", color=color, markersize=3, label=f"{label}  e_fit={fit.e_fit:.3f}")
        ax.step(j, fit.widths, where="mid", color=color, linewidth=1)
        ax.plot(j, fit.w0 + fit.wa * j, color=color, linewidth=0.8, linestyle=":")
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(_PLAIN_BASE_2)
    ax.set_xlabel("block index j")
    ax.set_ylabel("width")
    ax.set_title("per-block widths (dots), quantized fit (steps), w0 + wa*j (dotted)", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def e_fit_figure(frame: pd.DataFrame) -> Figure:
    """Error against e_fit, one colour per space: good models should sit at low e_fit."""
    fig, ax = _one_axes(6, 4.2, top=0.15)
    groups = list(frame.groupby("space", sort=False))
    for color, (space, models) in zip(_colors(len(groups)), groups):
        ax.scatter(models["e_fit"], models["error"], s=12, alpha=0.7, linewidths=0, color=color, label=str(space))
    ax.legend(title="space", fontsize=8, title_fontsize=8)
    ax.set_xlabel("e_fit (mean |log predicted / observed width|)")
    ax.set_ylabel("error (%)")
    return fig


def _figure(width: float, height: float, *, left: float, right: float, bottom: float, top: float) -> Figure:
    """A figure of ``width`` x ``height`` inches whose subplots leave fixed margins, given in inches (room for
    tick labels, axis titles and a title)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height)
    return fig


def _one_axes(width: float, height: float, *, left: float = 0.75, top: float = 0.35):
    """A one-panel figure with fixed margins (``top`` leaves room for a title) and its axes."""
    fig = _figure(width, height, left=left, right=0.2, bottom=0.55, top=top)
    return fig, fig.add_subplot()


def _colors(n: int) -> list:
    """``n`` distinguishable colours: matplotlib's tab10 while it lasts, then evenly spaced viridis."""
    if n <= 10:
        return list(matplotlib.colormaps["tab10"].colors[:n])
    return list(matplotlib.colormaps["viridis"](np.linspace(0, 1, n)))


def check_figure_path(path: str | Path) -> Path:
    """A figure path that can be written: a known suffix, a folder that exists or can be created."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"{path}: figures are written as {' or '.join(FORMATS)}")
    return check_output(path, "figure")


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG or SVG, by the suffix of ``path`` (missing folders are created)."""
    path = check_figure_path(path)
    buffer = io.BytesIO()
    suffix = path.suffix.lower()[1:]
    fig.savefig(buffer, format=suffix, dpi=120, **({"pil_kwargs": _PNG} if suffix == "png" else {}))
    return write_output(path, buffer.getvalue(), "figure")


def save_all(fig: Figure, directory: str | Path, stem: str) -> list[Path]:
    """Write ``fig`` as both ``stem.png`` and ``stem.svg`` in ``directory``; ``stem`` may come from data (a
    space's name), so it is made a safe file name first."""
    return [save(fig, Path(directory) / f"{safe_name(stem)}{suffix}") for suffix in FORMATS]


def png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG, for embedding in a self-contained HTML page."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, pil_kwargs=_PNG)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
