"""RegNet: a thin generator over AnyNetSpec.

Per-block widths follow the linear rule u_j = w0 + wa*j, quantized in log space to powers of wm
(s_j = log(u_j / w0) / log(wm), k_j = round(s_j), w_j = q * round(w0 * wm**k_j / q)); stages are the runs
of equal widths. Rounding is half to even (Python's ``round``), which the published models depend on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from .spec import MAX_WIDTH, STEM_TYPES, AnyNetSpec, StageSpec, StemSpec, dataclass_from_mapping


def quantized_block_widths(depth: int, w0: float, wa: float, wm: float, q: int = 8) -> list[int]:
    """The quantized width of each of the ``depth`` blocks."""
    widths = []
    for j in range(depth):
        u = w0 + wa * j
        k = round(math.log(u / w0) / math.log(wm))
        widths.append(q * round(w0 * wm**k / q))
    return widths


def runs(values: list[int]) -> tuple[list[int], list[int]]:
    """Collapse a per-block list into (stage values, stage depths): the runs of equal values."""
    stage_values: list[int] = []
    depths: list[int] = []
    for value in values:
        if stage_values and stage_values[-1] == value:
            depths[-1] += 1
        else:
            stage_values.append(value)
            depths.append(1)
    return stage_values, depths


def make_compatible(widths: list[int], bottleneck_ratios: list[float], group_widths: list[int]
                    ) -> tuple[list[int], list[int]]:
    """Adjust widths and group widths so each group width divides its bottleneck width.

    For each stage: g = min(g, w/b), then the bottleneck width w/b is rounded (half to even) to a multiple
    of g (at least g) and the width becomes that times b. Returns (widths, group_widths).
    """
    new_widths, new_groups = [], []
    for w, b, g in zip(widths, bottleneck_ratios, group_widths):
        bottleneck = max(1, int(round(w / b)))
        g = min(g, bottleneck)
        multiple = math.lcm(g, int(1 / b)) if b < 1 and float(1 / b).is_integer() else g
        bottleneck = max(multiple, int(round(bottleneck / multiple) * multiple))
        new_widths.append(int(round(bottleneck * b)))
        new_groups.append(g)
    return new_widths, new_groups


_IMAGENET_FORM = {"stem_type": "simple", "first_stride": 2}
# Far beyond any published network, and small enough that widths, flops and tensors stay representable (the
# width limit is every AnyNet's: see spec.py).
MAX_DEPTH = 1_000


@dataclass(frozen=True)
class RegNetParams:
    """The six RegNet parameters (+ SE ratio and the stem). ``bottleneck_ratio`` is the paper's b.

    ``stem_type`` and ``first_stride`` say which input form the network takes: the ImageNet form (a 3x3
    stride-2 ``simple`` stem, every stage stride 2) or the small-image form of pycls's CIFAR networks
    (a 3x3 stride-1 ``cifar`` stem, the first stage stride 1), so a config rebuilds the network that was trained.
    """

    depth: int
    w0: float
    wa: float
    wm: float
    group_width: int
    bottleneck_ratio: float = 1.0
    se_ratio: float = 0.0
    stem_width: int = 32
    q: int = 8
    stem_type: str = "simple"
    first_stride: int = 2

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def bad(name: str, message: str) -> UserError:
            return UserError(f"regnet.{name}: {message}, got {getattr(self, name)!r}")

        for name in ("depth", "group_width", "stem_width", "q", "first_stride"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad(name, "must be an integer")
        for name in ("w0", "wa", "wm", "bottleneck_ratio", "se_ratio"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise bad(name, "must be a finite number")
        if self.depth < 1:
            raise bad("depth", "must be >= 1")
        if self.q < 1:
            raise bad("q", "must be >= 1")
        if not (self.w0 > 0 and float(self.w0) % self.q == 0):
            raise bad("w0", f"must be > 0 and a multiple of q={self.q}")
        if self.w0 > MAX_WIDTH:
            raise bad("w0", f"must be <= {MAX_WIDTH:,} (no layer of a real network is that wide)")
        if not 0 <= self.wa <= MAX_WIDTH:
            raise bad("wa", f"must be in [0, {MAX_WIDTH:,}]")
        if self.depth > MAX_DEPTH:
            raise bad("depth", f"must be <= {MAX_DEPTH:,}")
        if self.wm <= 1:
            raise bad("wm", "must be > 1")
        if self.group_width < 1:
            raise bad("group_width", "must be >= 1")
        if self.bottleneck_ratio <= 0:
            raise bad("bottleneck_ratio", "must be > 0")
        if not 0 <= self.se_ratio <= 1:
            raise bad("se_ratio", "must be in [0, 1]")
        if self.stem_width < 1:
            raise bad("stem_width", "must be >= 1")
        if self.stem_type not in STEM_TYPES:
            raise bad("stem_type", f"must be one of {', '.join(STEM_TYPES)}")
        if self.first_stride not in (1, 2) or isinstance(self.first_stride, bool):
            raise bad("first_stride", "must be 1 or 2")

    def stages(self) -> tuple[list[int], list[int], list[int]]:
        """(widths, depths, group widths) per stage, after quantization and group compatibility."""
        widths, depths = runs(quantized_block_widths(self.depth, self.w0, self.wa, self.wm, self.q))
        n = len(widths)
        widths, group_widths = make_compatible(widths, [self.bottleneck_ratio] * n, [self.group_width] * n)
        return widths, depths, group_widths

    def to_spec(self, *, resolution: int = 224, in_channels: int = 3, num_classes: int = 1000) -> AnyNetSpec:
        widths, depths, group_widths = self.stages()
        stages = tuple(
            StageSpec(depth=d, width=w, stride=self.first_stride if i == 0 else 2,
                      bottleneck_ratio=self.bottleneck_ratio, group_width=g, block="res_bottleneck",
                      se_ratio=self.se_ratio)
            for i, (w, d, g) in enumerate(zip(widths, depths, group_widths))
        )
        return AnyNetSpec(stages=stages, stem=StemSpec(self.stem_type, self.stem_width), resolution=resolution,
                          in_channels=in_channels, num_classes=num_classes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; the input-form fields only when they differ from the ImageNet form, so the
        published configs read as pycls writes them."""
        data = dataclasses.asdict(self)
        for name in ("stem_type", "first_stride"):
            if data[name] == _IMAGENET_FORM[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RegNetParams":
        return dataclass_from_mapping(cls, data, "regnet")
