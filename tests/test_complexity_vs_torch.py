"""Analytic complexity equals what PyTorch counts on the built module: params, and flops vs FlopCounterMode."""

import random

import pytest

from regnet_space import complexity
from regnet_space.models.catalog import REGNET_ZOO

from helpers import random_spec, torch_counts


@pytest.mark.parametrize("name", sorted(REGNET_ZOO))
def test_zoo_matches_built_module(name):
    spec = REGNET_ZOO[name].to_spec(resolution=64)
    params, torch_flops = torch_counts(spec)
    cx = complexity(spec)
    assert cx.params == params
    # FlopCounterMode counts matmul/conv multiply-adds only; the published convention adds bias additions.
    assert cx.flops - cx.bias_flops == torch_flops


def test_200_random_specs_match_built_module():
    rng = random.Random(0)
    for i in range(200):
        spec = random_spec(rng)
        params, torch_flops = torch_counts(spec)
        cx = complexity(spec)
        assert cx.params == params, (i, spec)
        assert cx.flops - cx.bias_flops == torch_flops, (i, spec)


def test_all_block_types_and_stems_are_covered_by_random_specs():
    rng = random.Random(0)
    specs = [random_spec(rng) for _ in range(200)]
    assert {s.stages[0].block for s in specs} == {"vanilla", "res_basic", "res_bottleneck"}
    assert {s.stem.type for s in specs} == {"simple", "resnet", "cifar"}
    assert any(s.stages[0].se_ratio for s in specs)


def test_forward_shape_on_real_tensors():
    import torch

    from regnet_space import AnyNet

    spec = REGNET_ZOO["regnetx_002"].to_spec(resolution=28, in_channels=1, num_classes=10)
    out = AnyNet(spec)(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
