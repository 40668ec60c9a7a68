"""DesignSpace: a design space as data, read from and written to TOML.

A space says, for every field of the network spec, either a fixed value or a distribution to draw it from,
plus the constraints that tie the draws together. The keys are the spec's own field names, read by
introspecting the StemSpec/StageSpec/RegNetParams dataclasses, so a field added there is a dimension here
with no change to this module. The format is documented in docs/spaces.md; the built-in spaces in
``builtin/`` are written in it.

Two kinds of space:
- AnyNet (``num_stages`` set): every stage field is drawn per stage; ``[stage]`` holds the values for every
  stage and ``[stages.N]`` overrides stage N (1-based).
- RegNet (a ``[regnet]`` table): the RegNetParams fields are drawn and the stages follow from the quantized
  linear rule; ``[stage]`` may set the other stage fields, one draw per model applied to every stage.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import userfiles
from ..errors import UserError
from ..models.regnet import RegNetParams
from ..models.spec import MAX_STAGES, HeadSpec, StageSpec, StemSpec
from .distributions import Distribution, check_value, is_number, parse_distribution

BUILTIN_DIR = Path(__file__).parent / "builtin"

# The paper's short names for the four AnyNet stage parameters (params d1..d4, w1..w4, b1..b4, g1..g4).
STAGE_ALIASES = {"depth": "d", "width": "w", "bottleneck_ratio": "b", "group_width": "g"}
# Stage fields a RegNet space gets from the quantized linear rule and the RegNet parameters.
REGNET_STAGE_FIELDS = ("depth", "width", "bottleneck_ratio", "group_width", "se_ratio")
# RegNetParams fields a [regnet] table may set (the stem width comes from [stem]).
# (the stem's type and width come from [stem]).
REGNET_FIELDS = tuple(f.name for f in dataclasses.fields(RegNetParams) if f.name not in ("stem_width", "stem_type"))
TOP_KEYS = ("name", "description", "input_form", "num_stages", "stem", "head", "stage", "stages", "regnet",
            "constraints")
INPUT_FORMS = ("auto", "imagenet", "small")  # see input_form.py

Value = Any  # a fixed value or a Distribution


def field_types(kind: type) -> dict[str, type | None]:
    """Field name -> int/float/str/bool, or None for a field of any other type."""
    hints = typing.get_type_hints(kind)
    return {f.name: hints[f.name] if hints[f.name] in (int, float, str, bool) else None
            for f in dataclasses.fields(kind)}


def field_defaults(kind: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(kind) if f.default is not dataclasses.MISSING}


STEM_TYPES = field_types(StemSpec)
HEAD_TYPES = field_types(HeadSpec)
STAGE_TYPES = field_types(StageSpec)
REGNET_TYPES = {name: kind for name, kind in field_types(RegNetParams).items() if name in REGNET_FIELDS}


@dataclass(frozen=True)
class DesignSpace:
    """A parsed design space. Build one with ``from_dict`` (the TOML's structure) or ``load_space``.

    ``stem``, ``stage`` and ``regnet`` map field names to a fixed value or a Distribution; ``stages`` maps a
    1-based stage number to its overrides. ``shared`` and ``monotone`` name stage fields; ``regnet_stages``
    is the (min, max) number of stages a RegNet draw may quantize to. ``input_form`` (auto, imagenet, small)
    says how the space adapts to the input size (input_form.py). ``pycls_limits`` keeps only models within
    pycls's rule of thumb for good models' params and activations (limits.py).
    """

    name: str
    description: str = ""
    num_stages: int | None = None
    stem: dict[str, Value] = field(default_factory=dict)
    head: dict[str, Value] = field(default_factory=dict)
    stage: dict[str, Value] = field(default_factory=dict)
    stages: dict[int, dict[str, Value]] = field(default_factory=dict)
    regnet: dict[str, Value] | None = None
    shared: tuple[str, ...] = ()
    monotone: tuple[str, ...] = ()
    regnet_stages: tuple[int, int] = (4, 4)
    input_form: str = "auto"
    pycls_limits: bool = False

    @property
    def is_regnet(self) -> bool:
        return self.regnet is not None

    def stage_value(self, index: int, name: str) -> Value:
        """Stage ``index`` (0-based)'s value for a field: its override, else [stage], else the default."""
        overrides = self.stages.get(index + 1, {})
        if name in overrides:
            return overrides[name]
        return self.stage.get(name, field_defaults(StageSpec).get(name))

    def stem_value(self, name: str) -> Value:
        return self.stem.get(name, field_defaults(StemSpec)[name])

    def head_value(self, name: str) -> Value:
        return self.head.get(name, field_defaults(HeadSpec)[name])

    def size(self) -> int:
        """Distinct parameter settings (before group compatibility and the RegNet stage-count rule)."""
        total = math.prod(_count(v) for v in [*self.stem.values(), *self.head.values()])
        if self.is_regnet:
            return total * math.prod(_count(v) for v in [*self.regnet.values(), *self.stage.values()])
        for name in STAGE_TYPES:
            per_stage = [self.stage_value(i, name) for i in range(self.num_stages)]
            if name in self.shared:
                total *= _count(per_stage[0])
            elif name in self.monotone:
                total *= _count_non_decreasing(per_stage)
            else:
                total *= math.prod(_count(v) for v in per_stage)
        return total

    # -- the dict form (what the TOML holds) --

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.input_form != "auto":
            data["input_form"] = self.input_form
        if self.num_stages is not None:
            data["num_stages"] = self.num_stages
        data["stem"] = _values_to_dict(self.stem)
        if self.head:
            data["head"] = _values_to_dict(self.head)
        if self.regnet is not None:
            data["regnet"] = _values_to_dict(self.regnet)
        data["stage"] = _values_to_dict(self.stage)
        if self.stages:
            data["stages"] = {str(i): _values_to_dict(v) for i, v in sorted(self.stages.items())}
        constraints: dict[str, Any] = {}
        if self.shared:
            constraints["shared"] = list(self.shared)
        if self.monotone:
            constraints["monotone"] = list(self.monotone)
        if self.is_regnet:
            constraints["num_stages"] = list(self.regnet_stages)
        if self.pycls_limits:
            constraints["pycls_limits"] = True
        if constraints:
            data["constraints"] = constraints
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "space") -> "DesignSpace":
        """Parse and check the TOML structure; every error names the key (``space.stage.width.lo``)."""
        _expect(data, dict, where)
        unknown = sorted(set(data) - set(TOP_KEYS))
        if unknown:
            raise UserError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(TOP_KEYS)})")
        name = data.get("name", "")
        description = data.get("description", "")
        _expect(name, str, f"{where}.name")
        _expect(description, str, f"{where}.description")
        input_form = data.get("input_form", "auto")
        if input_form not in INPUT_FORMS:
            raise UserError(f"{where}.input_form: must be one of {', '.join(INPUT_FORMS)}, got {input_form!r}")
        is_regnet = "regnet" in data
        if is_regnet == ("num_stages" in data):
            raise UserError(f"{where}: give exactly one of num_stages (an AnyNet space) or a [regnet] table")
        stem = _parse_values(data.get("stem", {}), f"{where}.stem", STEM_TYPES)
        head = _parse_values(data.get("head", {}), f"{where}.head", HEAD_TYPES)
        stage_types = ({k: v for k, v in STAGE_TYPES.items() if k not in REGNET_STAGE_FIELDS}
                       if is_regnet else STAGE_TYPES)
        stage = _parse_values(data.get("stage", {}), f"{where}.stage", stage_types,
                              hint="set by the RegNet rule; use [regnet]" if is_regnet else None)
        constraints = data.get("constraints", {})
        _expect(constraints, dict, f"{where}.constraints")
        allowed = ("num_stages", "pycls_limits") if is_regnet else ("shared", "monotone", "pycls_limits")
        pycls_limits = constraints.get("pycls_limits", False)
        _expect(pycls_limits, bool, f"{where}.constraints.pycls_limits")
        unknown = sorted(set(constraints) - set(allowed))
        if unknown:
            raise UserError(f"{where}.constraints.{unknown[0]}: unknown key for this kind of space "
                            f"(known: {', '.join(allowed)})")
        if is_regnet:
            if "stages" in data:
                raise UserError(f"{where}.stages: a RegNet space has no per-stage overrides")
            regnet = _parse_values(data["regnet"], f"{where}.regnet", REGNET_TYPES)
            missing = [k for k in ("depth", "w0", "wa", "wm", "group_width") if k not in regnet]
            if missing:
                raise UserError(f"{where}.regnet.{missing[0]}: missing")
            bounds = constraints.get("num_stages", [4, 4])
            if (not isinstance(bounds, list) or len(bounds) != 2 or not all(isinstance(b, int) for b in bounds)
                    or not 1 <= bounds[0] <= bounds[1] <= MAX_STAGES):
                raise UserError(f"{where}.constraints.num_stages: must be [min, max] with 1 <= min <= max <= {MAX_STAGES}, "
                                f"got {bounds!r}")
            return cls(name, description, None, stem, head, stage, {}, regnet, (), (), tuple(bounds), input_form,
                       pycls_limits)
        num_stages = data["num_stages"]
        if not isinstance(num_stages, int) or isinstance(num_stages, bool) or not 1 <= num_stages <= MAX_STAGES:
            raise UserError(f"{where}.num_stages: must be an integer in [1, {MAX_STAGES}], got {num_stages!r}")
        overrides = data.get("stages", {})
        _expect(overrides, dict, f"{where}.stages")
        stages = {}
        for key, table in overrides.items():
            if not (key.isdigit() and 1 <= int(key) <= num_stages):
                raise UserError(f"{where}.stages.{key}: not a stage number 1..{num_stages}")
            stages[int(key)] = _parse_values(table, f"{where}.stages.{key}", STAGE_TYPES)
        space = cls(name, description, num_stages, stem, head, stage, stages, None,
                    _parse_names(constraints, "shared", f"{where}.constraints"),
                    _parse_names(constraints, "monotone", f"{where}.constraints"), (4, 4), input_form, pycls_limits)
        space._check_stages(where)
        return space

    def _check_stages(self, where: str) -> None:
        for name in ("depth", "width"):
            if any(self.stage_value(i, name) is None for i in range(self.num_stages)):
                raise UserError(f"{where}.stage.{name}: missing (every stage needs a {name})")
        for name in self.shared:
            values = [self.stage_value(i, name) for i in range(self.num_stages)]
            if any(v != values[0] for v in values):
                raise UserError(f"{where}.constraints.shared: {name} differs between stages, so it cannot be shared")
        for name in self.monotone:
            for i in range(self.num_stages):
                value = self.stage_value(i, name)
                options = value.values.tolist() if isinstance(value, Distribution) else [value]
                if not all(map(is_number, options)):
                    raise UserError(f"{where}.constraints.monotone: {name} is not numeric, so cannot be monotone")

    # -- TOML --

    def to_toml(self) -> str:
        """The space as TOML; ``load_space`` of it gives an equal space."""
        data = self.to_dict()
        lines = [f"{key} = {_toml(data.pop(key))}" for key in ("name", "description", "input_form", "num_stages")
                 if key in data]
        for table in ("stem", "head", "regnet", "stage"):
            if data.get(table):
                lines += ["", f"[{table}]"] + [f"{k} = {_toml(v)}" for k, v in data[table].items()]
        for number, overrides in data.get("stages", {}).items():
            lines += ["", f"[stages.{number}]"] + [f"{k} = {_toml(v)}" for k, v in overrides.items()]
        if "constraints" in data:
            lines += ["", "[constraints]"] + [f"{k} = {_toml(v)}" for k, v in data["constraints"].items()]
        return "\n".join(lines) + "\n"


