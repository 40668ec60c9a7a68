"""Residual blocks as PyTorch modules.

Every block class takes ``(w_in, stage, stride)``; ``complexity.py`` has the analytic count of exactly the layers
each one builds (``counts.BLOCK_COUNTS``, kept apart so that counting needs no PyTorch). Tests hold the two
equal (params, and flops against PyTorch's FlopCounterMode), so change them together.

The blocks follow the published models of the ResNet family (torchvision, timm and the papers' own code):
ResNet basic and bottleneck (with ResNet-A/B stride placement, ResNet-D shortcut, SE-ResNet and RegNetY SE,
ResNeXt groups), ShuffleNet v1 and v2 units, ResNeSt's split-attention bottleneck and Res2Net's bottleneck.
"""

from __future__ import annotations

import torch
from torch import nn

from .complexity import (se_reduced, shufflenet_v1_first_groups, needs_projection, split_attention_width,
                     stride_split)
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


def avg_pool3x3(stride: int) -> nn.AvgPool2d:
    """The 3x3 average pool (padding 1, padding counted) of ShuffleNet v1, ResNeSt's avd and Res2Net."""
    return nn.AvgPool2d(3, stride=stride, padding=1)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups so the next grouped conv sees every group (ShuffleNet)."""
    batch, channels, height, width = x.shape
    return x.view(batch, groups, channels // groups, height, width).transpose(1, 2).reshape(batch, channels, height, width)


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



def squeeze_excite(stage: StageSpec, w_in: int, channels: int, position: str) -> nn.Module:
    """The stage's SE on ``channels`` if its style puts one at ``position`` ("mid" or "end"), else Identity."""
    reduced = se_reduced(stage, w_in, channels, position)
    return SqueezeExcite(channels, reduced) if reduced else nn.Identity()


class Shortcut(nn.Module):
    """Identity, or a projection when the width or resolution changes: a strided 1x1 conv + BN (``conv``),
    or ResNet-D's 2x2 average pool (ceil mode, padding not counted) then a 1x1 conv + BN (``avgpool``)."""

    def __init__(self, w_in: int, w_out: int, stride: int, style: str = "conv") -> None:
        super().__init__()
        self.proj: nn.Module | None = None
        if not needs_projection(w_in, w_out, stride):
            return
        if style == "conv":
            self.proj = conv_bn(w_in, w_out, 1, stride=stride, relu=False)
        else:
            pool = (nn.AvgPool2d(2, stride=stride, ceil_mode=True, count_include_pad=False)
                    if stride > 1 else nn.Identity())
            self.proj = nn.Sequential(pool, conv_bn(w_in, w_out, 1, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.proj is None else self.proj(x)



class VanillaBlock(nn.Module):
    """3x3 conv, BN, ReLU, 3x3 conv, BN, ReLU; no residual (the paper's V block)."""

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        self.a = conv_bn(w_in, stage.width, 3, stride=stride)
        self.b = conv_bn(stage.width, stage.width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))



class ResBasicBlock(nn.Module):
    """3x3 conv, BN, ReLU, [SE], 3x3 conv, BN, [SE], + shortcut, ReLU (ResNet-18/34; the paper's R block)."""

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        w_out = stage.width
        self.shortcut = Shortcut(w_in, w_out, stride, stage.shortcut)
        self.a = conv_bn(w_in, w_out, 3, stride=stride)
        self.se = squeeze_excite(stage, w_in, w_out, "mid")
        self.b = conv_bn(w_out, w_out, 3, relu=False)
        self.se_out = squeeze_excite(stage, w_in, w_out, "end")
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.shortcut(x) + self.se_out(self.b(self.se(self.a(x)))))

    def residual_norm(self) -> nn.BatchNorm2d:
        """The last BN of the residual branch, zero-initialised so the block starts as the identity."""
        return self.b[1]



