"""``complexity(spec)``: a whole network's flops, params, acts and MAC, from its spec alone (the public face of the
counting; ``counter.py`` holds the per-layer tally and the conventions). Here is the analytic count of every layer
the builder makes, stems, heads and each block type, walked on a ComplexityCounter; without PyTorch, so that
sampling and analysis never import it.

Each ``count_*`` function walks exactly the layers its module in ``blocks.py``/``builder.py`` builds (the block
of the same name in ``BLOCK_COUNTS`` and ``blocks.BLOCKS``). Tests hold the two equal (params, and flops against
PyTorch's FlopCounterMode), so change them together.
"""

from __future__ import annotations

import math

from .counter import Complexity, ComplexityCounter
from .spec import STEM_FIRST_CONV, AnyNetSpec, HeadSpec, StageSpec, StemSpec


def count_conv_bn(cx: ComplexityCounter, c_in: int, c_out: int, kernel: int, *, stride: int = 1,
                  groups: int = 1, relu: bool = True) -> None:
    cx.conv(c_in, c_out, kernel, stride=stride, groups=groups)
    cx.batch_norm(c_out)
    if relu:
        cx.elementwise(c_out)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.0) -> int:
    """The nearest multiple of ``divisor`` (halves up), at least ``min_value`` (default: the divisor); one
    step more if rounding lost more than ``1 - round_limit`` of the value (timm's rule for SE widths)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def stride_split(stage: StageSpec, stride: int) -> tuple[int, int]:
    """(stride of the first 1x1, stride of the 3x3): ResNet-B puts it on the 3x3, ResNet-A on the 1x1."""
    return (1, stride) if stage.stride_on == "3x3" else (stride, 1)


def count_se(cx: ComplexityCounter, channels: int, reduced: int) -> None:
    with cx.branch():
        cx.global_pool(channels)
        cx.conv(channels, reduced, 1, bias=True)
        cx.elementwise(reduced)
        cx.conv(reduced, channels, 1, bias=True)
        cx.elementwise(channels)
    cx.elementwise(channels, inputs=2)


def se_width(w_in: int, stage: StageSpec) -> int:
    """RegNetY's SE width: relative to the block's *input* width (pycls#80), at least 1 channel."""
    return max(1, int(round(stage.se_ratio * w_in)))


# Where each SE style sits: "mid" = after the 3x3 (RegNetY), "end" = after the last BN (SE-ResNet).
_SE_POSITION = {"regnet": "mid", "resnet": "end"}


def se_reduced(stage: StageSpec, w_in: int, channels: int, position: str) -> int:
    """The SE's reduced width at ``position``, or 0 when the stage has no SE there."""
    if not stage.se_ratio or _SE_POSITION[stage.se_style] != position:
        return 0
    if stage.se_style == "regnet":
        return se_width(w_in, stage)
    return make_divisible(stage.se_ratio * channels, 8)


def count_squeeze_excite(cx: ComplexityCounter, stage: StageSpec, w_in: int, channels: int, position: str) -> None:
    reduced = se_reduced(stage, w_in, channels, position)
    if reduced:
        count_se(cx, channels, reduced)


def needs_projection(w_in: int, w_out: int, stride: int) -> bool:
    return w_in != w_out or stride != 1


def count_shortcut(cx: ComplexityCounter, w_in: int, w_out: int, stride: int, style: str = "conv") -> None:
    if not needs_projection(w_in, w_out, stride):
        return
    with cx.branch():
        if style == "avgpool" and stride > 1:
            cx.pool(w_in, 2, stride, 0, ceil_mode=True)
            stride = 1
        count_conv_bn(cx, w_in, w_out, 1, stride=stride, relu=False)


def count_residual_end(cx: ComplexityCounter, w_out: int) -> None:
    """The residual add and the ReLU after it."""
    cx.elementwise(w_out, inputs=2)
    cx.elementwise(w_out)


def count_vanilla(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
    count_conv_bn(cx, w_in, stage.width, 3, stride=stride)
    count_conv_bn(cx, stage.width, stage.width, 3)


def count_res_basic(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
    w_out = stage.width
    count_shortcut(cx, w_in, w_out, stride, stage.shortcut)
    count_conv_bn(cx, w_in, w_out, 3, stride=stride)
    count_squeeze_excite(cx, stage, w_in, w_out, "mid")
    count_conv_bn(cx, w_out, w_out, 3, relu=False)
    count_squeeze_excite(cx, stage, w_in, w_out, "end")
    count_residual_end(cx, w_out)


def count_res_bottleneck(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
    w_b, w_out = stage.bottleneck_width, stage.width
    stride_1x1, stride_3x3 = stride_split(stage, stride)
    count_shortcut(cx, w_in, w_out, stride, stage.shortcut)
    count_conv_bn(cx, w_in, w_b, 1, stride=stride_1x1)
    count_conv_bn(cx, w_b, w_b, 3, stride=stride_3x3, groups=stage.groups)
    count_squeeze_excite(cx, stage, w_in, w_b, "mid")
    count_conv_bn(cx, w_b, w_out, 1, relu=False)
    count_squeeze_excite(cx, stage, w_in, w_out, "end")
    count_residual_end(cx, w_out)


def split_attention_width(width: int, radix: int, groups: int) -> int:
    """ResNeSt's attention width: a quarter of width * radix, a multiple of 8 (and of the cardinality),
    at least 32 (timm's rule; 8 already is a multiple of the published cardinalities 1, 2, 4, 8)."""
    divisor = math.lcm(8, groups)
    return make_divisible(width * radix / 4, divisor, min_value=-(-32 // divisor) * divisor, round_limit=0.9)


def count_split_attention(cx: ComplexityCounter, width: int, stride: int, groups: int, radix: int) -> None:
    attention = split_attention_width(width, radix, groups)
    count_conv_bn(cx, width, width * radix, 3, stride=stride, groups=groups * radix)
    with cx.branch():
        if radix > 1:
            cx.elementwise(width, inputs=radix)
        cx.global_pool(width)
        cx.conv(width, attention, 1, groups=groups, bias=True)
        cx.batch_norm(attention)
        cx.elementwise(attention)
        cx.conv(attention, width * radix, 1, groups=groups, bias=True)
        cx.elementwise(width * radix)
    cx.elementwise(width * radix, inputs=2)
    if radix > 1:
        cx.elementwise(width, inputs=radix)


def count_resnest(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
    w_b, w_out = stage.bottleneck_width, stage.width
    stride_1x1, stride_3x3 = stride_split(stage, stride)
    avd = stage.avd and stride_3x3 > 1
    count_shortcut(cx, w_in, w_out, stride, stage.shortcut)
    count_conv_bn(cx, w_in, w_b, 1, stride=stride_1x1)
    if avd and stage.avd_first:
        cx.pool(w_b, 3, stride_3x3, 1)
    count_split_attention(cx, w_b, 1 if avd else stride_3x3, stage.groups, stage.radix)
    if avd and not stage.avd_first:
        cx.pool(w_b, 3, stride_3x3, 1)
    count_squeeze_excite(cx, stage, w_in, w_b, "mid")
    count_conv_bn(cx, w_b, w_out, 1, relu=False)
    count_squeeze_excite(cx, stage, w_in, w_out, "end")
    count_residual_end(cx, w_out)


def count_res2net(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
    w_b, w_out, split = stage.bottleneck_width, stage.width, stage.conv_width
    stride_1x1, stride_3x3 = stride_split(stage, stride)
    first = needs_projection(w_in, w_out, stride)
    count_shortcut(cx, w_in, w_out, stride, stage.shortcut)
    count_conv_bn(cx, w_in, w_b, 1, stride=stride_1x1)
    for i in range(stage.scale - 1):
        with cx.branch():
            if i > 0 and not first:
                cx.elementwise(split, inputs=2)
            count_conv_bn(cx, split, split, 3, stride=stride_3x3, groups=stage.groups)
    if first:
        cx.pool(split, 3, stride_3x3, 1)
    cx.elementwise(w_b)  # the concatenation copies every chunk
    count_squeeze_excite(cx, stage, w_in, w_b, "mid")
    count_conv_bn(cx, w_b, w_out, 1, relu=False)
    count_squeeze_excite(cx, stage, w_in, w_out, "end")
    count_residual_end(cx, w_out)


def shufflenet_v1_first_groups(w_in: int, stage: StageSpec) -> int:
    """Groups of the first 1x1. ShuffleNet v1 leaves it ungrouped where the input is narrow (the network's
    first unit, fed by the 24-channel stem); generalised: where the input is narrower than the bottleneck."""
    groups = stage.groups
    return groups if w_in >= stage.bottleneck_width and w_in % groups == 0 else 1


def count_shufflenet_v1(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
    w_b, groups = stage.bottleneck_width, stage.groups
    concat = needs_projection(w_in, stage.width, stride)
    w_out = stage.width - w_in if concat else stage.width
    if concat and stride > 1:
        with cx.branch():
            cx.pool(w_in, 3, stride, 1)
    count_conv_bn(cx, w_in, w_b, 1, groups=shufflenet_v1_first_groups(w_in, stage))
    count_conv_bn(cx, w_b, w_b, 3, stride=stride, groups=w_b, relu=False)
    if groups > 1:
        cx.elementwise(w_b)  # the shuffle copies
    count_squeeze_excite(cx, stage, w_in, w_b, "mid")
    count_conv_bn(cx, w_b, w_out, 1, groups=groups, relu=False)
    count_squeeze_excite(cx, stage, w_in, w_out, "end")
    if concat:
        cx.elementwise(w_out)
        cx.elementwise(stage.width)  # the concatenation copies
    else:
        count_residual_end(cx, w_out)


def count_shufflenet_v2(cx: ComplexityCounter, w_in: int, stage: StageSpec, stride: int) -> None:
    half = stage.width // 2
    downsample = needs_projection(w_in, stage.width, stride)
    if downsample:
        with cx.branch():
            count_conv_bn(cx, w_in, w_in, 3, stride=stride, groups=w_in, relu=False)
            count_conv_bn(cx, w_in, half, 1)
    count_conv_bn(cx, w_in if downsample else half, half, 1)
    count_conv_bn(cx, half, half, 3, stride=stride, groups=half, relu=False)
    count_squeeze_excite(cx, stage, w_in, half, "mid")
    count_conv_bn(cx, half, half, 1, relu=False)
    count_squeeze_excite(cx, stage, w_in, half, "end")
    if stage.residual and not downsample:
        cx.elementwise(half, inputs=2)
    cx.elementwise(half)
    cx.elementwise(stage.width)  # the concatenation copies
    cx.elementwise(stage.width)  # and so does the shuffle


def count_stem(cx: ComplexityCounter, in_channels: int, stem: StemSpec) -> None:
    kernel, stride = STEM_FIRST_CONV[stem.type]
    widths = stem.conv_widths
    count_conv_bn(cx, in_channels, widths[0], kernel, stride=stride)
    for c_in, c_out in zip(widths, widths[1:]):
        count_conv_bn(cx, c_in, c_out, 3)
    if stem.pooled:
        cx.pool(stem.width, 3, 2, 1)


def count_head(cx: ComplexityCounter, w_in: int, head: HeadSpec, num_classes: int) -> None:
    if head.width:
        count_conv_bn(cx, w_in, head.width, 1)
    cx.global_pool(head.width or w_in)
    cx.linear(head.width or w_in, num_classes, bias=head.bias)


BLOCK_COUNTS = {
    "vanilla": count_vanilla,
    "res_basic": count_res_basic,
    "res_bottleneck": count_res_bottleneck,
    "shufflenet_v1": count_shufflenet_v1,
    "shufflenet_v2": count_shufflenet_v2,
    "resnest": count_resnest,
    "res2net": count_res2net,
}


def stage_inputs(spec: AnyNetSpec):
    """(input width, stage) for every stage."""
    w_in = spec.stem.width
    for stage in spec.stages:
        yield w_in, stage
        w_in = stage.width


def complexity(spec: AnyNetSpec) -> Complexity:
    """Flops, params, acts and MAC of the network the spec describes, without building it."""
    cx = ComplexityCounter(spec.resolution)
    count_stem(cx, spec.in_channels, spec.stem)
    for w_in, stage in stage_inputs(spec):
        count_block = BLOCK_COUNTS[stage.block]
        for i in range(stage.depth):
            count_block(cx, w_in if i == 0 else stage.width, stage, stage.stride if i == 0 else 1)
    count_head(cx, spec.stages[-1].width, spec.head, spec.num_classes)
    return cx.result()


def stem_pool_acts(spec: AnyNetSpec) -> int:
    """The size of a pooled stem's max-pool output, which our ``acts`` leaves out and pycls counts.

    Our convention counts conv/linear outputs only (the tensors a layer with weights writes, as the RegNet
    paper defines activations); pycls's ``complexity_maxpool2d`` adds the max-pool output too, so its acts for
    a ResNet are larger (resnet50: +200,704). ``acts + stem_pool_acts`` is pycls's number
    (``regnet-space describe --acts-convention pycls``)."""
    if not spec.stem.pooled:
        return 0
    kernel, stride = STEM_FIRST_CONV[spec.stem.type]
    size = (spec.resolution + 2 * (kernel // 2) - kernel) // stride + 1
    size = (size + 2 - 3) // 2 + 1
    return spec.stem.width * size * size


def pycls_acts(spec: AnyNetSpec) -> int:
    """Activations as pycls counts them: ours plus the stem max-pool output (see ``stem_pool_acts``)."""
    return complexity(spec).acts + stem_pool_acts(spec)
