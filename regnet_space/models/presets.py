"""Published models of the ResNet family, named as torchvision and timm name them, as AnyNetSpecs.

Each is built exactly like the published model (same layers, same parameter count at 224x224 and 1000
classes), so the design-space choices they are made of (stem, stride placement, shortcut, SE, block type)
can be compared with the RegNet zoo on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .spec import AnyNetSpec, HeadSpec, StageSpec, StemSpec

# ResNet's stage "planes" (the bottleneck width of a plain ResNet) and the output expansion of each block.
_PLANES = (64, 128, 256, 512)
_EXPANSION = {"res_basic": 1, "res_bottleneck": 4, "resnest": 4, "res2net": 4}
_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


@dataclass(frozen=True)
class Preset:
    """A named published model: its family (for listings) and a zero-argument spec factory."""

    family: str
    build: Callable[[], AnyNetSpec]

    def __call__(self) -> AnyNetSpec:
        return self.build()


def resnet(layers: int, *, block: str = "res_bottleneck", deep_stem: bool = False, avg_down: bool = False,
           cardinality: int = 1, base_width: int = 64, se: bool = False, **options) -> AnyNetSpec:
    """A ResNet as timm's ``ResNet`` builds it (ResNet-B: stride on the 3x3).

    ``deep_stem`` = ResNet-C (3x3 stem 32/32/64), ``avg_down`` = ResNet-D shortcut, ``cardinality`` and
    ``base_width`` = ResNeXt (bottleneck width floor(planes * base_width / 64) * cardinality),
    ``se`` = SE-ResNet (SE after the last BN, C/16 made divisible by 8); ``options`` are further StageSpec
    fields (ResNeSt's radix and avd, Res2Net's scale). ``block="res_basic"`` for ResNet-18/34.
    """
    stages = []
    for i, (depth, planes) in enumerate(zip(_DEPTHS[layers], _PLANES)):
        width = planes * _EXPANSION[block]
        stage = {"depth": depth, "width": width, "stride": 1 if i == 0 else 2, "block": block}
        if block != "res_basic":
            split = planes * base_width // 64 * cardinality
            bottleneck = split * options.get("scale", 1)
            stage.update(bottleneck_ratio=width / bottleneck, group_width=split // cardinality if cardinality > 1 else 0)
        if avg_down:
            stage["shortcut"] = "avgpool"
        if se:
            stage.update(se_ratio=1 / 16, se_style="resnet")
        stages.append(StageSpec(**stage, **options))
    stem = StemSpec("deep", 64, (32, 32)) if deep_stem else StemSpec("resnet", 64)
    return AnyNetSpec(stages=tuple(stages), stem=stem)


def shufflenet_v2(widths: tuple[int, int, int], head_width: int = 1024) -> AnyNetSpec:
    """torchvision's ShuffleNetV2: 3x3 s2 stem of 24 + max-pool, stages of 4/8/4 units, conv5, classifier."""
    stages = tuple(StageSpec(depth=d, width=w, block="shufflenet_v2") for d, w in zip((4, 8, 4), widths))
    return AnyNetSpec(stages=stages, stem=StemSpec("shufflenet", 24), head=HeadSpec(width=head_width))


def shufflenet_v1(groups: int, stem_width: int, widths: tuple[int, int, int]) -> AnyNetSpec:
    """megvii's ShuffleNetV1: 3x3 s2 stem + max-pool, stages of 4/8/4 units with bottleneck width / 4,
    ``groups`` groups in the 1x1 convs, and a classifier without bias."""
    stages = tuple(StageSpec(depth=d, width=w, block="shufflenet_v1", bottleneck_ratio=4, group_width=w // 4 // groups)
                   for d, w in zip((4, 8, 4), widths))
    return AnyNetSpec(stages=stages, stem=StemSpec("shufflenet", stem_width), head=HeadSpec(bias=False))


PRESETS: dict[str, Preset] = {
    "resnet18": Preset("ResNet", lambda: resnet(18, block="res_basic")),
    "resnet34": Preset("ResNet", lambda: resnet(34, block="res_basic")),
    "resnet50": Preset("ResNet", lambda: resnet(50)),
    "resnet101": Preset("ResNet", lambda: resnet(101)),
    "resnet18d": Preset("ResNet-D", lambda: resnet(18, block="res_basic", deep_stem=True, avg_down=True)),
    "resnet50c": Preset("ResNet-C", lambda: resnet(50, deep_stem=True)),
    "resnet50d": Preset("ResNet-D", lambda: resnet(50, deep_stem=True, avg_down=True)),
    "seresnet50": Preset("SE-ResNet", lambda: resnet(50, se=True)),
    "resnext50_32x4d": Preset("ResNeXt", lambda: resnet(50, cardinality=32, base_width=4)),
    "seresnext50_32x4d": Preset("SE-ResNeXt", lambda: resnet(50, cardinality=32, base_width=4, se=True)),
    "resnest50d": Preset("ResNeSt", lambda: resnet(50, block="resnest", deep_stem=True, avg_down=True,
                                                   radix=2, avd=True)),
    "res2net50_26w_4s": Preset("Res2Net", lambda: resnet(50, block="res2net", base_width=26, scale=4)),
    "res2net50_48w_2s": Preset("Res2Net", lambda: resnet(50, block="res2net", base_width=48, scale=2)),
    "shufflenet_v2_x0_5": Preset("ShuffleNet v2", lambda: shufflenet_v2((48, 96, 192))),
    "shufflenet_v2_x1_0": Preset("ShuffleNet v2", lambda: shufflenet_v2((116, 232, 464))),
    "shufflenet_v1_g3_x1_0": Preset("ShuffleNet v1", lambda: shufflenet_v1(3, 24, (240, 480, 960))),
}
