"""The published ResNet-family presets: exact parameter counts, flops within 0.5% of the published MACs,
resolvable everywhere a model is taken, listed by `regnet-space models`."""

import json

import pytest

from regnet_space import AnyNetSpec, complexity, resolve_model
from regnet_space.cli import main
from regnet_space.models.presets import PRESETS
from regnet_space.models.resolve import catalog

from helpers import torch_counts

# Parameter counts at 224x224 and 1000 classes. torchvision: resnet18/34/50/101, resnext50_32x4d,
# shufflenet_v2_*. timm: resnet18d, resnet50c/d, seresnet50, seresnext50_32x4d, resnest50d (= the ResNeSt
# repo's resnest50), res2net50_* (timm's Bottle2neck; timm lists 25.70M and 25.29M). megvii ShuffleNetV1
# (classifier without bias; imgclsmob's shufflenet_g3_w1 has one and counts 1,865,728).
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet18d": 11_708_744,
    "resnet50c": 25_576_264,
    "resnet50d": 25_576_264,
    "seresnet50": 28_088_024,
    "resnext50_32x4d": 25_028_904,
    "seresnext50_32x4d": 27_559_896,
    "resnest50d": 27_483_240,
    "res2net50_26w_4s": 25_699_120,
    "res2net50_48w_2s": 25_287_304,
    "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604,
    "shufflenet_v1_g3_x1_0": 1_864_728,
}

# Published conv + linear MACs in G (torchvision's _ops, block-conventions.md, megvii's README for v1).
PUBLISHED_GMACS = {
    "resnet50": 4.089, "resnet50d": 4.329, "resnet50c": 4.3288, "resnet101": 7.8014, "resnext50_32x4d": 4.2305,
    "seresnet50": 4.0917, "resnest50d": 5.37, "shufflenet_v1_g3_x1_0": 0.138,
}


def test_catalog_has_every_preset_and_the_regnet_zoo():
    assert set(PRESETS) == set(PUBLISHED_PARAMS)
    assert set(PRESETS) < set(catalog()) and len(catalog()) == len(PRESETS) + 24


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_describe_json_gives_the_published_parameter_count(capsys, name):
    assert main(["describe", name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == PUBLISHED_PARAMS[name]
    assert AnyNetSpec.from_dict(data["spec"]) == PRESETS[name]()  # the JSON rebuilds the same model


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_flops_within_half_a_percent_of_published_macs(name):
    cx = complexity(PRESETS[name]())
    assert abs(cx.flops / 1e9 / PUBLISHED_GMACS[name] - 1) < 0.005


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_preset_analytic_counts_match_the_built_module(name):
    spec = resolve_model(name, resolution=64, num_classes=10)
    params, torch_flops = torch_counts(spec)
    cx = complexity(spec)
    assert (cx.params, cx.flops - cx.bias_flops) == (params, torch_flops)


def test_presets_adapt_to_small_data(capsys):
    assert main(["describe", "shufflenet_v2_x0_5", "--resolution", "28", "--in-channels", "1",
                 "--num-classes", "10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["resolution"] == 28 and data["num_classes"] == 10
    assert data["params"] < PUBLISHED_PARAMS["shufflenet_v2_x0_5"]


def test_models_lists_every_entry_with_family_and_complexity(capsys):
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(catalog())
    assert rows["resnet50"]["params"] == 25_557_032 and rows["resnet50"]["family"] == "ResNet"
    assert rows["regnetx_002"]["flops"] == 199_040_872 and rows["regnetx_002"]["family"] == "RegNetX"
    assert rows["regnety_002"]["family"] == "RegNetY" and rows["resnest50d"]["family"] == "ResNeSt"
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "shufflenet_v1_g3_x1_0" in table and "ShuffleNet v1" in table and "25.56M" in table
