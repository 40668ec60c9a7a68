"""The ResNet-family blocks and options: analytic counts equal PyTorch's on random specs, the published
conventions (stride placement, ResNet-D shortcut, SE placement and rounding, shuffles, split attention), spec
validation, and ShuffleNet v2's guideline G1 on the analytic memory access cost."""

import dataclasses
import math
import random
import re

import pytest
import torch

from regnet_space import AnyNet, AnyNetSpec, UserError, complexity
from regnet_space.models.blocks import SqueezeExcite, SplitAttention, channel_shuffle
from regnet_space.models.complexity import make_divisible
from regnet_space.models.counter import ComplexityCounter
from regnet_space.models.presets import PRESETS
from regnet_space.models.spec import BLOCK_TYPES, STEM_TYPES

from helpers import random_spec, torch_counts

torch.set_num_threads(1)


def family_specs(n, seed):
    rng = random.Random(seed)
    return [random_spec(rng, blocks=BLOCK_TYPES, stems=STEM_TYPES) for _ in range(n)]


def test_random_specs_of_every_block_and_option_match_built_module():
    for i, spec in enumerate(family_specs(150, seed=3)):
        params, torch_flops = torch_counts(spec)
        cx = complexity(spec)
        assert cx.params == params, (i, spec)
        assert cx.flops - cx.bias_flops == torch_flops, (i, spec)


def test_random_specs_cover_every_block_stem_and_option():
    specs = family_specs(300, seed=3)
    stages = [stage for spec in specs for stage in spec.stages]
    assert {s.block for s in stages} == set(BLOCK_TYPES)
    assert {spec.stem.type for spec in specs} == set(STEM_TYPES)
    assert any(spec.stem.mid_widths for spec in specs)
    assert {s.stride_on for s in stages} == {"3x3", "1x1"}
    assert {s.shortcut for s in stages} == {"conv", "avgpool"}
    assert {s.se_style for s in stages if s.se_ratio} == {"regnet", "resnet"}
    assert {s.radix for s in stages if s.block == "resnest"} >= {1, 2, 3}
    assert {(s.avd, s.avd_first) for s in stages if s.block == "resnest"} == {(False, False), (True, False), (True, True)}
    assert {s.scale for s in stages if s.block == "res2net"} == {2, 3, 4}
    assert {s.residual for s in stages if s.block == "shufflenet_v2"} == {False, True}
    assert any(s.group_width for s in stages if s.block in ("shufflenet_v1", "resnest", "res2net"))
    assert {spec.head.width > 0 for spec in specs} == {False, True}
    assert {spec.head.bias for spec in specs} == {False, True}


def test_family_specs_round_trip_through_json():
    for spec in family_specs(100, seed=4):
        assert AnyNetSpec.from_json(spec.to_json()) == spec


def test_forward_and_backward_on_real_tensors_for_every_block():
    seen = set()
    for spec in family_specs(60, seed=5):
        model = AnyNet(spec).train()
        out = model(torch.randn(2, spec.in_channels, spec.resolution, spec.resolution))
        assert out.shape == (2, spec.num_classes) and torch.isfinite(out).all()
        out.sum().backward()
        seen |= {s.block for s in spec.stages}
    assert seen == set(BLOCK_TYPES)


def stage(**fields):
    return {"depth": 1, "width": 64, **fields}


@pytest.mark.parametrize("stages, field", [
    ([stage(radix=2)], "stages[0].radix"),                                    # only resnest has a radix
    ([stage(block="res2net", bottleneck_ratio=4)], "stages[0].scale"),       # res2net needs scale >= 2
    ([stage(block="resnest", avd_first=True)], "stages[0].avd_first"),       # avd_first without avd
    ([stage(block="res_basic", stride_on="1x1")], "stages[0].stride_on"),    # no 1x1 to put it on
    ([stage(block="shufflenet_v2", shortcut="avgpool")], "stages[0].shortcut"),
    ([stage(residual=True)], "stages[0].residual"),
    ([stage(shortcut="pool")], "stages[0].shortcut"),
    ([stage(se_style="senet", se_ratio=0.25)], "stages[0].se_style"),
    ([stage(block="vanilla", se_ratio=0.25)], "stages[0].se_ratio"),
    ([stage(block="shufflenet_v2", width=63)], "stages[0].width"),
    ([stage(block="resnest", bottleneck_ratio=4, radix=3)], "stages[0].radix"),  # 3 does not divide 16
    ([stage(block="res2net", bottleneck_ratio=4, scale=3)], "stages[0].scale"),  # 3 does not divide 16
    ([stage(block="shufflenet_v1", width=16, bottleneck_ratio=4)], "stages[0].width"),  # narrower than the stem
])
def test_validation_names_the_bad_field(stages, field):
    with pytest.raises(UserError, match="^" + re.escape(field) + ":"):
        AnyNetSpec.from_dict({"stages": stages})


@pytest.mark.parametrize("data, field", [
    ({"stem": {"type": "simple", "mid_widths": [16, 16]}}, "stem.mid_widths"),
    ({"stem": {"type": "deep", "mid_widths": [16, 0]}}, "stem.mid_widths"),
    ({"head": {"width": -1}}, "head.width"),
])
def test_stem_and_head_validation_names_the_field(data, field):
    with pytest.raises(UserError, match="^" + re.escape(field) + ":"):
        AnyNetSpec.from_dict({"stages": [stage()], **data})