def builtin_spaces() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def parse_toml(text: str, where: str) -> DesignSpace:
    return DesignSpace.from_dict(userfiles.parse_toml(text, where), where)


def load_space(name_or_path: str) -> DesignSpace:
    """A built-in space by name (see ``builtin_spaces()``), a TOML file (its name defaults to its stem), or a
    pycls sweep config (``.yaml``: pycls_sweep.py)."""
    path = BUILTIN_DIR / f"{name_or_path}.toml"
    if name_or_path in builtin_spaces():
        return parse_toml(path.read_text(), name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise UserError(f"unknown design space {name_or_path!r}: not a built-in space "
                        f"({', '.join(builtin_spaces())}), a TOML file or a pycls sweep_cfg.yaml")
    if path.suffix in (".yaml", ".yml"):
        from .pycls_sweep import load_sweep_space

        return load_sweep_space(path)
    space = parse_toml(userfiles.read_text(path, "design space"), str(path))
    return space if space.name else dataclasses.replace(space, name=path.stem)


def _expect(value: Any, kind: type, where: str) -> None:
    if not isinstance(value, kind):
        raise UserError(f"{where}: must be a {'table' if kind is dict else kind.__name__}, got {value!r}")


def _parse_values(table: Any, where: str, types: dict[str, type | None], hint: str | None = None
                  ) -> dict[str, Value]:
    """A table of field -> fixed value or {dist = ...} inline table, checked against the fields' types."""
    _expect(table, dict, where)
    values = {}
    for key, value in table.items():
        if key not in types:
            reason = hint if hint and key in STAGE_TYPES else f"unknown key (known: {', '.join(types)})"
            raise UserError(f"{where}.{key}: {reason}")
        if isinstance(value, dict):
            values[key] = parse_distribution(value, f"{where}.{key}", types[key])
        else:
            check_value(value, f"{where}.{key}", types[key])
            values[key] = value
    return values


def _parse_names(constraints: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    names = constraints.get(key, [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UserError(f"{where}.{key}: must be a list of stage field names, got {names!r}")
    for name in names:
        if name not in STAGE_TYPES:
            raise UserError(f"{where}.{key}: {name!r} is not a stage field (known: {', '.join(STAGE_TYPES)})")
    return tuple(names)


def _values_to_dict(values: dict[str, Value]) -> dict[str, Any]:
    return {k: v.to_dict() if isinstance(v, Distribution) else v for k, v in values.items()}


def _count(value: Value) -> int:
    return len(value) if isinstance(value, Distribution) else 1


def _count_non_decreasing(per_stage: list[Value]) -> int:
    """How many sequences x_1 <= x_2 <= ... with x_i in stage i's support (a running-sum DP)."""
    supports = [sorted(set(v.values.tolist())) if isinstance(v, Distribution) else [v] for v in per_stage]
    ends: dict[Any, int] = {v: 1 for v in supports[0]}  # sequences so far, by their last value
    for support in supports[1:]:
        ends = {v: sum(n for last, n in ends.items() if last <= v) for v in support}
    return sum(ends.values())


def _toml(value: Any) -> str:
    """One TOML value: the strings, numbers, booleans, lists and inline tables a space holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")
