"""Batch versions of the per-model rules, so a sampler can reject most draws without building specs.

Rejection sampling in a narrow complexity window throws away most draws (97.9% for AnyNetX_A and 99.6% for
RegNetX at 360-400 MFLOPs), and building each draw's frozen spec and walking it with ComplexityCounter is the
slow part; these functions do the same arithmetic on NumPy arrays (one entry per draw) for the X block
(``res_bottleneck`` with default options). They reuse ComplexityCounter, ``count_conv_bn``,
``count_se``, ``count_stem`` and ``count_head``, which accept arrays as channel counts, and re-implement only
the parts that branch per draw. tests/test_spaces_sampling.py holds them equal to the per-model code.
"""
from __future__ import annotations

import numpy as np

from ..models.complexity import count_conv_bn, count_head, count_se, count_stem
from ..models.counter import ComplexityCounter
from ..models.spec import HeadSpec, StemSpec

_TOTALS = ("flops", "params", "acts", "mac", "bias_flops")


def make_compatible(w: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """regnet.make_compatible for one stage of many draws (g == 0, one group, is left alone)."""
    grouped = g > 0
    bottleneck = np.maximum(1, np.round(w / b)).astype(np.int64)
    g_capped = np.minimum(np.where(grouped, g, 1), bottleneck)
    inverse = 1 / b
    fractional = (b < 1) & (inverse == np.round(inverse))
    multiple = np.where(fractional, np.lcm(g_capped, np.where(fractional, inverse, 1).astype(np.int64)), g_capped)
    bottleneck = np.maximum(multiple, np.round(bottleneck / multiple) * multiple)
    return (np.where(grouped, np.round(bottleneck * b).astype(np.int64), w),
            np.where(grouped, g_capped, g))


def regnet_stages(depth: np.ndarray, w0: np.ndarray, wa: np.ndarray, wm: np.ndarray, q: int, num_stages: int
                  ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The quantized linear rule for many draws: (has exactly ``num_stages`` stages and skips none, the stage
    widths, the stage depths). A draw skips a stage when two exponents k quantize to one width or a k is
    empty; as k never decreases along the blocks, a draw can only qualify if its last block's k is
    num_stages - 1, which is checked first so the per-block work runs on those draws alone."""
    last_k = np.round(np.log((w0 + wa * (depth - 1)) / w0) / np.log(wm))
    rows = np.flatnonzero(last_k == num_stages - 1)
    d, w0_r, wa_r, wm_r = depth[rows], w0[rows], wa[rows], wm[rows]
    blocks = np.arange(d.max(initial=1))
    inside = blocks < d[:, None]
    k = np.round(np.log((w0_r[:, None] + wa_r[:, None] * blocks) / w0_r[:, None]) / np.log(wm_r)[:, None])
    block_widths = q * np.round(w0_r[:, None] * wm_r[:, None] ** k / q)
    stage_count = 1 + ((block_widths[:, 1:] != block_widths[:, :-1]) & inside[:, 1:]).sum(axis=1)
    valid = np.zeros(len(depth), dtype=bool)
    valid[rows] = stage_count == num_stages
    widths = [(q * np.round(w0 * wm**s / q)).astype(np.int64) for s in range(num_stages)]
    depths = []
    for s in range(num_stages):
        stage_depth = np.zeros(len(depth), dtype=np.int64)
        stage_depth[rows] = ((k == s) & inside).sum(axis=1)
        depths.append(stage_depth)
    return valid, widths, depths


def _accumulate(cx: ComplexityCounter, part: ComplexityCounter, times: np.ndarray | int) -> None:
    for name in _TOTALS:
        setattr(cx, name, getattr(cx, name) + times * getattr(part, name))


def _x_block(h: int, w_in, w_out, w_b, groups, se_width, stride: int) -> ComplexityCounter:
    """One X block per draw, as ResBottleneckBlock.count walks it, on a fresh counter at input size h."""
    cx = ComplexityCounter(h)
    projection = ComplexityCounter(h)
    count_conv_bn(projection, w_in, w_out, 1, stride=stride, relu=False)
    _accumulate(cx, projection, ((w_in != w_out) | (stride != 1)).astype(np.int64))
    count_conv_bn(cx, w_in, w_b, 1)
    count_conv_bn(cx, w_b, w_b, 3, stride=stride, groups=groups)
    if np.any(se_width > 0):
        se = ComplexityCounter(cx.h)
        count_se(se, w_b, np.maximum(se_width, 1))
        _accumulate(cx, se, (se_width > 0).astype(np.int64))
    count_conv_bn(cx, w_b, w_out, 1, relu=False)
    cx.elementwise(w_out, inputs=2)
    cx.elementwise(w_out)
    return cx


def x_network_complexity(stem: StemSpec, head: HeadSpec, stages: list[dict[str, np.ndarray]], strides: list[int],
                         *, resolution: int, in_channels: int, num_classes: int) -> dict[str, np.ndarray]:
    """flops/params/acts/mac per draw of a stem + X-block stages + head network.

    Each stage dict holds arrays ``depth``, ``width``, ``bottleneck_ratio``, ``group_width``, ``se_ratio``
    (widths and group widths already compatible).
    """
    cx = ComplexityCounter(resolution)
    count_stem(cx, in_channels, stem)
    w_in = np.int64(stem.width)
    for stage, stride in zip(stages, strides):
        w, d = stage["width"], stage["depth"]
        w_b = np.round(w / stage["bottleneck_ratio"]).astype(np.int64)
        g = stage["group_width"]
        groups = np.where(g > 0, w_b // np.maximum(g, 1), 1)
        se = stage["se_ratio"]
        first = _x_block(cx.h, w_in, w, w_b, groups, _se_width(se, w_in), stride)
        rest = _x_block(first.h, w, w, w_b, groups, _se_width(se, w), 1)
        _accumulate(cx, first, 1)
        _accumulate(cx, rest, d - 1)
        cx.h, cx.w = first.h, first.w
        w_in = w
    count_head(cx, w_in, head, num_classes)
    return {name: np.broadcast_to(getattr(cx, name), (len(stages[0]["width"]),))
            for name in ("flops", "params", "acts", "mac")}


def _se_width(se_ratio: np.ndarray, w_in) -> np.ndarray:
    """counts.se_width per draw (0 where there is no SE)."""
    return np.where(se_ratio > 0, np.maximum(1, np.round(se_ratio * w_in)), 0).astype(np.int64)
