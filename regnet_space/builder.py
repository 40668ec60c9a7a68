"""Build a torch.nn.Module from an AnyNetSpec, and count its complexity from the spec alone.

``build_model`` and ``complexity`` walk the same structure (stem, stages of blocks, head); the per-layer
rules live beside each module in ``blocks.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from .blocks import BLOCKS, conv_bn, count_conv_bn
from .complexity import Complexity, ComplexityCounter
from .spec import AnyNetSpec, StemSpec


class Stem(nn.Module):
    """``simple``: 3x3 s2; ``resnet``: 7x7 s2 + 3x3 s2 max-pool; ``cifar``: 3x3 s1. Each conv -> BN -> ReLU."""

    def __init__(self, in_channels: int, stem: StemSpec) -> None:
        super().__init__()
        kernel, stride = {"simple": (3, 2), "resnet": (7, 2), "cifar": (3, 1)}[stem.type]
        self.conv = conv_bn(in_channels, stem.width, kernel, stride=stride)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1) if stem.type == "resnet" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))

    @staticmethod
    def count(cx: ComplexityCounter, in_channels: int, stem: StemSpec) -> None:
        kernel, stride = {"simple": (3, 2), "resnet": (7, 2), "cifar": (3, 1)}[stem.type]
        count_conv_bn(cx, in_channels, stem.width, kernel, stride=stride)
        if stem.type == "resnet":
            cx.pool(stem.width, 3, 2, 1)


class Head(nn.Module):
    """Global average pool + linear classifier."""

    def __init__(self, w_in: int, num_classes: int, bias: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(w_in, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))

    @staticmethod
    def count(cx: ComplexityCounter, w_in: int, num_classes: int, bias: bool) -> None:
        cx.global_pool(w_in)
        cx.linear(w_in, num_classes, bias=bias)


class AnyNet(nn.Module):
    """stem -> stages (``s1``..``sN``, blocks ``b1``..) -> head, built from an AnyNetSpec kept as ``.spec``."""

    def __init__(self, spec: AnyNetSpec) -> None:
        super().__init__()
        self.spec = spec
        self.stem = Stem(spec.in_channels, spec.stem)
        stages = []
        for w_in, stage in _stage_inputs(spec):
            block = BLOCKS[stage.block]
            blocks = [block(w_in if i == 0 else stage.width, stage, stage.stride if i == 0 else 1)
                      for i in range(stage.depth)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = Head(spec.stages[-1].width, spec.num_classes, spec.head.bias)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def _stage_inputs(spec: AnyNetSpec):
    """(input width, stage) for every stage."""
    w_in = spec.stem.width
    for stage in spec.stages:
        yield w_in, stage
        w_in = stage.width


def _init_weights(model: nn.Module) -> None:
    """He init (fan-out) for convs, N(0, 0.01) for the classifier; the last BN of each residual branch
    starts at zero so every block begins as the identity (as pycls and timm do)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
            nn.init.normal_(module.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for module in model.modules():
        if hasattr(module, "residual_norm"):
            nn.init.zeros_(module.residual_norm().weight)


def complexity(spec: AnyNetSpec) -> Complexity:
    """Flops, params, acts and MAC of the network the spec describes, without building it."""
    cx = ComplexityCounter(spec.resolution)
    Stem.count(cx, spec.in_channels, spec.stem)
    for w_in, stage in _stage_inputs(spec):
        block = BLOCKS[stage.block]
        for i in range(stage.depth):
            block.count(cx, w_in if i == 0 else stage.width, stage, stage.stride if i == 0 else 1)
    Head.count(cx, spec.stages[-1].width, spec.num_classes, spec.head.bias)
    return cx.result()


def build_model(model: "AnyNetSpec | str | Path", **input_overrides: int) -> AnyNet:
    """Build the network for a spec, a catalog name or a JSON file (AnyNetSpec, RegNet config or best.json).

    ``input_overrides`` (resolution, in_channels, num_classes) adapt it to other data.
    """
    from .resolve import resolve_model

    spec = model if isinstance(model, AnyNetSpec) else resolve_model(str(model), **input_overrides)
    if input_overrides and isinstance(model, AnyNetSpec):
        spec = spec.with_input(**input_overrides)
    return AnyNet(spec)
