"""Shared test utilities: counting a built module the way PyTorch does, and random specs."""

from __future__ import annotations

import random

import torch
from torch.utils.flop_counter import FlopCounterMode

from regnet_space import AnyNet, AnyNetSpec, HeadSpec, StageSpec, StemSpec, make_compatible
from regnet_space.models.spec import PROJECTION_BLOCKS, STRIDE_1X1_BLOCKS


def torch_counts(spec: AnyNetSpec) -> tuple[int, int]:
    """(parameter count, FlopCounterMode total / 2) of the built module, on the meta device (no compute)."""
    with torch.device("meta"):
        model = AnyNet(spec).eval()
        x = torch.empty(1, spec.in_channels, spec.resolution, spec.resolution)
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return params, counter.get_total_flops() // 2


CLASSIC_BLOCKS = ("vanilla", "res_basic", "res_bottleneck")
CLASSIC_STEMS = ("simple", "resnet", "cifar")


def random_spec(rng: random.Random, *, blocks=CLASSIC_BLOCKS, stems=CLASSIC_STEMS) -> AnyNetSpec:
    """A small random AnyNet spec: a block type per stage from ``blocks``, every option those blocks take
    (stride placement, shortcut, SE style, groups, radix, avd, scale, residual), a stem from ``stems``,
    a head with or without a final 1x1 conv, any stride and input size. Pass ``blocks=BLOCK_TYPES,
    stems=STEM_TYPES`` to cover the whole ResNet family."""
    stem = _random_stem(rng, rng.choice(stems))
    stages, w_in = [], stem.width
    for _ in range(rng.randint(1, 4)):
        stage = _random_stage(rng, rng.choice(blocks), w_in)
        stages.append(stage)
        w_in = stage.width
    head = HeadSpec(bias=rng.random() < 0.8, width=rng.choice([0, 0, 8 * rng.randint(1, 8)]))
    return AnyNetSpec(stages=tuple(stages), stem=stem, head=head, in_channels=rng.choice([1, 3]),
                      resolution=rng.choice([16, 28, 32, 33]), num_classes=rng.choice([10, 100]))


def _random_stem(rng: random.Random, kind: str) -> StemSpec:
    width = 8 * rng.randint(1, 6)
    mid = tuple(rng.randint(4, 16) for _ in range(2)) if kind == "deep" and rng.random() < 0.5 else ()
    return StemSpec(kind, width, mid)


def _random_stage(rng: random.Random, block: str, w_in: int) -> StageSpec:
    """One stage of ``block`` fed by ``w_in`` channels, with random options valid for that block."""
    stride = rng.choice([1, 2])
    options: dict = {}
    if block != "vanilla":
        options["se_style"] = rng.choice(["regnet", "resnet"])
        options["se_ratio"] = rng.choice([0.0, 0.0625, 0.25])
    if block in PROJECTION_BLOCKS:
        options["shortcut"] = rng.choice(["conv", "avgpool"])
    if block in STRIDE_1X1_BLOCKS:
        options["stride_on"] = rng.choice(["3x3", "1x1"])
    b, g = 1, 0
    if block in ("vanilla", "res_basic"):
        width = 8 * rng.randint(1, 12)
    elif block == "res_bottleneck":
        b = rng.choice([1, 2, 4])
        widths, gs = make_compatible([8 * rng.randint(1, 12)], [b], [rng.choice([1, 2, 4, 8, 16])])
        width, g = widths[0], gs[0]
    elif block == "resnest":
        radix, cardinality = rng.choice([1, 2, 3]), rng.choice([1, 2])
        bottleneck = cardinality * radix * rng.randint(1, 6)
        b = rng.choice([1, 2, 4])
        width, g = bottleneck * b, (0 if cardinality == 1 else bottleneck // cardinality)
        options.update(radix=radix, avd=rng.random() < 0.6)
        options["avd_first"] = options["avd"] and rng.random() < 0.5
    elif block == "res2net":
        scale, cardinality = rng.choice([2, 3, 4]), rng.choice([1, 2])
        split = cardinality * rng.randint(1, 6)
        b = rng.choice([1, 2, 4])
        width, g = split * scale * b, (0 if cardinality == 1 else split // cardinality)
        options["scale"] = scale
    elif block == "shufflenet_v1":
        groups = rng.choice([g for g in (1, 2, 3) if w_in % g == 0])
        b = rng.choice([1, 2, 4])
        unit = b * groups  # width / b must split into the groups, and so must width - w_in
        if stride == 1 and w_in % unit == 0 and rng.random() < 0.3:
            width = w_in
        else:
            width = (w_in // unit + rng.randint(1, 4)) * unit
        g = 0 if groups == 1 else width // b // groups
    else:  # shufflenet_v2
        width = 2 * rng.randint(2, 24)
        options["residual"] = rng.random() < 0.5
    return StageSpec(depth=rng.randint(1, 3), width=width, stride=stride, bottleneck_ratio=b, group_width=g,
                     block=block, **options)