def test_old_json_without_the_new_fields_still_loads_with_defaults():
    spec = AnyNetSpec.from_dict({"stages": [{"depth": 1, "width": 64, "group_width": 16, "se_ratio": 0.25}],
                                 "stem": {"type": "simple", "width": 32}, "head": {"bias": True}})
    s = spec.stages[0]
    assert (s.stride_on, s.shortcut, s.se_style, s.radix, s.avd, s.scale, s.residual) == \
        ("3x3", "conv", "regnet", 1, False, 1, False)
    assert spec.stem.mid_widths == () and spec.head.width == 0


# The reference table of block-conventions.md: conv+linear GMACs with the stride on the 3x3 (B) or 1x1 (A).
@pytest.mark.parametrize("name, resnet_b, resnet_a", [
    ("resnet50", 4.0892, 3.8580), ("resnet101", 7.8014, 7.5702), ("resnext50_32x4d", 4.2305, 3.7681),
    ("seresnet50", 4.0917, 3.8605),
])
def test_stride_placement_changes_flops_not_params(name, resnet_b, resnet_a):
    spec_b = PRESETS[name]()
    spec_a = dataclasses.replace(spec_b, stages=tuple(dataclasses.replace(s, stride_on="1x1") for s in spec_b.stages))
    cx_b, cx_a = complexity(spec_b), complexity(spec_a)
    assert cx_a.params == cx_b.params
    assert round((cx_b.flops - cx_b.bias_flops) / 1e9, 4) == resnet_b
    assert round((cx_a.flops - cx_a.bias_flops) / 1e9, 4) == resnet_a


def test_resnet_d_shortcut_pools_then_convolves_at_stride_1():
    model = AnyNet(PRESETS["resnet50d"]())
    shortcut = model.stages[1][0].shortcut.proj
    pool, conv = shortcut[0], shortcut[1][0]
    assert isinstance(pool, torch.nn.AvgPool2d)
    assert (pool.kernel_size, pool.stride, pool.ceil_mode, pool.count_include_pad) == (2, 2, True, False)
    assert conv.stride == (1, 1) and conv.kernel_size == (1, 1)
    assert isinstance(model.stages[0][0].shortcut.proj[0], torch.nn.Identity)  # stage 1 has stride 1


def se_modules(model):
    return [m for m in model.modules() if isinstance(m, SqueezeExcite)]


def test_se_resnet_se_sits_after_the_last_bn_with_divisible_width():
    model = AnyNet(PRESETS["seresnet50"]())
    first = model.stages[0][0]
    assert isinstance(first.se, torch.nn.Identity) and isinstance(first.se_out, SqueezeExcite)
    widths = sorted({(m.reduce.in_channels, m.reduce.out_channels) for m in se_modules(model)})
    assert widths == [(256, 16), (512, 32), (1024, 64), (2048, 128)]
    assert make_divisible(64 / 16, 8) == 8  # seresnet18's first stage: 64 -> 8, not 4


def test_regnety_se_sits_after_the_3x3_with_width_from_the_block_input():
    from regnet_space.models.catalog import REGNET_ZOO

    model = AnyNet(REGNET_ZOO["regnety_002"].to_spec())
    first = model.stages[0][0]
    assert isinstance(first.se, SqueezeExcite) and isinstance(first.se_out, torch.nn.Identity)
    assert (first.se.reduce.in_channels, first.se.reduce.out_channels) == (24, 8)  # input is the 32-wide stem


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_shufflenet_v1_first_pointwise_conv_is_ungrouped_only_on_the_stem():
    model = AnyNet(PRESETS["shufflenet_v1_g3_x1_0"]())
    assert model.stages[0][0].a[0].groups == 1      # fed by the 24-channel stem, as in the megvii model
    assert model.stages[0][1].a[0].groups == 3
    assert model.stages[1][0].a[0].groups == 3
    assert model.stages[0][0].c[0].out_channels == 240 - 24  # concatenated with the pooled input


def test_split_attention_with_flat_logits_averages_the_radix_splits():
    attention = SplitAttention(width=8, stride=1, groups=2, radix=2).eval()
    torch.nn.init.zeros_(attention.fc2.weight)
    torch.nn.init.zeros_(attention.fc2.bias)
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        splits = attention.conv(x).view(1, 2, 8, 5, 5)
        assert torch.allclose(attention(x), splits.mean(1), atol=1e-6)


def test_one_by_one_conv_mac_is_shufflenet_v2_formula():
    cx = ComplexityCounter(7)
    cx.conv(32, 96, 1)
    assert cx.mac == 7 * 7 * (32 + 96) + 32 * 96


def test_guideline_g1_equal_channels_minimise_mac_at_fixed_flops():
    """ShuffleNet v2's G1: for a 1x1 conv of fixed flops h*w*c1*c2, MAC is lowest when c1 == c2."""
    size, product = 28, 128 * 128
    macs = {}
    for c_in in (16, 32, 64, 128, 256, 512, 1024):
        cx = ComplexityCounter(size)
        cx.conv(c_in, product // c_in, 1)
        assert cx.flops == size * size * product
        macs[c_in] = cx.mac
    assert min(macs, key=macs.get) == 128
    ratios = [macs[c] for c in (16, 32, 64, 128)]
    assert ratios == sorted(ratios, reverse=True)  # the further from balanced, the more memory traffic
    hw, flops = size * size, size * size * product
    assert macs[128] == 2 * math.isqrt(hw * flops) + flops // hw  # G1's lower bound, met at c1 == c2
