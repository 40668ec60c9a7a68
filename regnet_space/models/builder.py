"""Build a torch.nn.Module from an AnyNetSpec.

``build_model`` walks the structure (stem, stages of blocks, head) that ``counts.complexity`` counts from the
spec alone; the per-layer counts are in ``complexity.py``, one function per module built here and in ``blocks.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from .blocks import BLOCKS, conv_bn
from .complexity import stage_inputs
from .spec import STEM_FIRST_CONV, AnyNetSpec, HeadSpec, StemSpec


class Stem(nn.Module):
    """The stem convs (each conv -> BN -> ReLU), then a 3x3 s2 max-pool for the pooled types (see StemSpec)."""

    def __init__(self, in_channels: int, stem: StemSpec) -> None:
        super().__init__()
        kernel, stride = STEM_FIRST_CONV[stem.type]
        widths = stem.conv_widths
        self.conv = conv_bn(in_channels, widths[0], kernel, stride=stride)
        self.deep = nn.Sequential(*(conv_bn(c_in, c_out, 3) for c_in, c_out in zip(widths, widths[1:])))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1) if stem.pooled else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.deep(self.conv(x)))


class Head(nn.Module):
    """[1x1 conv + BN + ReLU (ShuffleNet v2's conv5)] -> global average pool -> linear classifier."""

    def __init__(self, w_in: int, head: HeadSpec, num_classes: int) -> None:
        super().__init__()
        self.conv = conv_bn(w_in, head.width, 1) if head.width else nn.Identity()
        self.fc = nn.Linear(head.width or w_in, num_classes, bias=head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


class AnyNet(nn.Module):
    """stem -> stages (``s1``..``sN``, blocks ``b1``..) -> head, built from an AnyNetSpec kept as ``.spec``."""

    def __init__(self, spec: AnyNetSpec) -> None:
        super().__init__()
        self.spec = spec
        self.stem = Stem(spec.in_channels, spec.stem)
        stages = []
        for w_in, stage in stage_inputs(spec):
            block = BLOCKS[stage.block]
            blocks = [block(w_in if i == 0 else stage.width, stage, stage.stride if i == 0 else 1)
                      for i in range(stage.depth)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = Head(spec.stages[-1].width, spec.head, spec.num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


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
        norm = module.residual_norm() if hasattr(module, "residual_norm") else None
        if norm is not None:
            nn.init.zeros_(norm.weight)


def build_model(model: "AnyNetSpec | str | Path", **input_overrides: int) -> AnyNet:
    """Build the network for a spec, a catalog name or a JSON file (AnyNetSpec, RegNet config or best.json).

    ``input_overrides`` (resolution, in_channels, num_classes) adapt it to other data.
    """
    from .resolve import resolve_model

    spec = model if isinstance(model, AnyNetSpec) else resolve_model(str(model), **input_overrides)
    if input_overrides and isinstance(model, AnyNetSpec):
        spec = spec.with_input(**input_overrides)
    return AnyNet(spec)
