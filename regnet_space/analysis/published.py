"""Populations published by others, read into the results table: pycls sweeps and the NDS data.

Both are JSON (never pickle); the format is recognised from the records. docs/imports.md has the mapping.

- **pycls sweep** (``ROOT/NAME/sweep.json``, written by ``tools/sweep_collect.py``): a list of jobs, each the
  parsed ``json_stats`` of one training log: ``{data_type: {metric: [value per epoch] | value}}`` with
  ``cfg`` (the full config), ``complexity`` ({flops, params, acts}), ``test_epoch`` and, in newer sweeps,
  ``test_ema_epoch``. error = min of ``test_ema_epoch.min_top1_err`` when present, else of
  ``test_epoch.min_top1_err`` (pycls's own ``error`` metric); a job whose last test epoch is not its last
  epoch is ``incomplete`` and left out. The space is the sweep's directory name (``NAME``). The network comes
  from ``cfg.ANYNET`` (sweep setup converts RegNet configs to AnyNet and keeps ``cfg.REGNET``); its RegNet
  parameters are kept when ``cfg.REGNET`` generates exactly those stages.
- **NDS** (one JSON file per design space, e.g. ``ResNeXt-A.json``): a list of models with ``min_test_top1``
  (the best-epoch test error, %), ``flops`` and ``params`` (counts); ``acts`` when present. The space is the
  file's stem.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from .. import userfiles
from ..errors import UserError
from ..models.export import PYCLS_BLOCKS, PYCLS_STEMS
from ..models.regnet import RegNetParams
from ..models.spec import AnyNetSpec, StageSpec, StemSpec

_STEMS = {v: k for k, v in PYCLS_STEMS.items()}
_BLOCKS = {v: k for k, v in PYCLS_BLOCKS.items()}


def read_published(path: str) -> pd.DataFrame:
    """The table of a pycls ``sweep.json`` or an NDS JSON file (recognised from its records)."""
    try:
        text = userfiles.read_text(Path(path), "results file")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid JSON (not UTF-8 text)") from None
    data = userfiles.parse_json(text, path)
    if not isinstance(data, list) or not data or not all(isinstance(job, dict) for job in data):
        raise UserError(f"{path}: expected a JSON list of models (a pycls sweep.json or an NDS file)")
    first = data[0]
    if "min_test_top1" in first:
        return pd.DataFrame([_nds_row(job, i, path) for i, job in enumerate(data)])
    if "cfg" in first and "complexity" in first:
        space = Path(path).parent.name if Path(path).name == "sweep.json" else Path(path).stem
        return pd.DataFrame([_sweep_row(job, i, path, space or "sweep") for i, job in enumerate(data)])
    raise UserError(f"{path}: neither a pycls sweep.json (records with \"cfg\" and \"complexity\") nor NDS data "
                    f"(records with \"min_test_top1\"); see docs/imports.md")


def _get(job: dict[str, Any], keys: str, i: int, path: str, default: Any = ...) -> Any:
    value: Any = job
    for key in keys.split("."):
        if not isinstance(value, dict) or key not in value:
            if default is not ...:
                return default
            raise UserError(f"{path}: model {i}: missing {keys!r}")
        value = value[key]
    return value


def _number(value: Any, keys: str, i: int, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{path}: model {i}: {keys}={value!r} is not a finite number")
    return float(value)


def _nds_row(job: dict[str, Any], i: int, path: str) -> dict[str, Any]:
    row = {"space": Path(path).stem, "model_index": i}
    row["error"] = _number(_get(job, "min_test_top1", i, path), "min_test_top1", i, path)
    for key in ("flops", "params"):
        row[key] = _number(_get(job, key, i, path), key, i, path)
    if "acts" in job:
        row["acts"] = _number(job["acts"], "acts", i, path)
    return row


def _min_error(stats: Any, keys: str, i: int, path: str) -> float:
    values = stats.get("min_top1_err") if isinstance(stats, dict) else None
    if not isinstance(values, list) or not values:
        raise UserError(f"{path}: model {i}: {keys}.min_top1_err is not a non-empty list")
    return min(_number(v, f"{keys}.min_top1_err", i, path) for v in values)


def _table(value: Any, keys: str, i: int, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{path}: model {i}: {keys} is {type(value).__name__}, not an object")
    return value


def _last(stats: dict[str, Any], key: str, default: float, keys: str, i: int, path: str) -> float:
    """The last entry of a pycls per-epoch list (``epoch_ind``, ``epoch_max``)."""
    values = stats.get(key, [default])
    if not isinstance(values, list) or not values:
        raise UserError(f"{path}: model {i}: {keys}.{key}={values!r} is not a non-empty list")
    return _number(values[-1], f"{keys}.{key}", i, path)


def _sweep_row(job: dict[str, Any], i: int, path: str, space: str) -> dict[str, Any]:
    cfg = _table(_get(job, "cfg", i, path), "cfg", i, path)
    for section in ("MODEL", "ANYNET", "REGNET", "TRAIN"):
        if section in cfg:
            _table(cfg[section], f"cfg.{section}", i, path)
    row: dict[str, Any] = {"space": space, "model_index": i}
    for key in ("flops", "params", "acts"):
        row[key] = _number(_get(job, f"complexity.{key}", i, path), f"complexity.{key}", i, path)
    stats_key = "test_ema_epoch" if "test_ema_epoch" in job else "test_epoch"
    stats = job.get(stats_key)
    if not isinstance(stats, dict):
        row.update(status="incomplete", error=None)  # never tested: no error to report
        return row
    row["error"] = _min_error(stats, stats_key, i, path)
    done = _last(stats, "epoch_ind", 0, stats_key, i, path) == _last(stats, "epoch_max", 1, stats_key, i, path)
    row["status"] = "complete" if done else "incomplete"
    spec = _spec_of_cfg(cfg)
    if spec is not None:
        row["spec"] = spec.to_json()
        if len(spec.stages) == 4:
            for s, stage in enumerate(spec.stages, 1):
                row.update({f"d{s}": stage.depth, f"w{s}": stage.width, f"b{s}": stage.bottleneck_ratio,
                            f"g{s}": stage.group_width})
        regnet = _regnet_of_cfg(cfg, spec)
        if regnet is not None:
            row.update({k: v for k, v in regnet.to_dict().items() if k not in ("stem_width", "q")})
    return row


def _spec_of_cfg(cfg: dict[str, Any]) -> AnyNetSpec | None:
    """The AnyNet a pycls config builds, or None if it is not one we can build (other model types)."""
    an = cfg.get("ANYNET")
    model = cfg.get("MODEL", {})
    if not isinstance(an, dict) or model.get("TYPE") not in ("anynet", "regnet") or not an.get("DEPTHS"):
        return None
    try:
        block = _BLOCKS[an["BLOCK_TYPE"]]
        n = len(an["DEPTHS"])
        bot_muls = an.get("BOT_MULS") or [1.0] * n
        group_ws = an.get("GROUP_WS") or [0] * n
        se = float(an.get("SE_R", 0.25)) if an.get("SE_ON") else 0.0
        stages = []
        for d, w, s, bm, g in zip(an["DEPTHS"], an["WIDTHS"], an["STRIDES"], bot_muls, group_ws):
            bottleneck = block == "res_bottleneck"
            stages.append(StageSpec(depth=int(d), width=int(w), stride=int(s),
                                    bottleneck_ratio=1 / float(bm) if bottleneck else 1.0,
                                    group_width=int(g) if bottleneck else 0, block=block,
                                    se_ratio=se if block != "vanilla" else 0.0))
        train = cfg.get("TRAIN", {})
        return AnyNetSpec(stages=tuple(stages), stem=StemSpec(_STEMS[an["STEM_TYPE"]], int(an["STEM_W"])),
                          resolution=int(train.get("IM_SIZE", 224)), in_channels=3,
                          num_classes=int(model.get("NUM_CLASSES", 1000)))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, UserError):
        return None


def _regnet_of_cfg(cfg: dict[str, Any], spec: AnyNetSpec) -> RegNetParams | None:
    """The config's REGNET.* parameters if they generate exactly ``spec``'s stages (a converted RegNet)."""
    r = cfg.get("REGNET")
    if not isinstance(r, dict):
        return None
    try:
        params = RegNetParams(depth=int(r["DEPTH"]), w0=float(r["W0"]), wa=float(r["WA"]), wm=float(r["WM"]),
                              group_width=int(r["GROUP_W"]), bottleneck_ratio=1 / float(r.get("BOT_MUL", 1.0)),
                              se_ratio=float(r.get("SE_R", 0.25)) if r.get("SE_ON") else 0.0,
                              stem_width=int(r.get("STEM_W", 32)))
        widths, depths, groups = params.stages()
    except (KeyError, TypeError, ValueError, ZeroDivisionError, UserError):
        return None
    return params if (widths, depths) == (spec.widths, spec.depths) else None

