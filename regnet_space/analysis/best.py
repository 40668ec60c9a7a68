"""The best measured RegNet of a study as a config (``best.json``) that ``describe``/``train``/``build_model`` rebuild.

"Best" means the lowest validation error (ties: fewer flops) among the models that *are* RegNets:
- a model of a RegNet space, emitted as its own parameters: its errors are its own, measured;
- an AnyNet model whose per-block widths a RegNet reproduces closely (e_fit <= ``MAX_E_FIT``) with the same
  number of stages, X blocks and the same input form: emitted as that RegNet. The emitted network is not the
  trained one, so its errors are not known: the source model's errors are kept under ``measured`` and never
  under ``errors``; ``regnet-space best --verify`` trains the emitted config and reports its own error.
Measured evidence of the exact config wins: when the table holds a model with the emitted config's very spec
(the config itself, or an identical model of another space), its measurement is the config's error, for the
ranking too (a fit labelled with its source's 15.5% whose config was measured at 28.6% ranks at 28.6%).
Diverged models (flagged ``diverged``, or an error within 2% of chance, which is what a study records for them)
and models without an error are never candidates, with a warning; so is a config measured diverged. The best
*measured* RegNet is named under ``best_measured`` whenever the emitted config is a fit nobody trained.
The lowest-error model of the whole study is named under ``study_best`` when it is not the one emitted (an
AnyNet model far from every RegNet says something about the space, but it is no RegNet config).
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import UserError
from ..models.complexity import complexity
from ..models.regnet import RegNetParams
from ..models.spec import AnyNetSpec
from .linear_fit import fit_quantized_linear
from .table import REGNET_PARAMETERS, row_spec, unbuildable

# A model whose error is at least this share of chance (100 * (1 - 1 / classes)) learnt nothing: a study records
# diverged models at chance, and a model that trained to within 2% of guessing says nothing about its design.
NEAR_CHANCE = 0.98

# An AnyNet model counts as a RegNet when the quantized linear fit reproduces its block widths within 5% on
# average (mean |log(predicted / observed)| <= 0.05): about one quantization step of 8 channels at width 160.
MAX_E_FIT = 0.05


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
                          bottleneck_ratio=ratio, se_ratio=se_ratio, stem_width=spec.stem.width,
                          stem_type=spec.stem.type, first_stride=spec.stages[0].stride)
    return params, fit.e_fit


def _regnet_of_row(row: pd.Series, spec: AnyNetSpec | None) -> RegNetParams:
    values = {k: row[k] for k in REGNET_PARAMETERS if k in row.index and pd.notna(row[k])}
    if spec is not None:
        values.setdefault("bottleneck_ratio", spec.stages[0].bottleneck_ratio)
        values.setdefault("se_ratio", spec.stages[0].se_ratio)
        values.setdefault("group_width", spec.stages[0].group_width)
        values.update(stem_width=spec.stem.width, stem_type=spec.stem.type, first_stride=spec.stages[0].stride)
    if "group_width" not in values:
        raise UserError("the best model has RegNet columns but no group_width (and no spec to read it from)")
    integers = ("depth", "w0", "group_width", "stem_width", "first_stride")
    return RegNetParams(**{k: v if k == "stem_type" else int(v) if k in integers else float(v)
                           for k, v in values.items()})


@dataclass(frozen=True)
class Candidate:
    """A model of the table that is a RegNet: the config it is emitted as and how it relates to the model."""

    row: pd.Series
    params: RegNetParams
    e_fit: float | None  # None: a model of a RegNet space (the config is the model)
    why: str


def as_regnet(row: pd.Series) -> Candidate | None:
    """The model of ``row`` as a RegNet config, or None if it is not one (see the module docstring)."""
    spec = row_spec(row)
    if all(k in row.index and pd.notna(row[k]) for k in ("depth", "w0", "wa", "wm")):
        return Candidate(row, _regnet_of_row(row, spec), None, "a model of a RegNet space")
    if spec is None or not _convertible(spec):
        return None
    params, fit = nearest_regnet(spec)
    if fit > MAX_E_FIT or len(params.stages()[0]) != len(spec.stages):
        return None
    return Candidate(row, params, fit, f"an AnyNet model whose block widths a RegNet reproduces with e_fit "
                                        f"{fit:.3f} <= {MAX_E_FIT} and the same {len(spec.stages)} stages")


def _convertible(spec: AnyNetSpec) -> bool:
    """X blocks with default options and RegNet's strides (first 1 or 2, then 2): what a RegNet config builds."""
    plain = RegNetParams(depth=1, w0=8, wa=8, wm=2, group_width=1).to_spec().stages[0]
    options = [f for f in dataclasses.fields(plain) if f.name not in
               ("depth", "width", "stride", "bottleneck_ratio", "group_width", "se_ratio")]
    return (all(s.stride == 2 for s in spec.stages[1:]) and spec.head == AnyNetSpec(stages=(plain,)).head
            and all(getattr(s, f.name) == getattr(plain, f.name) for s in spec.stages for f in options))


