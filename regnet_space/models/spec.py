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

from .. import userfiles
from ..errors import UserError

SPEC_FORMAT = "regnet_space.anynet/1"

STEM_TYPES = ("simple", "resnet", "cifar", "deep", "shufflenet")
BLOCK_TYPES = ("vanilla", "res_basic", "res_bottleneck", "shufflenet_v1", "shufflenet_v2", "resnest", "res2net")
STRIDE_ON = ("3x3", "1x1")
SHORTCUTS = ("conv", "avgpool")
SE_STYLES = ("regnet", "resnet")

# The first stem conv's (kernel, stride) per stem type; a deep stem's further convs are 3x3 stride 1.
STEM_FIRST_CONV = {"simple": (3, 2), "resnet": (7, 2), "cifar": (3, 1), "deep": (3, 2), "shufflenet": (3, 2)}

# Blocks with a projection shortcut (conv or ResNet-D avg-pool + conv) and a first 1x1 that can take the stride.
# Hard limits of a model description, about ten times the largest published network on each axis: every real
# network fits, and no small input (a depth of 10^9 in a JSON file) asks for unbounded work or memory.
MAX_WIDTH = 65_536  # channels of one layer: ~9x RegNetY-128GF's widest stage (7,392), a power of two
MAX_BLOCKS = 3_330  # blocks of a network: 10x ResNet-1001's 333 bottleneck blocks, the deepest published ResNet
MAX_STAGES = 50  # 10x the 5 stages of the deepest staged designs (pycls's AnyNet has 4)
MAX_RESOLUTION = 8_000  # pixels a side: 10x the 800 px EfficientNet-L2 is evaluated at
MAX_CLASSES = 220_000  # 10x ImageNet-21k's 21,841 classes



def check_input_size(**sizes: Any) -> None:
    """``in_channels``, ``resolution`` and ``num_classes`` within the hard limits, before anything is sized
    from them (a sampler counts a whole population's flops at once)."""
    limits = {"in_channels": MAX_WIDTH, "resolution": MAX_RESOLUTION, "num_classes": MAX_CLASSES}
    for name, value in sizes.items():
        _check(_is_int(value) and 1 <= value <= limits[name], name,
               f"must be an integer in [1, {limits[name]:,}], got {value!r}")


PROJECTION_BLOCKS = ("res_basic", "res_bottleneck", "resnest", "res2net")
STRIDE_1X1_BLOCKS = ("res_bottleneck", "resnest", "res2net")