class ResBottleneckBlock(nn.Module):
    """1x1, grouped 3x3, [SE: RegNetY], 1x1, BN, [SE: SE-ResNet], + shortcut, ReLU.

    The X block of RegNet, ResNet-50's bottleneck (b = 4) and ResNeXt's (grouped 3x3); the stride sits on
    the 3x3 (ResNet-B) or the first 1x1 (ResNet-A).
    """

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        w_b, w_out = stage.bottleneck_width, stage.width
        stride_1x1, stride_3x3 = stride_split(stage, stride)
        self.shortcut = Shortcut(w_in, w_out, stride, stage.shortcut)
        self.a = conv_bn(w_in, w_b, 1, stride=stride_1x1)
        self.b = conv_bn(w_b, w_b, 3, stride=stride_3x3, groups=stage.groups)
        self.se = squeeze_excite(stage, w_in, w_b, "mid")
        self.c = conv_bn(w_b, w_out, 1, relu=False)
        self.se_out = squeeze_excite(stage, w_in, w_out, "end")
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.shortcut(x) + self.se_out(self.c(self.se(self.b(self.a(x))))))

    def residual_norm(self) -> nn.BatchNorm2d:
        return self.c[1]



class SplitAttention(nn.Module):
    """ResNeSt's split-attention conv: ``radix`` grouped 3x3 convs (one conv of width * radix), weighted per
    channel by a softmax over the radix (a sigmoid when radix is 1) computed from their pooled sum."""

    def __init__(self, width: int, stride: int, groups: int, radix: int) -> None:
        super().__init__()
        self.radix, self.groups = radix, groups
        attention = split_attention_width(width, radix, groups)
        self.conv = conv_bn(width, width * radix, 3, stride=stride, groups=groups * radix)
        self.fc1 = nn.Conv2d(width, attention, 1, groups=groups)
        self.bn = nn.BatchNorm2d(attention)
        self.fc2 = nn.Conv2d(attention, width * radix, 1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        batch, channels, height, width = x.shape
        splits = x.view(batch, self.radix, channels // self.radix, height, width)
        pooled = splits.sum(1).mean((2, 3), keepdim=True)
        logits = self.fc2(torch.relu(self.bn(self.fc1(pooled))))
        if self.radix == 1:
            return x * torch.sigmoid(logits)
        # fc2's channels are (cardinality, radix, width / cardinality); the softmax runs over the radix.
        weights = logits.view(batch, self.groups, self.radix, -1).transpose(1, 2).softmax(dim=1)
        return (splits * weights.reshape(batch, self.radix, -1, 1, 1)).sum(1)



class ResNeStBlock(nn.Module):
    """ResNeSt's bottleneck: 1x1, split-attention 3x3, [SE], 1x1, BN, [SE], + shortcut, ReLU.

    With ``avd`` a strided block runs its 3x3 at stride 1 and downsamples with a 3x3 average pool after it
    (before it with ``avd_first``, the "fast" variants), as timm's resnest models do.
    """

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        w_b, w_out = stage.bottleneck_width, stage.width
        stride_1x1, stride_3x3 = stride_split(stage, stride)
        avd = stage.avd and stride_3x3 > 1
        self.shortcut = Shortcut(w_in, w_out, stride, stage.shortcut)
        self.a = conv_bn(w_in, w_b, 1, stride=stride_1x1)
        self.pool_first = avg_pool3x3(stride_3x3) if avd and stage.avd_first else nn.Identity()
        self.b = SplitAttention(w_b, 1 if avd else stride_3x3, stage.groups, stage.radix)
        self.pool_last = avg_pool3x3(stride_3x3) if avd and not stage.avd_first else nn.Identity()
        self.se = squeeze_excite(stage, w_in, w_b, "mid")
        self.c = conv_bn(w_b, w_out, 1, relu=False)
        self.se_out = squeeze_excite(stage, w_in, w_out, "end")
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.se(self.pool_last(self.b(self.pool_first(self.a(x)))))
        return self.relu(self.shortcut(x) + self.se_out(self.c(y)))

    def residual_norm(self) -> nn.BatchNorm2d:
        return self.c[1]



class Res2NetBlock(nn.Module):
    """Res2Net's bottleneck: 1x1, then ``scale`` chunks where each 3x3 also sees the previous one's output
    (hierarchical residuals), [SE], 1x1, BN, [SE], + shortcut, ReLU.

    The last chunk passes through; in a stage's first block (one with a projection shortcut) it is
    average-pooled instead and the chunks are not chained, as in timm and the original code.
    """

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        w_b, w_out, split = stage.bottleneck_width, stage.width, stage.conv_width
        stride_1x1, stride_3x3 = stride_split(stage, stride)
        self.split = split
        self.first = needs_projection(w_in, w_out, stride)
        self.shortcut = Shortcut(w_in, w_out, stride, stage.shortcut)
        self.a = conv_bn(w_in, w_b, 1, stride=stride_1x1)
        self.convs = nn.ModuleList(conv_bn(split, split, 3, stride=stride_3x3, groups=stage.groups)
                                   for _ in range(stage.scale - 1))
        self.pool = avg_pool3x3(stride_3x3) if self.first else nn.Identity()
        self.se = squeeze_excite(stage, w_in, w_b, "mid")
        self.c = conv_bn(w_b, w_out, 1, relu=False)
        self.se_out = squeeze_excite(stage, w_in, w_out, "end")
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(self.a(x), self.split, dim=1)
        outputs: list[torch.Tensor] = []
        for i, conv in enumerate(self.convs):
            outputs.append(conv(chunks[i] if i == 0 or self.first else outputs[-1] + chunks[i]))
        outputs.append(self.pool(chunks[-1]))
        y = self.se(torch.cat(outputs, dim=1))
        return self.relu(self.shortcut(x) + self.se_out(self.c(y)))

    def residual_norm(self) -> nn.BatchNorm2d:
        return self.c[1]



class ShuffleNetV1Block(nn.Module):
    """ShuffleNet v1's unit: grouped 1x1, BN, ReLU, depthwise 3x3, BN, channel shuffle, [SE], grouped 1x1, BN,
    [SE]; then + input and ReLU, or, when it downsamples, concatenated after a 3x3 average pool of the input."""

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        w_b, groups = stage.bottleneck_width, stage.groups
        self.groups = groups
        self.concat = needs_projection(w_in, stage.width, stride)
        w_out = stage.width - w_in if self.concat else stage.width
        self.a = conv_bn(w_in, w_b, 1, groups=shufflenet_v1_first_groups(w_in, stage))
        self.b = conv_bn(w_b, w_b, 3, stride=stride, groups=w_b, relu=False)
        self.se = squeeze_excite(stage, w_in, w_b, "mid")
        self.c = conv_bn(w_b, w_out, 1, groups=groups, relu=False)
        self.se_out = squeeze_excite(stage, w_in, w_out, "end")
        self.pool = avg_pool3x3(stride) if self.concat and stride > 1 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(self.a(x))
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        y = self.se_out(self.c(self.se(y)))
        if self.concat:
            return torch.cat((self.pool(x), self.relu(y)), dim=1)
        return self.relu(x + y)

    def residual_norm(self) -> nn.BatchNorm2d | None:
        return None if self.concat else self.c[1]



class ShuffleNetV2Block(nn.Module):
    """ShuffleNet v2's unit (torchvision's layout): split the channels in halves, pass one through and run the
    other through 1x1, BN, ReLU, depthwise 3x3, BN, [SE], 1x1, BN, [SE], [+ its input], ReLU; concatenate and
    shuffle. A downsampling unit feeds the whole input to both halves, the passed one through a depthwise 3x3
    and a 1x1. ``residual`` (the paper's appendix variant) applies to the units that do not downsample."""

    def __init__(self, w_in: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        half = stage.width // 2
        self.downsample = needs_projection(w_in, stage.width, stride)
        self.residual = stage.residual and not self.downsample
        branch_in = w_in if self.downsample else half
        self.proj = nn.Sequential(conv_bn(w_in, w_in, 3, stride=stride, groups=w_in, relu=False),
                                  conv_bn(w_in, half, 1)) if self.downsample else nn.Identity()
        self.a = conv_bn(branch_in, half, 1)
        self.b = conv_bn(half, half, 3, stride=stride, groups=half, relu=False)
        self.se = squeeze_excite(stage, w_in, half, "mid")
        self.c = conv_bn(half, half, 1, relu=False)
        self.se_out = squeeze_excite(stage, w_in, half, "end")
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        passed, branch_in = (x, x) if self.downsample else x.chunk(2, dim=1)
        y = self.se_out(self.c(self.se(self.b(self.a(branch_in)))))
        if self.residual:
            y = y + branch_in
        return channel_shuffle(torch.cat((self.proj(passed), self.relu(y)), dim=1), 2)

    def residual_norm(self) -> nn.BatchNorm2d | None:
        return self.c[1] if self.residual else None



BLOCKS: dict[str, type[nn.Module]] = {
    "vanilla": VanillaBlock,
    "res_basic": ResBasicBlock,
    "res_bottleneck": ResBottleneckBlock,
    "shufflenet_v1": ShuffleNetV1Block,
    "shufflenet_v2": ShuffleNetV2Block,
    "resnest": ResNeStBlock,
    "res2net": Res2NetBlock,
}
