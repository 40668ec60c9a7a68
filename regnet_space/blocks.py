"""Residual blocks, each next to the analytic count of exactly the layers it builds.

Every block class takes ``(w_in, stage, stride)`` and has a static ``count(cx, w_in, stage, stride)`` that
walks the same layers on a ComplexityCounter. Tests hold the two equal (params, and flops against
PyTorch's FlopCounterMode), so keep them side by side when changing either.
"""

from __future__ import annotations

import torch
from torch import nn

from .complexity import ComplexityCounter
from .spec import StageSpec


def conv_bn(c_in: int, c_out: int, kernel: int, *, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    """conv (no bias) -> BN [-> ReLU], the unit every block is made of."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def count_conv_bn(cx: ComplexityCounter, c_in: int, c_out: int, kernel: int, *, stride: int = 1,
                  groups: int = 1, relu: bool = True) -> None:
    cx.conv(c_in, c_out, kernel, stride=stride, groups=groups)
    cx.batch_norm(c_out)
    if relu:
        cx.elementwise(c_out)


class SqueezeExcite(nn.Module):
    """SE: global mean -> 1x1 conv (bias) -> ReLU -> 1x1 conv (bias) -> sigmoid -> scale the input."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = torch.sigmoid(self.expand(torch.relu(self.reduce(s))))
        return x * s

    @staticmethod
    def count(cx: ComplexityCounter, channels: int, reduced: int) -> None:
        with cx.branch():
            cx.global_pool(channels)
            cx.conv(channels, reduced, 1, bias=True)
            cx.elementwise(reduced)
            cx.conv(reduced, channels, 1, bias=True)
            cx.elementwise(channels)
        cx.elementwise(channels, inputs=2)


def needs_projection(w_in: int, w_out: int, stride: int) -> bool:
    return w_in != w_out or stride != 1


class Shortcut(nn.Module):
    """Identity, or a strided 1x1 conv + BN when the width or resolution changes."""

    def __init__(self, w_in: int, w_out: int, stride: int) -> None:
        super().__init__()
        self.proj = conv_bn(w_in, w_out, 1, stride=stride, relu=False) if needs_projection(w_in, w_out, stride) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.proj is None else self.proj(x)

    @staticmethod
    def count(cx: ComplexityCounter, w_in: int, w_out: int, stride: int) -> None:
        if needs_projection(w_in, w_out, stride):
            with cx.branch():
                count_conv_bn(cx, w_in, w_out, 1, stride=stride, relu=False)


class VanillaBlock(nn.Module):
    """3x3 conv, BN, ReLU, 3x3 conv, BN, ReLU; no residual (the paper's V block)."""

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        self.a = conv_bn(w_in, stage.width, 3, stride=stride)
        self.b = conv_bn(stage.width, stage.width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))

    @staticmethod
    def count(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
        count_conv_bn(cx, w_in, stage.width, 3, stride=stride)
        count_conv_bn(cx, stage.width, stage.width, 3)


class ResBasicBlock(nn.Module):
    """3x3 conv, BN, ReLU, 3x3 conv, BN, + shortcut, ReLU (ResNet-18/34's basic block; the paper's R block)."""

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        self.shortcut = Shortcut(w_in, stage.width, stride)
        self.a = conv_bn(w_in, stage.width, 3, stride=stride)
        self.b = conv_bn(stage.width, stage.width, 3, relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.shortcut(x) + self.b(self.a(x)))

    def residual_norm(self) -> nn.BatchNorm2d:
        """The last BN of the residual branch, zero-initialised so the block starts as the identity."""
        return self.b[1]

    @staticmethod
    def count(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
        Shortcut.count(cx, w_in, stage.width, stride)
        count_conv_bn(cx, w_in, stage.width, 3, stride=stride)
        count_conv_bn(cx, stage.width, stage.width, 3, relu=False)
        cx.elementwise(stage.width, inputs=2)
        cx.elementwise(stage.width)


class ResBottleneckBlock(nn.Module):
    """The X block: 1x1, grouped 3x3 (stride here: ResNet-B), [SE: the Y block], 1x1, + shortcut, ReLU."""

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        w_b, w_out = stage.bottleneck_width, stage.width
        self.shortcut = Shortcut(w_in, w_out, stride)
        self.a = conv_bn(w_in, w_b, 1)
        self.b = conv_bn(w_b, w_b, 3, stride=stride, groups=stage.groups)
        self.se = SqueezeExcite(w_b, se_width(w_in, stage)) if stage.se_ratio else nn.Identity()
        self.c = conv_bn(w_b, w_out, 1, relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.shortcut(x) + self.c(self.se(self.b(self.a(x)))))

    def residual_norm(self) -> nn.BatchNorm2d:
        return self.c[1]

    @staticmethod
    def count(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
        w_b, w_out = stage.bottleneck_width, stage.width
        Shortcut.count(cx, w_in, w_out, stride)
        count_conv_bn(cx, w_in, w_b, 1)
        count_conv_bn(cx, w_b, w_b, 3, stride=stride, groups=stage.groups)
        if stage.se_ratio:
            SqueezeExcite.count(cx, w_b, se_width(w_in, stage))
        count_conv_bn(cx, w_b, w_out, 1, relu=False)
        cx.elementwise(w_out, inputs=2)
        cx.elementwise(w_out)


def se_width(w_in: int, stage: StageSpec) -> int:
    """RegNetY's SE width: relative to the block's *input* width (pycls#80), at least 1 channel."""
    return max(1, int(round(stage.se_ratio * w_in)))


BLOCKS: dict[str, type[nn.Module]] = {
    "vanilla": VanillaBlock,
    "res_basic": ResBasicBlock,
    "res_bottleneck": ResBottleneckBlock,
}