def _check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise UserError(f"{where}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float))) and not isinstance(value, bool)


@dataclass(frozen=True)
class StemSpec:
    """The input stem, each conv followed by BN and ReLU.

    ``simple`` = 3x3 s2 (RegNet); ``resnet`` = 7x7 s2 + 3x3 s2 max-pool; ``cifar`` = 3x3 s1;
    ``deep`` = three 3x3 convs, the first with stride 2, of widths ``mid_widths + [width]``, then the
    max-pool (ResNet-C, timm's ``stem_type='deep'``: 32/32/64); ``shufflenet`` = 3x3 s2 + max-pool.
    ``mid_widths`` (deep stem only) defaults to two convs of width // 2.
    """

    type: str = "simple"
    width: int = 32
    mid_widths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.mid_widths, list):
            object.__setattr__(self, "mid_widths", tuple(self.mid_widths))

    @property
    def conv_widths(self) -> tuple[int, ...]:
        """The output width of each stem conv, in order."""
        if self.type != "deep":
            return (self.width,)
        return (self.mid_widths or (self.width // 2, self.width // 2)) + (self.width,)

    @property
    def pooled(self) -> bool:
        return self.type in ("resnet", "deep", "shufflenet")

    def validate(self, where: str = "stem") -> None:
        _check(self.type in STEM_TYPES, f"{where}.type", f"{self.type!r} is not one of {', '.join(STEM_TYPES)}")
        _check(_is_int(self.width) and 1 <= self.width <= MAX_WIDTH, f"{where}.width",
               f"must be an integer in [1, {MAX_WIDTH:,}], got {self.width!r}")
        _check(isinstance(self.mid_widths, tuple) and all(_is_int(w) and 1 <= w <= MAX_WIDTH for w in self.mid_widths),
               f"{where}.mid_widths", f"must be a list of positive integers, got {list(self.mid_widths)!r}")
        _check(not self.mid_widths or self.type == "deep", f"{where}.mid_widths", "only a deep stem has middle convs")
        _check(self.type != "deep" or min(self.conv_widths) >= 1, f"{where}.width",
               f"a deep stem of width {self.width} leaves its middle convs no channels; give mid_widths")


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``depth`` blocks of output width ``width``; the first block has stride ``stride``.

    ``bottleneck_ratio`` is the paper's b: the bottleneck width is width / b. ``group_width`` is the paper's g:
    the 3x3 conv has bottleneck_width / g groups; 0 means one group (an ungrouped conv, as in ResNet).
    ``se_ratio`` > 0 adds squeeze-excitation; ``se_style`` says where and how wide: ``regnet`` (RegNetY) puts it
    after the 3x3 with width round(se_ratio * block input width); ``resnet`` (SE-ResNet) puts it after the
    last BN with width se_ratio * the channels it gates (the block output) made divisible by 8, at least 8.

    Options of some blocks only (the defaults leave every block as it was):
    - ``stride_on``: ``3x3`` (ResNet-B) or ``1x1`` (ResNet-A, the original: the stride on the first 1x1).
    - ``shortcut``: ``conv`` (strided 1x1 conv + BN) or ``avgpool`` (ResNet-D: 2x2 avg-pool, then 1x1 conv + BN).
    - ``radix``, ``avd``, ``avd_first`` (resnest): split-attention radix; ``avd`` moves a strided block's stride
      from the 3x3 to a 3x3 avg-pool after it (before it with ``avd_first``). Cardinality is the group count.
    - ``scale`` (res2net): the bottleneck is split into ``scale`` chunks of width bottleneck_width / scale.
    - ``residual`` (shufflenet_v2): the branch adds its input back before the last ReLU.
    ShuffleNet v1's 1x1 convs have bottleneck_width / group_width groups (its g) and its bottleneck is
    width / b (b = 4 as published); ShuffleNet v2 has no bottleneck (b = 1) and splits the width in halves.
    """

    depth: int
    width: int
    stride: int = 2
    bottleneck_ratio: float = 1.0
    group_width: int = 0
    block: str = "res_bottleneck"
    se_ratio: float = 0.0
    se_style: str = "regnet"
    stride_on: str = "3x3"
    shortcut: str = "conv"
    radix: int = 1
    avd: bool = False
    avd_first: bool = False
    scale: int = 1
    residual: bool = False

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
    def conv_width(self) -> int:
        """The width of each grouped 3x3 conv: the bottleneck, or one of its ``scale`` chunks (res2net)."""
        return self.bottleneck_width // self.scale

    @property
    def groups(self) -> int:
        return 1 if self.group_width == 0 else self.conv_width // self.group_width

    def validate(self, where: str) -> None:
        _check(_is_int(self.depth) and 1 <= self.depth <= MAX_BLOCKS, f"{where}.depth",
               f"must be an integer in [1, {MAX_BLOCKS:,}], got {self.depth!r}")
        _check(_is_int(self.width) and 1 <= self.width <= MAX_WIDTH, f"{where}.width",
               f"must be an integer in [1, {MAX_WIDTH:,}], got {self.width!r}")
        _check(_is_int(self.stride) and self.stride in (1, 2), f"{where}.stride", f"must be 1 or 2, got {self.stride!r}")
        _check(self.block in BLOCK_TYPES, f"{where}.block", f"{self.block!r} is not one of {', '.join(BLOCK_TYPES)}")
        _check(_is_number(self.bottleneck_ratio) and self.bottleneck_ratio > 0, f"{where}.bottleneck_ratio",
               f"must be a number > 0, got {self.bottleneck_ratio!r}")
        _check(_is_int(self.group_width) and self.group_width >= 0, f"{where}.group_width",
               f"must be an integer >= 0 (0 = one group), got {self.group_width!r}")
        _check(_is_number(self.se_ratio) and 0 <= self.se_ratio <= 1, f"{where}.se_ratio",
               f"must be a number in [0, 1], got {self.se_ratio!r}")
        for name, allowed in (("se_style", SE_STYLES), ("stride_on", STRIDE_ON), ("shortcut", SHORTCUTS)):
            value = getattr(self, name)
            _check(value in allowed, f"{where}.{name}", f"{value!r} is not one of {', '.join(allowed)}")
        for name in ("radix", "scale"):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, f"{where}.{name}", f"must be an integer >= 1, got {value!r}")
        for name in ("avd", "avd_first", "residual"):
            value = getattr(self, name)
            _check(isinstance(value, bool), f"{where}.{name}", f"must be true or false, got {value!r}")
        self._validate_options(where)
        self._validate_widths(where)

    def _validate_options(self, where: str) -> None:
        """Each option is left at its default on blocks that have no use for it."""
        residual_blocks = tuple(b for b in BLOCK_TYPES if b != "vanilla")
        for name, blocks in (("stride_on", STRIDE_1X1_BLOCKS), ("shortcut", PROJECTION_BLOCKS),
                             ("se_ratio", residual_blocks), ("radix", ("resnest",)), ("avd", ("resnest",)),
                             ("avd_first", ("resnest",)), ("scale", ("res2net",)), ("residual", ("shufflenet_v2",))):
            default = self.__dataclass_fields__[name].default
            if getattr(self, name) != default and self.block not in blocks:  # format the message only on failure
                _check(False, f"{where}.{name}", f"a {self.block} block has no such option; must be {json.dumps(default)}")
        _check(self.avd or not self.avd_first, f"{where}.avd_first", "needs avd")
        _check(self.block != "res2net" or self.scale >= 2, f"{where}.scale", "a res2net block needs scale >= 2")

    def _validate_widths(self, where: str) -> None:
        if self.block in ("vanilla", "res_basic", "shufflenet_v2"):
            _check(self.bottleneck_ratio == 1, f"{where}.bottleneck_ratio", f"a {self.block} block has no bottleneck; must be 1")
            _check(self.group_width == 0, f"{where}.group_width", f"a {self.block} block is not grouped; must be 0")
            _check(self.block != "shufflenet_v2" or self.width % 2 == 0, f"{where}.width",
                   f"a shufflenet_v2 block splits its width in halves; {self.width} is odd")
            return
        bottleneck_width = self.bottleneck_width
        _check(bottleneck_width >= 1, f"{where}.bottleneck_ratio", f"width {self.width} / b {self.bottleneck_ratio} leaves no channels")
        _check(bottleneck_width % self.scale == 0, f"{where}.scale",
               f"{self.scale} does not divide the bottleneck width {bottleneck_width}")
        if self.group_width:
            _check(self.conv_width % self.group_width == 0, f"{where}.group_width",
                   f"{self.group_width} does not divide the {'split' if self.scale > 1 else 'bottleneck'} width "
                   f"{self.conv_width} (width {self.width} / b {self.bottleneck_ratio}); "
                   f"see regnet_space.models.regnet.make_compatible")
        if self.block == "resnest":
            _check(self.conv_width % (self.groups * self.radix) == 0, f"{where}.radix",
                   f"the split conv has {self.groups} groups x radix {self.radix}, which must divide the "
                   f"bottleneck width {self.conv_width}")
        if self.block == "shufflenet_v1":
            _check(self.width % self.groups == 0, f"{where}.group_width",
                   f"the {self.groups} groups of the last 1x1 must divide the width {self.width}")

    def validate_input(self, w_in: int, where: str) -> None:
        """Checks that need the stage's input width: ShuffleNet v1 concatenates its input when it downsamples."""
        if self.block == "shufflenet_v1" and (self.stride != 1 or w_in != self.width):
            added = self.width - w_in
            _check(added > 0 and added % self.groups == 0, f"{where}.width",
                   f"a downsampling shufflenet_v1 block concatenates its {w_in}-channel input, so the width must "
                   f"exceed {w_in} by a multiple of its {self.groups} groups, got {self.width}")


@dataclass(frozen=True)
class HeadSpec:
    """[1x1 conv of ``width`` + BN + ReLU (ShuffleNet v2's conv5; 0 = none)] -> global average pool -> linear."""

    bias: bool = True
    width: int = 0

    def validate(self, where: str = "head") -> None:
        _check(isinstance(self.bias, bool), f"{where}.bias", f"must be true or false, got {self.bias!r}")
        _check(_is_int(self.width) and 0 <= self.width <= MAX_WIDTH, f"{where}.width",
               f"must be an integer in [0, {MAX_WIDTH:,}] (0 = no final 1x1 conv), got {self.width!r}")


@dataclass(frozen=True)
class AnyNetSpec:
    """A whole network: input size, stem, stages and head. Frozen, hashable, JSON round-trippable.

    ``test_resize`` is the size test images are resized to before the centre crop of ``resolution`` (pycls's
    ``TEST.IM_SIZE``). None, the usual case, means the default the exporter derives from ``resolution``
    (256 for 224, see ``models.export.pycls_test_size``). ``scale`` sets it when scaling makes it differ from
    that default: pycls's scaler scales the base test size by the same resolution factor as the training size
    and rounds each to a multiple of 4 on its own, so the scaled test size is not a function of the scaled
    training size. It changes neither the network nor its complexity.
    """

    stages: tuple[StageSpec, ...]
    stem: StemSpec = field(default_factory=StemSpec)
    head: HeadSpec = field(default_factory=HeadSpec)
    in_channels: int = 3
    resolution: int = 224
    num_classes: int = 1000
    test_resize: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        self.validate()

    def validate(self) -> None:
        check_input_size(in_channels=self.in_channels, resolution=self.resolution, num_classes=self.num_classes)
        _check(1 <= len(self.stages) <= MAX_STAGES, "stages", f"a network has 1 to {MAX_STAGES} stages, "
               f"got {len(self.stages)}")
        _check(isinstance(self.stem, StemSpec), "stem", "must be a StemSpec")
        self.stem.validate()
        self.head.validate()
        w_in = self.stem.width
        for index, stage in enumerate(self.stages):
            _check(isinstance(stage, StageSpec), f"stages[{index}]", "must be a StageSpec")
            stage.validate(f"stages[{index}]")
            stage.validate_input(w_in, f"stages[{index}]")
            w_in = stage.width
        blocks = sum(stage.depth for stage in self.stages)
        _check(blocks <= MAX_BLOCKS, "stages", f"{blocks:,} blocks in all; a network has at most {MAX_BLOCKS:,}")
        if self.test_resize is not None:  # None for all but scaled specs: sampling builds millions of specs
            _check(_is_int(self.test_resize) and self.resolution <= self.test_resize <= MAX_RESOLUTION,
                   "test_resize", f"must be an integer in [resolution, {MAX_RESOLUTION:,}] (the test image is "
                   f"centre-cropped to the resolution {self.resolution}), got {self.test_resize!r}")

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

    def stage_resolutions(self) -> list[int]:
        """The feature-map size (px) each stage runs at, as the builder's stem and strided 3x3s produce it."""
        def conv(size: int, kernel: int, stride: int) -> int:
            return (size + 2 * (kernel // 2) - kernel) // stride + 1

        size = conv(self.resolution, *STEM_FIRST_CONV[self.stem.type])
        if self.stem.pooled:
            size = conv(size, 3, 2)
        sizes = []
        for stage in self.stages:
            size = conv(size, 3, stage.stride)
            sizes.append(size)
        return sizes

    def block_widths(self) -> list[int]:
        """The output width of every block, in order (what the paper's per-block width plots show)."""
        return [s.width for s in self.stages for _ in range(s.depth)]

    def with_input(self, *, resolution: int | None = None, in_channels: int | None = None,
                   num_classes: int | None = None) -> "AnyNetSpec":
        """The same network for other data: a new input size, channel count or class count. A new resolution
        drops ``test_resize``, which was sized for the old one (the default follows the new one)."""
        changes = {k: v for k, v in (("resolution", resolution), ("in_channels", in_channels),
                                     ("num_classes", num_classes)) if v is not None}
        if changes.get("resolution", self.resolution) != self.resolution:
            changes["test_resize"] = None
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON data; ``test_resize`` only when set, so every other spec's JSON (and the study
        fingerprints built from it) is what it was before the field existed."""
        data = {
            "format": SPEC_FORMAT,
            "in_channels": self.in_channels,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "stem": dataclasses.asdict(self.stem),
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "head": dataclasses.asdict(self.head),
        }
        if self.test_resize is not None:
            data["test_resize"] = self.test_resize
        return data

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
        unknown = sorted(set(data) - {"in_channels", "resolution", "num_classes", "test_resize"})
        _check(not unknown, unknown[0] if unknown else "", "unknown key")
        return cls(stages=stages, stem=stem, head=head, **data)

    @classmethod
    def from_json(cls, text: str) -> "AnyNetSpec":
        return cls.from_dict(userfiles.parse_json(text, "spec"))


def dataclass_from_mapping(kind: type, data: Any, where: str) -> Any:
    """Construct a dataclass from a mapping (JSON, TOML), naming the first unknown or missing key."""
    _check(isinstance(data, dict), where, "must be a table / JSON object")
    fields = dataclasses.fields(kind)
    names = sorted(f.name for f in fields)
    unknown = sorted(set(data) - set(names))
    _check(not unknown, f"{where}.{unknown[0]}" if unknown else where, f"unknown key (known: {', '.join(names)})")
    required = {f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = sorted(required - set(data))
    _check(not missing, f"{where}.{missing[0]}" if missing else where, "missing")
    return kind(**data)


def _build(kind: type, data: Any, where: str) -> Any:
    value = dataclass_from_mapping(kind, data, where)
    value.validate(where)
    return value
