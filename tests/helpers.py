"""Shared test utilities: counting a built module the way PyTorch does, and random specs."""

from __future__ import annotations

import random

import torch
from torch.utils.flop_counter import FlopCounterMode

from regnet_space import AnyNet, AnyNetSpec, StageSpec, StemSpec, make_compatible
from regnet_space.spec import STEM_TYPES


def torch_counts(spec: AnyNetSpec) -> tuple[int, int]:
    """(parameter count, FlopCounterMode total / 2) of the built module, on the meta device (no compute)."""
    with torch.device("meta"):
        model = AnyNet(spec).eval()
        x = torch.empty(1, spec.in_channels, spec.resolution, spec.resolution)
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return params, counter.get_total_flops() // 2


def random_spec(rng: random.Random, *, blocks=("vanilla", "res_basic", "res_bottleneck"), stems=STEM_TYPES) -> AnyNetSpec:
    """A small random AnyNet spec: any block type, stem, stride, b, g, SE, input size."""
    n_stages = rng.randint(1, 4)
    block = rng.choice(blocks)
    widths = [8 * rng.randint(1, 12) for _ in range(n_stages)]
    if block == "res_bottleneck":
        bs = [rng.choice([1, 2, 4]) for _ in range(n_stages)]
        gs = [rng.choice([1, 2, 4, 8, 16]) for _ in range(n_stages)]
        widths, gs = make_compatible(widths, bs, gs)
        se = rng.choice([0.0, 0.25])
    else:
        bs, gs, se = [1] * n_stages, [0] * n_stages, 0.0
    stages = [StageSpec(depth=rng.randint(1, 3), width=w, stride=rng.choice([1, 2]), bottleneck_ratio=b,
                        group_width=g, block=block, se_ratio=se) for w, b, g in zip(widths, bs, gs)]
    return AnyNetSpec(stages=tuple(stages), stem=StemSpec(rng.choice(stems), 8 * rng.randint(1, 6)),
                      in_channels=rng.choice([1, 3]), resolution=rng.choice([16, 28, 32, 33]),
                      num_classes=rng.choice([10, 100]))
