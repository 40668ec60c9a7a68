"""A pycls sweep's sampler definition (``sweep_cfg.yaml``) read as a design space, so that ``refine`` and
``design`` narrow the space the sweep actually sampled rather than a built-in one.

pycls's sweep config (``pycls/sweep/config.py``) holds ``SETUP.BASE_CFG`` (the fixed part of every job's config)
and ``SETUP.SAMPLERS`` (config key -> sampler). Samplers of the network map one to one:

- ``REGNET`` with ``regnet_sampler``: depth uniform (q 1), w0 log_uniform (q 8), wa log_uniform (q 0.1), wm
  log_uniform (q 0.001), group width power2_or_log_uniform (q 8), BOT_MUL power2_uniform (our b = 1/BOT_MUL,
  so a power2 over the reciprocals); ranges default to pycls's REGNET_SAMPLER's.
- ``REGNET.<KEY>`` with an int/float/value sampler, and ``ANYNET.DEPTHS/WIDTHS/BOT_MULS/GROUP_WS`` with a
  ``list_sampler`` (one distribution for every stage, ``LENGTH`` stages).
- the stem, block, stride and SE come from ``BASE_CFG`` (pycls's defaults where it is silent), and
  ``SETUP.CONSTRAINTS.REGNET.NUM_STAGES`` becomes the space's stage-count constraint. The space keeps the
  sweep's own stem and strides (``input_form = "imagenet"``: used as written at any input size).

What has no exact counterpart is refused with the reason, never approximated: clipped normal samplers, a
uniform bottleneck *multiplier* (not uniform in b), samplers of anything but the network (an lr/wd sweep
is not a design space), a REGNET.STRIDE of 1 (every stage at stride 1), blocks other than the X block.
The sweep's complexity constraints (``SETUP.CONSTRAINTS.CX``) are a window of the study, not of the space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import userfiles
from ..errors import UserError
from ..models.export import PYCLS_BLOCKS, PYCLS_STEMS
from .space import DesignSpace

_STEMS = {v: k for k, v in PYCLS_STEMS.items()}
_BLOCKS = {v: k for k, v in PYCLS_BLOCKS.items()}
# pycls's SAMPLERS.REGNET_SAMPLER defaults, and its fixed (RAND_TYPE, QUANTIZE) per RegNet parameter.
_REGNET_SAMPLER = {"DEPTH": [12, 28], "W0": [8, 256], "WA": [8.0, 256.0], "WM": [2.0, 3.0], "GROUP_W": [8, 128],
                   "BOT_MUL": [1.0, 1.0]}
_REGNET_RAND = {"DEPTH": ("depth", "uniform", 1), "W0": ("w0", "log_uniform", 8), "WA": ("wa", "log_uniform", 0.1),
                "WM": ("wm", "log_uniform", 0.001), "GROUP_W": ("group_width", "power2_or_log_uniform", 8)}
_REGNET_BASE = {"STEM_TYPE": "simple_stem_in", "STEM_W": 32, "BLOCK_TYPE": "res_bottleneck_block", "STRIDE": 2,
                "SE_ON": False, "SE_R": 0.25, "GROUP_W": 16, "BOT_MUL": 1.0}
_ANYNET_BASE = {"STEM_TYPE": "simple_stem_in", "STEM_W": 32, "BLOCK_TYPE": "res_bottleneck_block",
                "SE_ON": False, "SE_R": 0.25}
_ANYNET_LISTS = {"DEPTHS": "depth", "WIDTHS": "width", "BOT_MULS": "bottleneck_ratio", "GROUP_WS": "group_width"}
_KINDS = {"uniform": "uniform", "log_uniform": "log_uniform", "power2_uniform": "power2",
          "power2_or_log_uniform": "power2_or_log_uniform"}


def load_sweep_space(path: Path) -> DesignSpace:
    """The design space of the pycls sweep config at ``path`` (its NAME, else the folder's name)."""
    import yaml

    try:
        data = yaml.safe_load(userfiles.read_text(path, "pycls sweep config"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("SETUP"), dict):
        raise UserError(f"{path}: not a pycls sweep config (no SETUP section)")
    setup = data["SETUP"]
    base, samplers = setup.get("BASE_CFG") or {}, setup.get("SAMPLERS") or {}
    where = f"{path}: SETUP.SAMPLERS"
    if not isinstance(base, dict) or not isinstance(samplers, dict) or not samplers:
        raise UserError(f"{path}: SETUP.BASE_CFG and SETUP.SAMPLERS must be mappings, SAMPLERS not empty")
    for key in samplers:
        if key != "REGNET" and key.split(".")[0] not in ("REGNET", "ANYNET"):
            raise UserError(f"{where}.{key}: samples something other than the network; a design space here is "
                            f"the network's (an lr/wd sweep is not a design space)")
    name = str(data.get("NAME") or path.parent.name)
    regnet = "REGNET" in samplers or any(k.startswith("REGNET.") for k in samplers)
    table = (_regnet_table(base, samplers, setup, where) if regnet else _anynet_table(base, samplers, where))
    table.update(name=name, description=f"pycls sweep {name} ({path.name}: SETUP.SAMPLERS over SETUP.BASE_CFG)",
                 input_form="imagenet")
    return DesignSpace.from_dict(table, str(path))


def _regnet_table(base: dict[str, Any], samplers: dict[str, Any], setup: dict[str, Any], where: str
                  ) -> dict[str, Any]:
    cfg = {**_REGNET_BASE, **(base.get("REGNET") or {})}
    _check_network(cfg, where)
    if cfg["STRIDE"] != 2:
        raise UserError(f"{where}: REGNET.STRIDE {cfg['STRIDE']} strides every stage alike; a RegNet here has "
                        f"stride-2 stages after its first")
    regnet: dict[str, Any] = {"first_stride": 2, "se_ratio": float(cfg["SE_R"]) if cfg["SE_ON"] else 0.0}
    for key, (field, _, _) in _REGNET_RAND.items():
        if key in cfg:
            regnet[field] = cfg[key]
    regnet["bottleneck_ratio"] = 1 / float(cfg["BOT_MUL"])
    if "REGNET" in samplers:
        sampler = samplers["REGNET"]
        if not isinstance(sampler, dict) or str(sampler.get("TYPE", "")).lower() != "regnet_sampler":
            raise UserError(f"{where}.REGNET: only pycls's regnet_sampler samples REGNET as a whole")
        ranges = {**_REGNET_SAMPLER, **{k: v for k, v in sampler.items() if k != "TYPE"}}
        for key, (field, kind, q) in _REGNET_RAND.items():
            regnet[field] = _range(kind, *ranges[key], q, f"{where}.REGNET.{key}")
        regnet["bottleneck_ratio"] = _reciprocal(_range("power2", *ranges["BOT_MUL"], 1 / 128, where),
                                                 f"{where}.REGNET.BOT_MUL")
    for key, sampler in samplers.items():
        if key.startswith("REGNET."):
            sub = key.split(".", 1)[1]
            if sub not in _REGNET_RAND and sub != "BOT_MUL":
                raise UserError(f"{where}.{key}: not a RegNet parameter this space can sample")
            value = _scalar(sampler, f"{where}.{key}")
            if sub == "BOT_MUL":
                regnet["bottleneck_ratio"] = _reciprocal(value, f"{where}.{key}")
            else:
                regnet[_REGNET_RAND[sub][0]] = value
    missing = [k for k, (f, _, _) in _REGNET_RAND.items() if f not in regnet]
    if missing:
        raise UserError(f"{where}: REGNET.{missing[0]} is neither sampled nor set in BASE_CFG")
    num_stages = ((setup.get("CONSTRAINTS") or {}).get("REGNET") or {}).get("NUM_STAGES", [4, 4])
    return {"stem": {"type": _STEMS[cfg["STEM_TYPE"]], "width": int(cfg["STEM_W"])}, "regnet": regnet,
            "constraints": {"num_stages": list(num_stages)}}


def _anynet_table(base: dict[str, Any], samplers: dict[str, Any], where: str) -> dict[str, Any]:
    cfg = {**_ANYNET_BASE, **(base.get("ANYNET") or {})}
    _check_network(cfg, where)
    lengths = set()
    stage: dict[str, Any] = {"block": _BLOCKS[cfg["BLOCK_TYPE"]],
                             "se_ratio": float(cfg["SE_R"]) if cfg["SE_ON"] else 0.0}
    for key, sampler in samplers.items():
        field = _ANYNET_LISTS.get(key.split(".", 1)[1])
        if field is None or not isinstance(sampler, dict) or str(sampler.get("TYPE", "")).lower() != "list_sampler":
            raise UserError(f"{where}.{key}: only list_samplers of ANYNET.{', '.join(_ANYNET_LISTS)} are read")
        lengths.add(sampler.get("LENGTH"))
        value = _scalar(sampler.get("ITEM_SAMPLER") or {}, f"{where}.{key}.ITEM_SAMPLER")
        stage[field] = _reciprocal(value, f"{where}.{key}") if field == "bottleneck_ratio" else value
    if len(lengths) != 1 or not isinstance(next(iter(lengths)), int):
        raise UserError(f"{where}: the ANYNET list samplers must share one integer LENGTH (the stage count)")
    num_stages = lengths.pop()
    strides = cfg.get("STRIDES") or [2] * num_stages
    if len(strides) != num_stages:
        raise UserError(f"{where}: BASE_CFG ANYNET.STRIDES has {len(strides)} stages, the samplers {num_stages}")
    for field, key in (("depth", "DEPTHS"), ("width", "WIDTHS"), ("bottleneck_ratio", "BOT_MULS"),
                       ("group_width", "GROUP_WS")):
        if field not in stage and cfg.get(key):
            raise UserError(f"{where}: ANYNET.{key} is fixed per stage in BASE_CFG; only sampled lists are read")
    return {"num_stages": num_stages, "stem": {"type": _STEMS[cfg["STEM_TYPE"]], "width": int(cfg["STEM_W"])},
            "stage": stage, "stages": {str(i + 1): {"stride": int(s)} for i, s in enumerate(strides)}}


def _check_network(cfg: dict[str, Any], where: str) -> None:
    if cfg["STEM_TYPE"] not in _STEMS:
        raise UserError(f"{where}: BASE_CFG stem {cfg['STEM_TYPE']!r} is not one of {', '.join(_STEMS)}")
    if cfg["BLOCK_TYPE"] not in _BLOCKS:
        raise UserError(f"{where}: BASE_CFG block {cfg['BLOCK_TYPE']!r} is not one of {', '.join(_BLOCKS)}")


def _range(kind: str, lo: Any, hi: Any, q: Any, where: str) -> Any:
    """A fixed value when lo == hi (pycls draws it every time), else the distribution's TOML table."""
    if lo == hi:
        return lo
    table = {"dist": kind, "lo": lo, "hi": hi}
    return table if kind == "power2" else {**table, "q": q}


def _scalar(sampler: Any, where: str) -> Any:
    """A value/int/float sampler as a fixed value or a distribution table."""
    if not isinstance(sampler, dict):
        raise UserError(f"{where}: not a sampler")
    kind = str(sampler.get("TYPE", "")).lower()
    if kind == "value_sampler":
        values = sampler.get("VALUES") or []
        return values[0] if len(values) == 1 else {"dist": "choice", "values": list(values)}
    if kind not in ("int_sampler", "float_sampler"):
        raise UserError(f"{where}: sampler type {kind or None!r} has no counterpart here")
    rand = sampler.get("RAND_TYPE", "uniform")
    if rand not in _KINDS:
        raise UserError(f"{where}: RAND_TYPE {rand!r} (a clipped normal) has no exact counterpart here")
    lo, hi = sampler.get("RANGE", [0, 0])
    return _range(_KINDS[rand], lo, hi, sampler.get("QUANTIZE", 1 if kind == "int_sampler" else 0.00001), where)


def _reciprocal(value: Any, where: str) -> Any:
    """Our b from pycls's bottleneck multiplier: 1/value, for fixed values, choices and powers of two."""
    if not isinstance(value, dict):
        return 1 / float(value)
    if value["dist"] == "choice":
        return {"dist": "choice", "values": sorted(1 / float(v) for v in value["values"])}
    if value["dist"] == "power2":
        return {"dist": "power2", "lo": 1 / float(value["hi"]), "hi": 1 / float(value["lo"])}
    raise UserError(f"{where}: a {value['dist']} bottleneck multiplier is not a distribution of b = 1/multiplier "
                    f"we can write; use a value_sampler or power2_uniform")