class _Table:
    """The rows ``best_config`` ranks, with what it asks of them computed on demand: parsing every spec of a
    10,000-model table takes seconds, and only near-chance rows and cost-identical twins need theirs."""

    def __init__(self, frame: pd.DataFrame, meta: dict[str, Any] | None):
        self.notes: list[str] = []
        missing = frame["error"].isna()
        if missing.any():
            self.notes.append(f"{int(missing.sum())} models have no error (NaN) and were dropped")
            frame = frame[~missing]
        self.frame = frame
        self._specs: dict[Any, AnyNetSpec | None] = {}
        dataset = (meta or {}).get("dataset")
        default = dataset.get("num_classes") if isinstance(dataset, dict) else None
        # Chance is at least 50% (2 classes): only rows above NEAR_CHANCE of that can have diverged by error.
        suspect = frame.index[frame["error"] >= NEAR_CHANCE * 50.0]
        classes = pd.Series([getattr(self.spec(i), "num_classes", None) or default for i in suspect], index=suspect,
                            dtype=float)
        self.diverged = pd.Series(False, index=frame.index)
        self.diverged[suspect] = (frame.loc[suspect, "error"] >= NEAR_CHANCE * 100.0 * (1.0 - 1.0 / classes)).fillna(
            False)
        if "diverged" in frame.columns:
            self.diverged |= frame["diverged"].fillna(False).astype(bool)
        self._by_cost = frame.groupby(["flops", "params"]).groups if "spec" in frame.columns else {}

    def spec(self, index: Any) -> AnyNetSpec | None:
        if index not in self._specs:
            self._specs[index] = row_spec(self.frame.loc[index])
        return self._specs[index]

    def twins(self, spec: AnyNetSpec) -> list[tuple[pd.Series, bool]]:
        """(row, diverged) of every model whose spec is ``spec`` (same flops and params first: cheap)."""
        cx = complexity(spec)
        return [(self.frame.loc[i], bool(self.diverged[i])) for i in self._by_cost.get((cx.flops, cx.params), [])
                if self.spec(i) == spec]


