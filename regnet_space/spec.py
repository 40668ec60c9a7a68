"""AnyNetSpec: a whole network described as data.

The spec is the single source of truth: the module builder and the analytic complexity both read it,
and it round-trips through JSON so a study can store it and a user can rebuild the model from it.
Every field is validated on construction, and errors name the field (``stages[2].group_width``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError

SPEC_FORMAT = "regnet_space.anynet/1"

STEM_TYPES = ("simple", "resnet", "cifar")
BLOCK_TYPES = ("vanilla", "res_basic", "res_bottleneck")


def _check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise UserError(f"{where}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float))) and not isinstance(value, bool)


@dataclass(frozen=True)
class StemSpec:
    """The input stem: ``simple`` = 3x3 s2 (RegNet), ``resnet`` = 7x7 s2 + 3x3 max-pool, ``cifar`` = 3x3 s1."""

    type: str = "simple"
    width: int = 32

    def validate(self, where: str = "stem") -> None:
        _check(self.type in STEM_TYPES, f"{where}.type", f"{self.type!r} is not one of {', '.join(STEM_TYPES)}")
        _check(_is_int(self.width) and self.width >= 1, f"{where}.width", f"must be a positive integer, got {self.width!r}")


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``depth`` blocks of output width ``width``; the first block has stride ``stride``.

    ``bottleneck_ratio`` is the paper's b: the bottleneck width is width / b. ``group_width`` is the paper's g:
    the 3x3 conv has bottleneck_width / g groups; 0 means one group (an ungrouped conv, as in ResNet).
    ``se_ratio`` > 0 adds squeeze-excitation of width round(se_ratio * block input width) (RegNetY).
    """

    depth: int
    width: int
    stride: int = 2
    bottleneck_ratio: float = 1.0
    group_width: int = 0
    block: str = "res_bottleneck"
    se_ratio: float = 0.0

    def __post_init__(self) -> None:
        # Canonical JSON: ratios are always floats, so 1 and 1.0 serialise the same way.
        for name in ("bottleneck_ratio", "se_ratio"):
            value = getattr(self, name)
            if _is_number(value):
                object.__setattr__(self, name, float(value))

    @property
    def bottleneck_width(self) -> int:
        return int(round(self.width / self.bottleneck_ratio))

    @property
    def groups(self) -> int:
        return 1 if self.group_width == 0 else self.bottleneck_width // self.group_width

    def validate(self, where: str) -> None:
        _check(_is_int(self.depth) and self.depth >= 1, f"{where}.depth", f"must be an integer >= 1, got {self.depth!r}")
        _check(_is_int(self.width) and self.width >= 1, f"{where}.width", f"must be an integer >= 1, got {self.width!r}")
        _check(_is_int(self.stride) and self.stride in (1, 2), f"{where}.stride", f"must be 1 or 2, got {self.stride!r}")
        _check(self.block in BLOCK_TYPES, f"{where}.block", f"{self.block!r} is not one of {', '.join(BLOCK_TYPES)}")
        _check(_is_number(self.bottleneck_ratio) and self.bottleneck_ratio > 0, f"{where}.bottleneck_ratio",
               f"must be a number > 0, got {self.bottleneck_ratio!r}")
        _check(_is_int(self.group_width) and self.group_width >= 0, f"{where}.group_width",
               f"must be an integer >= 0 (0 = one group), got {self.group_width!r}")
        _check(_is_number(self.se_ratio) and 0 <= self.se_ratio <= 1, f"{where}.se_ratio",
               f"must be a number in [0, 1], got {self.se_ratio!r}")
        if self.block in ("vanilla", "res_basic"):
            _check(self.bottleneck_ratio == 1, f"{where}.bottleneck_ratio", f"a {self.block} block has no bottleneck; must be 1")
            _check(self.group_width == 0, f"{where}.group_width", f"a {self.block} block is not grouped; must be 0")
            _check(self.se_ratio == 0, f"{where}.se_ratio", f"SE is only supported on res_bottleneck blocks")
            return
        bottleneck_width = self.bottleneck_width
        _check(bottleneck_width >= 1, f"{where}.bottleneck_ratio", f"width {self.width} / b {self.bottleneck_ratio} leaves no channels")
        if self.group_width:
            _check(bottleneck_width % self.group_width == 0, f"{where}.group_width",
                   f"{self.group_width} does not divide the bottleneck width {bottleneck_width} "
                   f"(width {self.width} / b {self.bottleneck_ratio}); see regnet_space.regnet.make_compatible")


