"""Turn what a user types into an AnyNetSpec: a catalog name, ``--regnet k=v,...`` or a JSON file.

Every command that takes a model goes through ``resolve_model`` so the three forms work everywhere.
A JSON file may hold an AnyNetSpec, the output of ``describe --json`` (its ``spec``), a RegNet config
(``depth, w0, wa, wm, group_width, ...`` at the top level or under ``"regnet"``), or a ``best.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import userfiles
from ..errors import UserError
from .regnet import RegNetParams
from .spec import AnyNetSpec

REGNET_KEYS = ("depth", "w0", "wa", "wm", "group_width", "bottleneck_ratio", "se_ratio", "stem_width", "q",
               "stem_type", "first_stride")
INPUT_KEYS = ("resolution", "in_channels", "num_classes")
_INTEGER_KEYS = ("depth", "group_width", "stem_width", "q", "first_stride")
_TEXT_KEYS = ("stem_type",)


def catalog() -> dict[str, Any]:
    """Every named model: name -> RegNetParams (catalog.py) or a zero-argument spec factory (presets.py)."""
    from .catalog import REGNET_ZOO
    from .presets import PRESETS

    return {**REGNET_ZOO, **PRESETS}


def parse_regnet(text: str) -> RegNetParams:
    """Parse ``depth=13,w0=24,wa=36.44,wm=2.49,group_width=8[,...]``."""
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise UserError(f"--regnet: {item!r} is not key=value")
        if key not in REGNET_KEYS:
            raise UserError(f"--regnet: unknown key {key!r} (known: {', '.join(REGNET_KEYS)})")
        if key in values:
            raise UserError(f"--regnet: {key} is given twice")
        if key in _TEXT_KEYS:
            values[key] = raw.strip()
            continue
        try:
            number = float(raw)
        except ValueError:
            raise UserError(f"--regnet: {key}={raw!r} is not a number") from None
        if key in _INTEGER_KEYS:
            if not number.is_integer():
                raise UserError(f"--regnet: {key}={raw!r} must be an integer")
            number = int(number)
        values[key] = number
    return RegNetParams.from_dict(values)


def regnet_from_json(data: dict[str, Any]) -> RegNetParams | None:
    """The RegNet parameters a JSON document holds, if it holds any."""
    if isinstance(data.get("regnet"), dict):
        return RegNetParams.from_dict(data["regnet"])
    if all(k in data for k in ("depth", "w0", "wa", "wm", "group_width")):
        return RegNetParams.from_dict({k: data[k] for k in REGNET_KEYS if k in data})
    return None


def load_json_model(path: Path) -> tuple[AnyNetSpec, RegNetParams | None]:
    data = userfiles.parse_json(userfiles.read_text(path, "model file"), str(path))
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    try:
        regnet = regnet_from_json(data)
        if regnet is not None:  # built at the data size the file names (a best.json does), else 224x224x3/1000
            return regnet.to_spec(**{k: data[k] for k in INPUT_KEYS if k in data}), regnet
        if "stages" in data:
            return AnyNetSpec.from_dict(data), None
        if isinstance(data.get("spec"), dict):
            return AnyNetSpec.from_dict(data["spec"]), None
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    raise UserError(f"{path}: holds neither an AnyNet spec (\"stages\") nor a RegNet config "
                    f"(\"depth\", \"w0\", \"wa\", \"wm\", \"group_width\")")


def resolve_model(model: str | None = None, *, regnet: str | None = None, resolution: int | None = None,
                  in_channels: int | None = None, num_classes: int | None = None) -> AnyNetSpec:
    """The spec for a catalog name, a JSON path or ``--regnet`` text, at the given input size.

    Input-size arguments left as None keep the model's own (224x224x3, 1000 classes for catalog models).
    """
    if (model is None) == (regnet is None):
        raise UserError("give a model: a catalog name, a JSON file, or --regnet k=v,... (exactly one)")
    if regnet is not None:
        spec = parse_regnet(regnet).to_spec()
    else:
        entries = catalog()
        if model in entries:
            entry = entries[model]
            spec = entry.to_spec() if isinstance(entry, RegNetParams) else entry()
        elif model.endswith(".json") or Path(model).is_file():
            spec, _ = load_json_model(Path(model))
        else:
            raise UserError(f"unknown model {model!r}: not a catalog name (see `regnet-space models`) "
                            f"and not a JSON file")
    return spec.with_input(resolution=resolution, in_channels=in_channels, num_classes=num_classes)


def regnet_params_of(model: str | None, regnet: str | None) -> RegNetParams | None:
    """The RegNet parameters behind a model argument, when it is a RegNet (for describe/best output)."""
    if regnet is not None:
        return parse_regnet(regnet)
    if model is None:
        return None
    entry = catalog().get(model)
    if isinstance(entry, RegNetParams):
        return entry
    if model.endswith(".json") or Path(model).is_file():
        return load_json_model(Path(model))[1]
    return None
