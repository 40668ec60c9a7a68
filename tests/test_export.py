"""Exports: timm RegNetCfg kwargs, a pycls yaml that reads back to the same network, ONNX with the same logits."""

import json

import pytest

from regnet_space.cli import main as cli
from regnet_space.models.export import pycls_config, timm_config
from regnet_space.models.regnet import RegNetParams
from regnet_space.models.resolve import regnet_params_of, resolve_model
from regnet_space.models.scaling import scale_by, strategy


def export(tmp_path, model, fmt, *extra, suffix=None):
    out = tmp_path / f"model.{suffix or fmt}"
    assert cli(["export", model, "--format", fmt, "--out", str(out), *extra]) == 0
    return out


def spec_from_pycls(cfg):
    """The widths and depths a pycls config builds (REGNET.* through the RegNet rule, ANYNET.* as listed)."""
    if cfg["MODEL"]["TYPE"] == "regnet":
        r = cfg["REGNET"]
        params = RegNetParams(depth=r["DEPTH"], w0=r["W0"], wa=r["WA"], wm=r["WM"], group_width=r["GROUP_W"],
                              bottleneck_ratio=1 / r["BOT_MUL"], se_ratio=r["SE_R"] if r["SE_ON"] else 0.0,
                              stem_width=r["STEM_W"])
        spec = params.to_spec(num_classes=cfg["MODEL"]["NUM_CLASSES"], resolution=cfg["TRAIN"]["IM_SIZE"])
        return spec.widths, spec.depths, spec.group_widths
    a = cfg["ANYNET"]
    return a["WIDTHS"], a["DEPTHS"], a["GROUP_WS"]


@pytest.mark.parametrize("model", ["regnetx_002", "regnety_016", "resnet50", "regnetx_032"])
def test_pycls_yaml_round_trips_to_the_same_widths_and_depths(tmp_path, model):
    yaml = pytest.importorskip("yaml")
    cfg = yaml.safe_load(export(tmp_path, model, "pycls", suffix="yaml").read_text())
    spec = resolve_model(model)
    widths, depths, groups = spec_from_pycls(cfg)
    assert (list(widths), list(depths)) == (spec.widths, spec.depths)
    assert list(groups) == [g or round(w / b) for g, w, b in zip(spec.group_widths, spec.widths, spec.bottleneck_ratios)]
    assert cfg["MODEL"]["TYPE"] == ("anynet" if model == "resnet50" else "regnet")


def test_scaled_model_exports_as_pycls_anynet(tmp_path):
    yaml = pytest.importorskip("yaml")
    scaled = tmp_path / "scaled.json"
    assert cli(["scale", "regnetx_002", "--flops", "800M", "--out", str(scaled)]) == 0
    cfg = yaml.safe_load(export(tmp_path, str(scaled), "pycls", suffix="yaml").read_text())
    spec = resolve_model(str(scaled))
    assert cfg["MODEL"]["TYPE"] == "anynet" and cfg["TRAIN"]["IM_SIZE"] == spec.resolution
    assert spec_from_pycls(cfg)[:2] == (spec.widths, spec.depths)


def test_a_regnet_scaled_in_resolution_only_is_still_exported_as_that_regnet():
    """The test size a scaled spec keeps is no part of the network: a RegNet scaled by ``r`` alone is still
    its RegNet, written as REGNET.* with the scaled TEST.IM_SIZE (248 px trains, 280 tests: 256 * 1.1)."""
    scaled = scale_by(resolve_model("regnetx_002"), 1.21, strategy("r"))
    params = regnet_params_of("regnetx_002", None)
    config = pycls_config(scaled, params)
    assert config["MODEL"]["TYPE"] == "regnet" and (config["TRAIN"], config["TEST"]) == ({"IM_SIZE": 248},
                                                                                           {"IM_SIZE": 280})
    assert timm_config(scaled, params)["input_size"] == [3, 248, 248]


def test_timm_kwargs_are_regnetcfg_fields(tmp_path):
    data = json.loads(export(tmp_path, "regnety_016", "timm", suffix="json").read_text())
    assert data["RegNetCfg"] == {"depth": 27, "w0": 48, "wa": 20.71, "wm": 2.65, "group_size": 24,
                                 "bottle_ratio": 1.0, "se_ratio": 0.25, "stem_width": 32}
    assert data["RegNet"] == {"in_chans": 3, "num_classes": 1000}


def test_what_a_format_cannot_express_is_refused(tmp_path, capsys):
    for model, fmt in (("resnet50", "timm"), ("shufflenet_v2_x1_0", "pycls"), ("resnet50d", "pycls")):
        assert cli(["export", model, "--format", fmt, "--out", str(tmp_path / "x")]) == 2, (model, fmt)
        assert "use --format" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_onnx_gives_the_same_logits_as_pytorch(tmp_path):
    pytest.importorskip("onnx", reason="the [export] extra (onnx, onnxruntime) is not installed")
    ort = pytest.importorskip("onnxruntime", reason="the [export] extra (onnx, onnxruntime) is not installed")
    import numpy as np
    import torch

    from regnet_space import build_model

    spec = resolve_model("regnety_002", resolution=32, num_classes=10)
    torch.manual_seed(1)
    model = build_model(spec).eval()
    with torch.no_grad():  # give BN non-trivial statistics so the check covers them
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    weights = tmp_path / "weights.pt"
    torch.save(model.state_dict(), weights)
    out = export(tmp_path, "regnety_002", "onnx", "--resolution", "32", "--num-classes", "10", "--weights", str(weights))
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    assert got.shape == (3, 10)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_onnx_refuses_weights_of_another_model(tmp_path):
    import torch

    from regnet_space import build_model

    weights = tmp_path / "other.pt"
    torch.save(build_model("regnetx_002").state_dict(), weights)
    assert cli(["export", "regnety_002", "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
                "--weights", str(weights)]) == 2


def test_onnx_records_the_input_shape_the_network_was_designed_for(tmp_path):
    """A small-image-form network for 28x28 grey images: the graph's input is N x 1 x 28 x 28, N dynamic."""
    onnx = pytest.importorskip("onnx", reason="the [export] extra (onnx, onnxruntime) is not installed")
    model = tmp_path / "small.json"
    model.write_text(json.dumps(RegNetParams(depth=10, w0=24, wa=36.44, wm=2.49, group_width=8, stem_type="cifar",
                                             stem_width=16, first_stride=1).to_dict()))
    out = export(tmp_path, str(model), "onnx", "--resolution", "28", "--in-channels", "1", "--num-classes", "10")
    graph = onnx.load(str(out)).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, 28, 28]
    assert [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == ["batch", 10]
