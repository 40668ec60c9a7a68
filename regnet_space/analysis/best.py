"""The best model of a study as a RegNet config (``best.json``) that ``describe``/``train``/``build_model`` rebuild.

The winner is the lowest validation error (ties: fewer flops). A RegNet winner is emitted as its own parameters;
an AnyNet winner as its nearest RegNet by the quantized linear fit, with e_fit saying how near. The widths and
complexity stored are those of the emitted config at the study's data size, so ``describe best.json`` reproduces
them; the model as measured is kept under ``measured``.
"""

from __future__ import annotations

import json
import numbers
from collections import Counter
from typing import Any

import pandas as pd

from ..builder import complexity
from ..errors import UserError
from ..regnet import RegNetParams
from ..spec import AnyNetSpec
from .linear_fit import fit_quantized_linear
from .table import REGNET_PARAMETERS, row_spec


def best_row(frame: pd.DataFrame, space: str | None = None) -> pd.Series:
    """The lowest-error model (ties: lower flops), optionally within one space."""
    if space is not None:
        spaces = sorted(frame["space"].unique())
        frame = frame[frame["space"] == space]
        if frame.empty:
            raise UserError(f"--space {space}: no models of that space (spaces: {', '.join(spaces)})")
    return frame.sort_values(["error", "flops"], kind="stable").iloc[0]


def _depth_weighted_mode(values: list[Any], depths: list[int]) -> Any:
    """The value most blocks have (ties: the earlier stage's)."""
    counts: Counter = Counter()
    for value, depth in zip(values, depths):
        counts[value] += depth
    return max(counts, key=lambda v: (counts[v], -values.index(v)))


def nearest_regnet(spec: AnyNetSpec) -> tuple[RegNetParams, float]:
    """The RegNet closest to an AnyNet spec: (w0, wa, wm) by the quantized linear fit of its block widths,
    b, g and SE ratio as most of its blocks have them; and the fit's e_fit."""
    fit = fit_quantized_linear(spec.block_widths())
    depths = spec.depths
    ratio = float(_depth_weighted_mode(spec.bottleneck_ratios, depths))
    group_width = int(_depth_weighted_mode(spec.group_widths, depths))
    if group_width == 0:  # one group: a group width as wide as the widest bottleneck keeps it ungrouped
        group_width = max(int(round(w / ratio)) for w in fit.widths)
    se_ratio = float(_depth_weighted_mode([s.se_ratio for s in spec.stages], depths))
    params = RegNetParams(depth=fit.depth, w0=fit.w0, wa=fit.wa, wm=fit.wm, group_width=group_width,
                          bottleneck_ratio=ratio, se_ratio=se_ratio, stem_width=spec.stem.width)
    return params, fit.e_fit


def _regnet_of_row(row: pd.Series, spec: AnyNetSpec | None) -> RegNetParams:
    values = {k: row[k] for k in REGNET_PARAMETERS if k in row.index and pd.notna(row[k])}
    if spec is not None:
        values.setdefault("bottleneck_ratio", spec.stages[0].bottleneck_ratio)
        values.setdefault("se_ratio", spec.stages[0].se_ratio)
        values.setdefault("group_width", spec.stages[0].group_width)
        values["stem_width"] = spec.stem.width
    if "group_width" not in values:
        raise UserError("the best model has RegNet columns but no group_width (and no spec to read it from)")
    integers = ("depth", "w0", "group_width", "stem_width")
    return RegNetParams(**{k: int(v) if k in integers else float(v) for k, v in values.items()})


def best_config(frame: pd.DataFrame, meta: dict[str, Any], space: str | None = None) -> dict[str, Any]:
    """The best model of ``frame`` as a best.json document (see the module docstring)."""
    row = best_row(frame, space)
    spec = row_spec(row)
    is_regnet = all(k in row.index and pd.notna(row[k]) for k in ("depth", "w0", "wa", "wm"))
    if is_regnet:
        params, e_fit = _regnet_of_row(row, spec), None
    elif spec is not None:
        params, e_fit = nearest_regnet(spec)
    else:
        raise UserError(f"the best model (space {row['space']!r}) has neither RegNet columns "
                        f"(depth, w0, wa, wm) nor a spec to fit a RegNet to")
    size = {"resolution": 224, "in_channels": 3, "num_classes": 1000}
    if spec is not None:
        size = {"resolution": spec.resolution, "in_channels": spec.in_channels, "num_classes": spec.num_classes}
    config_spec = params.to_spec(**size)
    cx = complexity(config_spec)
    measured = {k: int(row[k]) for k in ("flops", "params", "acts") if k in row.index and pd.notna(row[k])}
    if spec is not None:
        measured.update(widths=spec.widths, depths=spec.depths, group_widths=spec.group_widths,
                        spec=spec.to_dict())
    errors = {"val": float(row["error"])}
    errors.update({c: float(row[c]) for c in row.index if c.endswith("_error") and c != "val_error"
                   and isinstance(row[c], numbers.Real) and not isinstance(row[c], bool) and pd.notna(row[c])})
    out: dict[str, Any] = {
        **{k: v for k, v in params.to_dict().items() if k != "q"},
        **size,
        "widths": config_spec.widths, "depths": config_spec.depths, "group_widths": config_spec.group_widths,
        "flops": cx.flops, "params": cx.params, "acts": cx.acts, "mac": cx.mac,
        "errors": errors,
        "space": str(row["space"]),
        "source": "regnet" if is_regnet else "anynet: nearest RegNet by the quantized linear fit",
        "e_fit": e_fit,
        "study": meta.get("name"),
        "data": meta.get("dataset"),
        "proxy": meta.get("proxy"),
        "measured": measured,
        "matches_measured": config_spec == spec,  # False for an AnyNet winner or a non-RegNet stem/block
    }
    if "model_index" in row.index and pd.notna(row["model_index"]):
        out["model_index"] = int(row["model_index"])
    return json.loads(json.dumps(out, default=_plain))


def _plain(value: Any) -> Any:
    """numpy scalars and other stragglers from pandas rows, as JSON values."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
