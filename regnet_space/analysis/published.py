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
from ..models.complexity import complexity
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
    if isinstance(data, dict) and data and all(isinstance(part, list) for part in data.values()):
        data = [model for part in data.values() for model in part]  # NDS: {"top": [...], "mid": [...]}
    if not isinstance(data, list) or not data or not all(isinstance(job, dict) for job in data):
        raise UserError(f"{path}: expected a JSON list of models, or NDS's {{\"top\": [...], \"mid\": [...]}} "
                        f"(a pycls sweep.json or an NDS file)")
    first = data[0]
    if "min_test_top1" in first:
        return pd.DataFrame([_nds_row(job, i, path) for i, job in enumerate(data)])
    if "cfg" in first and "complexity" in first:
        space = Path(path).parent.name if Path(path).name == "sweep.json" else Path(path).stem
        # pycls's load_sweep keeps only the jobs that have EMA test stats; a sweep from a pycls without EMA
        # (no job has them) is read from its test stats instead of being left empty.
        with_ema = any("test_ema_epoch" in job for job in data)
        return pd.DataFrame([_sweep_row(job, i, path, space, with_ema) for i, job in enumerate(data)])
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
    spec, why = _nds_spec(job.get("net"), Path(path).stem, row["flops"], row["params"])
    if spec is None:
        row["no_spec"] = why
    else:
        _add_spec(row, spec)
    return row


# NDS blocks by their names in the release (pycls's of 2019, plus the plain double-conv block, pycls's vanilla).
_NDS_BLOCKS = {**_BLOCKS, "double_plain_block": "vanilla"}


def _nds_spec(net: Any, space: str, flops: float, params: float) -> tuple[AnyNetSpec | None, str]:
    """The AnyNet an NDS ``net`` record describes, or (None, why not).

    A record holds the stages (``block_type``, ``ds``, ``ws``, ``ss``, ``bot_muls``, ``num_gs``: pycls's group
    *count* of 2019, so g = bottleneck width / num_gs) but not the stem or input: the release's CIFAR spaces use
    pycls's CIFAR stem (3x3 stride 1, 16 channels) at 32 px and 10 classes, its ImageNet spaces (``*_in``) the
    ResNet stem of 64 at 224 px and 1000 classes. Because that part is inferred, the mapping is kept only when our
    count of the network equals the record's own ``flops`` and ``params``; otherwise the network is not guessed."""
    if not isinstance(net, dict):
        return None, "the record has no \"net\" config"
    if "genotype" in net:
        return None, "a cell-based network (DARTS-style genotype), not an AnyNet of stages"
    try:
        block = _NDS_BLOCKS[net["block_type"]]
        n = len(net["ds"])
        bottleneck = block == "res_bottleneck"
        bot_muls = net.get("bot_muls") or [1.0] * n
        num_gs = net.get("num_gs") or [1] * n
        stages = []
        for d, w, s, bm, ng in zip(net["ds"], net["ws"], net["ss"], bot_muls, num_gs, strict=True):
            b = 1 / float(bm) if bottleneck else 1.0
            stages.append(StageSpec(depth=int(d), width=int(w), stride=int(s), bottleneck_ratio=b,
                                    group_width=round(int(w) / b) // int(ng) if bottleneck and int(ng) > 1 else 0,
                                    block=block))
        imagenet = space.endswith("_in")
        spec = AnyNetSpec(stages=tuple(stages), stem=StemSpec("resnet", 64) if imagenet else StemSpec("cifar", 16),
                          resolution=224 if imagenet else 32, num_classes=1000 if imagenet else 10)
    except KeyError as exc:
        return None, f"its \"net\" config has no {exc.args[0]!r} (or an unknown block type)"
    except (TypeError, ValueError, ZeroDivisionError, UserError) as exc:
        return None, f"its \"net\" config is not a network we can build ({str(exc)[:120]})"
    counted = complexity(spec)
    if (counted.flops, counted.params) != (flops, params):  # counts, exactly (JSON may hold them as floats)
        return None, (f"its \"net\" config, with the {'ResNet' if imagenet else 'CIFAR'} stem the release's "
                      f"{'ImageNet' if imagenet else 'CIFAR'} spaces use, counts {counted.flops:,} flops and "
                      f"{counted.params:,} params, not the record's {flops:,.0f} and {params:,.0f}")
    return spec, ""


def _add_spec(row: dict[str, Any], spec: AnyNetSpec) -> None:
    """The spec and its per-stage columns (d1.., w1.., b1.., g1..) that refine and the report read."""
    row["spec"] = spec.to_json()
    for s, stage in enumerate(spec.stages, 1):
        row.update({f"d{s}": stage.depth, f"w{s}": stage.width, f"b{s}": stage.bottleneck_ratio,
                    f"g{s}": stage.group_width})


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


def _sweep_row(job: dict[str, Any], i: int, path: str, space: str, with_ema: bool) -> dict[str, Any]:
    cfg = _table(_get(job, "cfg", i, path), "cfg", i, path)
    for section in ("MODEL", "ANYNET", "REGNET", "TRAIN"):
        if section in cfg:
            _table(cfg[section], f"cfg.{section}", i, path)
    row: dict[str, Any] = {"space": space, "model_index": i}
    for key in ("flops", "params", "acts"):
        row[key] = _number(_get(job, f"complexity.{key}", i, path), f"complexity.{key}", i, path)
    stats_key = "test_ema_epoch" if with_ema else "test_epoch"
    stats = job.get(stats_key)
    if not isinstance(stats, dict):
        row.update(status="no_ema" if with_ema else "incomplete", error=None)  # left out, as pycls leaves it
        return row
    row["error"] = _min_error(stats, stats_key, i, path)
    done = _last(stats, "epoch_ind", 0, stats_key, i, path) == _last(stats, "epoch_max", 1, stats_key, i, path)
    row["status"] = "complete" if done else "incomplete"
    spec = _spec_of_cfg(cfg)
    if spec is not None:
        _add_spec(row, spec)
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
    """The config's REGNET.* parameters, with its stem and stride, if they generate exactly ``spec`` (a
    converted RegNet): widths, depths, group widths, stem and strides, so that a CIFAR-stem RegNet stays one."""
    r = cfg.get("REGNET")
    if not isinstance(r, dict):
        return None
    try:
        params = RegNetParams(depth=int(r["DEPTH"]), w0=float(r["W0"]), wa=float(r["WA"]), wm=float(r["WM"]),
                              group_width=int(r["GROUP_W"]), bottleneck_ratio=1 / float(r.get("BOT_MUL", 1.0)),
                              se_ratio=float(r.get("SE_R", 0.25)) if r.get("SE_ON") else 0.0,
                              stem_width=int(r.get("STEM_W", 32)),
                              stem_type=_STEMS[r.get("STEM_TYPE", "simple_stem_in")],
                              first_stride=int(r.get("STRIDE", 2)))
        generated = params.to_spec(resolution=spec.resolution, in_channels=spec.in_channels,
                                   num_classes=spec.num_classes)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, UserError):
        return None
    return params if generated == spec else None