def best_config(frame: pd.DataFrame, meta: dict[str, Any], space: str | None = None) -> dict[str, Any]:
    """The best measured RegNet of ``frame`` as a best.json document (see the module docstring)."""
    rows = _Table(frame, meta)
    frame, diverged, notes = rows.frame, rows.diverged, rows.notes
    if frame.empty:
        raise UserError("no model has an error")
    ranked = frame if space is None else frame[frame["space"] == space]
    if space is not None and ranked.empty:
        best_row(frame, space)  # names the spaces
    ranked = ranked.sort_values(["error", "flops"], kind="stable")
    size = {"resolution": 224, "in_channels": 3, "num_classes": 1000}
    chosen: tuple[float, Candidate, dict, list] | None = None
    best_measured: tuple[float, Candidate] | None = None
    regnet_columns = [k for k in ("depth", "w0", "wa", "wm") if k in frame.columns]
    for index, row in ranked.iterrows():
        if chosen is not None and row["error"] > chosen[0]:
            if best_measured is not None:
                break  # every later candidate's evidence is a worse measurement (its own or an identical model's)
            if len(regnet_columns) < 4 or row[regnet_columns].isna().any():
                continue  # past the choice, only the best measured RegNet is sought: RegNet-space rows, no fits
        if diverged[index]:
            continue
        candidate = as_regnet(row)
        if candidate is None:
            continue
        spec = rows.spec(index)
        shape = size if spec is None else {"resolution": spec.resolution, "in_channels": spec.in_channels,
                                          "num_classes": spec.num_classes}
        config_spec = candidate.params.to_spec(**shape)
        same = rows.twins(config_spec)
        if spec is None and candidate.e_fit is None:
            same = [(row, False)]  # a RegNet-space row without a spec: the row is its config's measurement
        if any(failed for _, failed in same):
            notes.append(f"the RegNet config of {row['space']} model {_name(row)} (error {row['error']:.2f}%) "
                         f"diverged in {sum(f for _, f in same)} of its {len(same)} measurements: not a candidate")
            continue
        evidence = float(pd.Series([r["error"] for r, _ in same]).mean()) if same else float(row["error"])
        if same and (best_measured is None or evidence < best_measured[0]):
            best_measured = (evidence, candidate)
        if chosen is None or evidence < chosen[0]:
            chosen = (evidence, candidate, shape, [r for r, _ in same])
    failed = ranked[diverged[ranked.index]]
    if not failed.empty:
        first = failed.iloc[0]
        ahead = chosen is not None and first["error"] < chosen[0]
        notes.append(f"{len(failed)} models diverged (flagged, or error within {1 - NEAR_CHANCE:.0%} of chance) and "
                     f"are never best; the lowest-error one: {first['space']} model {_name(first)} at "
                     f"{first['error']:.2f}%" + (", which would have ranked first" if ahead else ""))
    if chosen is None:
        why = unbuildable(ranked)
        raise UserError(f"no model{'' if space is None else f' of {space}'} is a RegNet that trained: none is from "
                        f"a RegNet space or within e_fit {MAX_E_FIT} of one with the same stages, or every such "
                        f"model diverged (try a RegNet space)" + (f"; {why}" if why else ""))
    evidence, candidate, size, same = chosen
    row, params = candidate.row, candidate.params
    spec = row_spec(row)
    config_spec = params.to_spec(**size)
    cx = complexity(config_spec)
    measured = {"space": str(row["space"]), "errors": _errors(row),
                **{k: int(row[k]) for k in ("flops", "params", "acts") if k in row.index and pd.notna(row[k])}}
    if "model_index" in row.index and pd.notna(row["model_index"]):
        measured["model_index"] = int(row["model_index"])
    if spec is not None:
        measured.update(widths=spec.widths, depths=spec.depths, group_widths=spec.group_widths,
                        spec=spec.to_dict())
    trained = bool(same)
    own_errors = {"val": evidence} if len(same) > 1 or (same and same[0].name != row.name) else measured["errors"]
    out: dict[str, Any] = {
        **{k: v for k, v in params.to_dict().items() if k != "q"},
        **size,
        "widths": config_spec.widths, "depths": config_spec.depths, "group_widths": config_spec.group_widths,
        "flops": cx.flops, "params": cx.params, "acts": cx.acts, "mac": cx.mac,
        # Errors belong to the network that was trained: only when the config is that network (or its twin).
        **({"errors": own_errors} if trained else {}),
        "space": str(row["space"]),
        "source": "regnet" if candidate.e_fit is None else "anynet: its RegNet by the quantized linear fit",
        "why": candidate.why,
        "e_fit": candidate.e_fit,
        "matches_measured": trained,
        "measured": measured,
        "study": meta.get("name"),
        "data": meta.get("dataset"),
        "proxy": meta.get("proxy"),
    }
    if trained:
        out["measurements"] = [{"space": str(r["space"]), "error": float(r["error"]), "model_index": _name(r)}
                               for r in same]
    if "model_index" in measured:
        out["model_index"] = measured["model_index"]
    if not trained:
        notes.append("the emitted config is a fit nobody trained: its error is unknown (--verify trains it)"
                     + ("" if best_measured else "; no RegNet config of the table was measured"))
        if best_measured is not None:
            error, other = best_measured
            out["best_measured"] = {"space": str(other.row["space"]), "error": error,
                                    "model_index": _name(other.row), "source": "regnet" if other.e_fit is None
                                    else "anynet: its RegNet by the quantized linear fit",
                                    **{k: v for k, v in other.params.to_dict().items() if k != "q"}}
    overall = ranked.loc[~diverged[ranked.index]].iloc[0] if (~diverged[ranked.index]).any() else None
    if overall is not None and overall.name != row.name:
        out["study_best"] = {"space": str(overall["space"]), "error": float(overall["error"]),
                             "flops": int(overall["flops"]), "is_regnet": as_regnet(overall) is not None,
                             **({"model_index": int(overall["model_index"])} if "model_index" in overall.index
                                and pd.notna(overall["model_index"]) else {})}
    out["warnings"] = notes
    for note in notes:
        warnings.warn(note, RuntimeWarning, stacklevel=2)
    return json.loads(json.dumps(out, default=_plain))


def _name(row: pd.Series) -> int | str | None:
    """The model's index in its study, else its row label."""
    if "model_index" in row.index and pd.notna(row["model_index"]):
        return int(row["model_index"])
    return row.name if isinstance(row.name, (int, str)) else None


def _errors(row: pd.Series) -> dict[str, float]:
    errors = {"val": float(row["error"])}
    errors.update({c: float(row[c]) for c in row.index if c.endswith("_error") and c != "val_error"
                   and isinstance(row[c], numbers.Real) and not isinstance(row[c], bool) and pd.notna(row[c])})
    return errors


def _plain(value: Any) -> Any:
    """numpy scalars and other stragglers from pandas rows, as JSON values."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
