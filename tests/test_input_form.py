"""The small-image form of the design spaces, RegNetX's params/acts limits and the tiny-stage warnings."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from regnet_space import RegNetParams, complexity
from regnet_space.cli import main
from regnet_space.models.resolve import resolve_model
from regnet_space.spaces import load_space, sample_models
from regnet_space.spaces.input_form import SMALL_BELOW, for_input, resolve_form, tiny_stage_warning
from regnet_space.spaces.limits import meets_limits, reference_network, within_limits
from regnet_space.spaces.space import builtin_spaces

FAMILY = sorted(str(p) for p in (Path(__file__).parents[1] / "experiments" / "spaces").glob("*.toml"))


@pytest.mark.parametrize("resolution, in_channels", [(28, 1), (32, 3)])
@pytest.mark.parametrize("space", builtin_spaces() + FAMILY)
def test_small_form_runs_every_stage_at_4px_or_more(space, resolution, in_channels):
    models = sample_models(space, 5, seed=0, windows={"flops": (2e6, 20e6)}, resolution=resolution,
                           in_channels=in_channels, num_classes=10)
    expected = [resolution, resolution // 2, resolution // 4, (resolution + 7) // 8]
    for model in models:
        sizes = model.spec.stage_resolutions()
        assert min(sizes) >= 4 and sizes == expected[:len(sizes)]
        assert model.spec.stem.type == "cifar" and tiny_stage_warning(model.spec) is None


def test_auto_form_switches_at_128px_and_can_be_overridden():
    assert (resolve_form("auto", SMALL_BELOW - 1), resolve_form("auto", SMALL_BELOW)) == ("small", "imagenet")
    assert resolve_form("imagenet", 28) == "imagenet" and resolve_form("small", 224) == "small"
    at_224 = sample_models("anynetx_a", 3, seed=0, windows={"flops": (360e6, 400e6)})
    assert all(m.spec.stage_resolutions() == [56, 28, 14, 7] for m in at_224)
    forced = sample_models("anynetx_a", 3, seed=0, windows={"flops": (5e6, 20e6)}, resolution=28, in_channels=1,
                           num_classes=10, input_form="imagenet")
    assert all(m.spec.stage_resolutions() == [7, 4, 2, 1] and tiny_stage_warning(m.spec) for m in forced)
    space = dataclasses.replace(load_space("regnetx"), input_form="imagenet")  # a space's own form is kept
    assert for_input(space, 28) == space and for_input(space, 28, "small").regnet["first_stride"] == 1


def test_small_form_round_trips_through_toml_and_study_spec(tmp_path):
    space = dataclasses.replace(load_space("anynetx_e"), input_form="small")
    assert 'input_form = "small"' in space.to_toml()
    assert load_space(str(_write(tmp_path / "s.toml", space.to_toml()))) == space
    from regnet_space.study.spec import load_study_spec

    spec = _write(tmp_path / "study.toml", 'name = "t"\ninput_form = "small"\n[[spaces]]\nspace = "regnetx"\nn = 1\n'
                  '[[spaces]]\nspace = "anynetx_a"\nn = 1\ninput_form = "imagenet"\n')
    assert [e.input_form for e in load_study_spec(spec).spaces] == ["small", "imagenet"]
    bad = _write(tmp_path / "bad.toml", 'name = "t"\ninput_form = "tiny"\n[[spaces]]\nspace = "regnetx"\nn = 1\n')
    assert main(["study", "status", str(bad)]) == 2


def test_regnetx_samples_meet_pycls_limits_at_224px():
    assert load_space("regnetx").pycls_limits and load_space("regnetx_sota").pycls_limits
    for resolution, window in ((28, (5e6, 20e6)), (224, (360e6, 400e6))):
        data = dict(resolution=resolution, in_channels=1 if resolution == 28 else 3,
                    num_classes=10 if resolution == 28 else 1000)
        for model in sample_models("regnetx", 40, seed=3, windows={"flops": window}, **data):
            cx = complexity(reference_network(model.spec))
            assert cx.params / 1e6 < 3 + 5.5 * cx.flops / 1e9 and cx.acts / 1e6 < 6.5 * np.sqrt(cx.flops / 1e9)
    # The limits bite: without them a good share of RegNet draws at 28 px break the rule.
    free = sample_models(dataclasses.replace(load_space("regnetx"), pycls_limits=False), 60, seed=3,
                         windows={"flops": (5e6, 20e6)}, resolution=28, in_channels=1, num_classes=10)
    assert 0 < sum(not meets_limits(m.spec) for m in free) < 60
    # Vectorised and per-draw sampling agree with the limits on.
    fast = sample_models("regnetx", 10, seed=5, windows={"flops": (5e6, 20e6)}, resolution=28, in_channels=1,
                         num_classes=10)
    slow = sample_models("regnetx", 10, seed=5, windows={"flops": (5e6, 20e6)}, resolution=28, in_channels=1,
                         num_classes=10, vectorized=False)
    assert [m.spec for m in fast] == [m.spec for m in slow]


def test_regnetx_sota_depths_and_rule_of_thumb_values():
    models = sample_models("regnetx_sota", 20, seed=0, windows={"flops": (360e6, 400e6)})
    assert all(12 <= m.params["depth"] <= 28 and 8 <= m.params["group_width"] <= 128 for m in models)
    # RegNetX-200MF meets the rule (2.68M params < 3 + 5.5 * 0.2; 2.16M acts < 6.5 * sqrt(0.2) = 2.9M).
    assert within_limits(199_040_872, 2_684_792, 2_164_056) and not within_limits(199e6, 5e6, 2e6)


def test_small_form_regnet_config_round_trips():
    params = RegNetParams(depth=13, w0=24, wa=36.44, wm=2.49, group_width=8, stem_type="cifar", stem_width=16,
                          first_stride=1)
    assert RegNetParams.from_dict(params.to_dict()) == params
    assert "stem_type" not in RegNetParams(depth=13, w0=24, wa=36.44, wm=2.49, group_width=8).to_dict()
    spec = resolve_model(regnet="depth=13,w0=24,wa=36.44,wm=2.49,group_width=8,stem_type=cifar,stem_width=16,"
                               "first_stride=1", resolution=32)
    assert spec.stage_resolutions() == [32, 16, 8, 4] and spec.stem.type == "cifar"


def test_describe_and_sample_warn_about_tiny_stages(capsys):
    assert main(["describe", "regnetx_002", "--resolution", "28", "--in-channels", "1", "--num-classes", "10"]) == 0
    out, err = capsys.readouterr()
    assert "stages 3, 4 of 4 run at <= 2x2 px (stages at 7/4/2/1 px" in err and " px " in out.splitlines()[1]
    assert main(["describe", "regnetx_002"]) == 0 and "warning" not in capsys.readouterr().err
    assert main(["sample", "anynetx_a", "-n", "2", "--flops", "5M:20M", "--resolution", "28", "--in-channels", "1",
                 "--num-classes", "10", "--input-form", "imagenet"]) == 0
    assert "2 of 2 models have a tiny stage" in capsys.readouterr().err
    assert main(["sample", "anynetx_a", "-n", "2", "--flops", "5M:20M", "--resolution", "28", "--in-channels", "1",
                 "--num-classes", "10"]) == 0
    lines, err = capsys.readouterr()
    assert "tiny stage" not in err and json.loads(lines.splitlines()[0])["spec"]["stem"]["type"] == "cifar"


def _write(path, text):
    path.write_text(text)
    return path


def test_a_shared_field_with_a_fixed_value_samples():
    space = dataclasses.replace(load_space("anynetx_c"), stage={**load_space("anynetx_c").stage,
                                                                "bottleneck_ratio": 1.0})
    models = sample_models(space, 5, seed=0, windows={"flops": (5e6, 20e6)}, resolution=28, in_channels=1,
                           num_classes=10)
    assert all(m.spec.bottleneck_ratios == [1.0] * 4 and m.params["b3"] == 1.0 for m in models)