@dataclass(frozen=True)
class HeadSpec:
    """Global average pool + linear classifier (the RegNet/ResNet head)."""

    bias: bool = True

    def validate(self, where: str = "head") -> None:
        _check(isinstance(self.bias, bool), f"{where}.bias", f"must be true or false, got {self.bias!r}")


@dataclass(frozen=True)
class AnyNetSpec:
    """A whole network: input size, stem, stages and head. Frozen, hashable, JSON round-trippable."""

    stages: tuple[StageSpec, ...]
    stem: StemSpec = field(default_factory=StemSpec)
    head: HeadSpec = field(default_factory=HeadSpec)
    in_channels: int = 3
    resolution: int = 224
    num_classes: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        self.validate()

    def validate(self) -> None:
        _check(_is_int(self.in_channels) and self.in_channels >= 1, "in_channels", f"must be an integer >= 1, got {self.in_channels!r}")
        _check(_is_int(self.resolution) and self.resolution >= 1, "resolution", f"must be an integer >= 1, got {self.resolution!r}")
        _check(_is_int(self.num_classes) and self.num_classes >= 1, "num_classes", f"must be an integer >= 1, got {self.num_classes!r}")
        _check(len(self.stages) >= 1, "stages", "a network needs at least one stage")
        _check(isinstance(self.stem, StemSpec), "stem", "must be a StemSpec")
        self.stem.validate()
        self.head.validate()
        for index, stage in enumerate(self.stages):
            _check(isinstance(stage, StageSpec), f"stages[{index}]", "must be a StageSpec")
            stage.validate(f"stages[{index}]")

    # Per-stage views used by describe/sample output.
    @property
    def depths(self) -> list[int]:
        return [s.depth for s in self.stages]

    @property
    def widths(self) -> list[int]:
        return [s.width for s in self.stages]

    @property
    def group_widths(self) -> list[int]:
        return [s.group_width for s in self.stages]

    @property
    def bottleneck_ratios(self) -> list[float]:
        return [s.bottleneck_ratio for s in self.stages]

    def block_widths(self) -> list[int]:
        """The output width of every block, in order (what the paper's per-block width plots show)."""
        return [s.width for s in self.stages for _ in range(s.depth)]

    def with_input(self, *, resolution: int | None = None, in_channels: int | None = None,
                   num_classes: int | None = None) -> "AnyNetSpec":
        """The same network for other data: a new input size, channel count or class count."""
        changes = {k: v for k, v in (("resolution", resolution), ("in_channels", in_channels),
                                     ("num_classes", num_classes)) if v is not None}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SPEC_FORMAT,
            "in_channels": self.in_channels,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "stem": dataclasses.asdict(self.stem),
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "head": dataclasses.asdict(self.head),
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AnyNetSpec":
        _check(isinstance(data, dict), "spec", "must be a JSON object")
        data = dict(data)
        fmt = data.pop("format", SPEC_FORMAT)
        _check(fmt == SPEC_FORMAT, "format", f"unsupported spec format {fmt!r} (expected {SPEC_FORMAT!r})")
        _check("stages" in data, "stages", "missing")
        _check(isinstance(data["stages"], list), "stages", "must be a list")
        stages = tuple(_build(StageSpec, s, f"stages[{i}]") for i, s in enumerate(data.pop("stages")))
        stem = _build(StemSpec, data.pop("stem", {}), "stem")
        head = _build(HeadSpec, data.pop("head", {}), "head")
        unknown = sorted(set(data) - {"in_channels", "resolution", "num_classes"})
        _check(not unknown, unknown[0] if unknown else "", "unknown key")
        return cls(stages=stages, stem=stem, head=head, **data)

    @classmethod
    def from_json(cls, text: str) -> "AnyNetSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"spec: not valid JSON ({exc})") from None
        return cls.from_dict(data)


def _build(kind: type, data: Any, where: str) -> Any:
    """Construct a spec dataclass from a dict, naming unknown or missing keys."""
    _check(isinstance(data, dict), where, "must be a JSON object")
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - names)
    _check(not unknown, f"{where}.{unknown[0]}" if unknown else where, "unknown key")
    required = {f.name for f in dataclasses.fields(kind)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = sorted(required - set(data))
    _check(not missing, f"{where}.{missing[0]}" if missing else where, "missing")
    value = kind(**data)
    value.validate(where)
    return value
