"""AnyNetSpec validation and JSON round trip; RegNetParams validation and generation rules."""

import json
import re
import random

import pytest

from regnet_space import AnyNetSpec, RegNetParams, StageSpec, UserError, make_compatible
from regnet_space.models.regnet import quantized_block_widths, runs

from helpers import random_spec


def test_json_round_trip_is_identity_for_random_specs():
    rng = random.Random(1)
    for _ in range(200):
        spec = random_spec(rng)
        assert AnyNetSpec.from_json(spec.to_json()) == spec
        assert AnyNetSpec.from_json(spec.to_json()).to_json() == spec.to_json()


@pytest.mark.parametrize("change, field", [
    ({"depth": 0}, "stages[0].depth"),
    ({"width": -8}, "stages[0].width"),
    ({"stride": 3}, "stages[0].stride"),
    ({"block": "resnext"}, "stages[0].block"),
    ({"group_width": 24}, "stages[0].group_width"),  # 24 does not divide 64
    ({"bottleneck_ratio": 0}, "stages[0].bottleneck_ratio"),
    ({"se_ratio": 2}, "stages[0].se_ratio"),
])
def test_validation_names_the_bad_field(change, field):
    stage = {"depth": 2, "width": 64, "group_width": 16, **change}
    with pytest.raises(UserError, match="^" + re.escape(field) + ":"):
        AnyNetSpec.from_dict({"stages": [stage]})


def test_unknown_and_missing_keys_are_named():
    with pytest.raises(UserError, match=r"stages\[0\]\.colour: unknown key"):
        AnyNetSpec.from_dict({"stages": [{"depth": 1, "width": 8, "colour": "red"}]})
    with pytest.raises(UserError, match=r"stages\[0\]\.width: missing"):
        AnyNetSpec.from_dict({"stages": [{"depth": 1}]})
    with pytest.raises(UserError, match=r"stem\.type"):
        AnyNetSpec.from_dict({"stages": [{"depth": 1, "width": 8}], "stem": {"type": "huge"}})
    with pytest.raises(UserError, match=r"^resolution:"):
        AnyNetSpec.from_dict({"stages": [{"depth": 1, "width": 8}], "resolution": 0})


def test_basic_blocks_reject_bottleneck_fields():
    with pytest.raises(UserError, match=r"stages\[0\]\.group_width"):
        StageSpec(depth=1, width=8, block="res_basic", group_width=8).validate("stages[0]")


@pytest.mark.parametrize("kwargs, field", [
    ({"depth": 0}, "depth"),
    ({"w0": 20}, "w0"),  # not a multiple of q=8
    ({"w0": 0}, "w0"),
    ({"wa": -1}, "wa"),
    ({"wm": 1.0}, "wm"),
    ({"group_width": 0}, "group_width"),
])
def test_regnet_params_validation(kwargs, field):
    base = dict(depth=13, w0=24, wa=36.44, wm=2.49, group_width=8)
    with pytest.raises(UserError, match=rf"^regnet\.{field}:"):
        RegNetParams(**{**base, **kwargs})


def test_linear_rule_quantization_by_hand():
    # u_j = 24 + 36.44 j; k_j = round(log(u_j/24)/log(2.49)); w_j = 8 round(24 * 2.49^k_j / 8)
    widths = quantized_block_widths(13, 24, 36.44, 2.49)
    assert widths == [24, 56, 152, 152, 152, 152, 368, 368, 368, 368, 368, 368, 368]
    assert runs(widths) == ([24, 56, 152, 368], [1, 1, 4, 7])


def test_make_compatible_caps_group_width_and_rounds_half_to_even():
    assert make_compatible([392], [1], [16]) == ([384], [16])   # 24.5 -> 24
    assert make_compatible([408], [1], [16]) == ([416], [16])   # 25.5 -> 26
    assert make_compatible([24], [4], [16]) == ([24], [6])      # g capped at w/b = 6
    assert make_compatible([64], [2], [8]) == ([64], [8])


def test_stage_views():
    spec = RegNetParams(13, 24, 36.44, 2.49, 8).to_spec()
    assert spec.block_widths()[:3] == [24, 56, 152]
    assert len(spec.block_widths()) == 13
    assert json.loads(spec.to_json())["format"] == "regnet_space.anynet/1"
