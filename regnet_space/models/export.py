"""Hand a model to the tools it will be trained or deployed with: timm, pycls, ONNX. Every format writes the
network it was given or refuses with one line saying why and which format can: never a different network.

- **timm**: the keyword arguments of ``timm.models.regnet.RegNetCfg`` (timm's ``group_size`` is our g, its
  ``bottle_ratio`` is 1/b: the bottleneck *multiplier*), plus ``in_chans``/``num_classes`` for ``RegNet``.
  Only an ImageNet-form RegNet can be expressed: the spec must be exactly what its RegNet parameters generate
  (timm builds the same 3x3 stride-2 stem, X/Y blocks and 1x1-conv shortcuts, with q = 8). timm's RegNet and
  byobnet stems are stride 2 and their stages reach a smaller output stride by dilation, not by a stride-1
  stage, so the small-image form (``cifar`` stem, first stage stride 1) is refused.
- **pycls**: a config yaml. ``MODEL.TYPE: regnet`` with ``REGNET.*`` for a RegNet whose stages all stride 2
  (pycls's ``REGNET.STRIDE`` is one stride for every stage), else ``anynet`` with per-stage ``ANYNET.*`` lists
  (``STRIDES`` per stage, ``STEM_TYPE: res_stem_cifar`` for the small-image form). pycls's ``BOT_MUL(S)`` is
  1/b; its group width of an ungrouped conv is the bottleneck width; SE is one ratio for the whole network;
  its stems take 3 channels. ``TEST.IM_SIZE`` (the resize before pycls's centre crop of TRAIN.IM_SIZE) follows
  pycls: 256 for 224 px training, the spec's ``test_resize`` for a network ``scale`` scaled (as pycls's
  ``scaler.py`` scales it); the training size for the small-image form.
  Networks pycls cannot build (other block types, stems, block options, per-stage SE ratios, a head with a
  hidden layer, other input channels) are refused with the reason.
- **ONNX**: the built module traced by PyTorch's TorchScript-based exporter (no onnxscript needed), input
  ``input`` (N x C x H x W: N dynamic, C/H/W fixed to the size the network was designed for, so a runtime reads
  the expected input from the graph), output ``logits``; the ``[export]`` extra adds onnx + onnxruntime to
  check it.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from ..errors import UserError
from .regnet import RegNetParams
from .spec import STEM_FIRST_CONV, AnyNetSpec, StageSpec

FORMATS = ("timm", "pycls", "onnx")
PYCLS_STEMS = {"simple": "simple_stem_in", "resnet": "res_stem_in", "cifar": "res_stem_cifar"}
PYCLS_BLOCKS = {"vanilla": "vanilla_block", "res_basic": "res_basic_block", "res_bottleneck": "res_bottleneck_block"}
_STAGE_DEFAULTS = {f: getattr(StageSpec(depth=1, width=8), f) for f in ("se_style", "stride_on", "shortcut")}


def regnet_of(spec: AnyNetSpec, regnet: RegNetParams | None) -> RegNetParams | None:
    """``regnet`` if it generates exactly ``spec`` (at its input size), else None."""
    if regnet is None:
        return None
    generated = regnet.to_spec(resolution=spec.resolution, in_channels=spec.in_channels, num_classes=spec.num_classes)
    # The test resize is no part of the network: a RegNet scaled in resolution only is still that RegNet.
    return regnet if dataclasses.replace(generated, test_resize=spec.test_resize) == spec else None


def is_small_image_form(spec: AnyNetSpec) -> bool:
    """True for pycls's CIFAR form: a stem that keeps the input size (``cifar``, 3x3 stride 1)."""
    return STEM_FIRST_CONV[spec.stem.type][1] == 1


def timm_config(spec: AnyNetSpec, regnet: RegNetParams | None) -> dict[str, Any]:
    """``{"RegNetCfg": {...}, "RegNet": {in_chans, num_classes}, "input_size": [C, H, W]}``."""
    regnet = regnet_of(spec, regnet)
    if regnet is None:
        raise UserError("--format timm: timm's RegNetCfg describes RegNets only, and this model is not one (or "
                        "not exactly what its RegNet parameters generate); use --format pycls or onnx")
    if (regnet.stem_type, regnet.first_stride) != ("simple", 2):
        raise UserError(f"--format timm: timm's RegNet has a 3x3 stride-2 stem and stride-2 stages only, this "
                        f"network has a {regnet.stem_type!r} stem and a stride-{regnet.first_stride} first stage "
                        f"(the small-image form); use --format pycls or onnx")
    if regnet.q != 8:
        raise UserError(f"--format timm: timm quantizes widths to multiples of 8, this RegNet uses q={regnet.q}")
    cfg = {"depth": regnet.depth, "w0": int(regnet.w0), "wa": regnet.wa, "wm": regnet.wm,
           "group_size": regnet.group_width, "bottle_ratio": 1 / regnet.bottleneck_ratio,
           "se_ratio": regnet.se_ratio, "stem_width": regnet.stem_width}
    return {"RegNetCfg": cfg, "RegNet": {"in_chans": spec.in_channels, "num_classes": spec.num_classes},
            "input_size": [spec.in_channels, spec.resolution, spec.resolution],
            "usage": "from timm.models.regnet import RegNet, RegNetCfg; "
                     "model = RegNet(RegNetCfg(**d['RegNetCfg']), **d['RegNet'])"}


def _pycls_checks(spec: AnyNetSpec) -> None:
    """Raise UserError naming the first thing pycls's AnyNet cannot express."""
    def refuse(why: str) -> UserError:
        return UserError(f"--format pycls: {why}; use --format onnx")

    if spec.in_channels != 3:
        raise refuse(f"pycls's stems take 3 input channels, this model takes {spec.in_channels} (export it with "
                     f"--in-channels 3 to get the 3-channel network)")
    if spec.stem.type not in PYCLS_STEMS:
        raise refuse(f"pycls has no {spec.stem.type!r} stem (it has {', '.join(PYCLS_STEMS)})")
    blocks = {s.block for s in spec.stages}
    if len(blocks) > 1 or not blocks <= set(PYCLS_BLOCKS):
        raise refuse(f"pycls takes one block type per network, one of {', '.join(PYCLS_BLOCKS)} "
                     f"(this has {', '.join(sorted(blocks))})")
    if len({s.se_ratio for s in spec.stages}) > 1:
        raise refuse("pycls has one SE ratio for the whole network")
    for i, stage in enumerate(spec.stages):
        for name, default in _STAGE_DEFAULTS.items():
            if getattr(stage, name) != default and not (name == "se_style" and stage.se_ratio == 0):
                raise refuse(f"stage {i + 1} sets {name}={getattr(stage, name)!r}, which pycls has no option for")
        if stage.block != "res_bottleneck" and (stage.se_ratio or stage.bottleneck_ratio != 1 or stage.group_width):
            raise refuse(f"pycls's {PYCLS_BLOCKS[stage.block]} takes no bottleneck, groups or SE "
                         f"(stage {i + 1} sets them)")
    if spec.head.width or not spec.head.bias:
        raise refuse("pycls's head is global pooling + a linear layer with bias")


def pycls_test_size(spec: AnyNetSpec) -> int:
    """pycls's ``TEST.IM_SIZE`` for a network trained at ``spec.resolution``. pycls's ImageNet test transform
    resizes to TEST.IM_SIZE and centre-crops TRAIN.IM_SIZE, so the network still sees its own size.

    - ``spec.test_resize`` when set: ``scale`` sets it to what pycls's ``scaler.py`` writes for the same
      factor, round(T * r / 4) * 4 from the unscaled test size T. That cannot be derived from the scaled
      training size round(R * r / 4) * 4, which is rounded on its own (models/scaling.py).
    - else R * 256/224 rounded to a multiple of 4 (half to even, as Python's and pycls's ``round``): 256 for
      224, as in pycls's defaults and zoo configs; for another R, what the scaler writes for the 224/256 base
      at r = R/224.
    - the training size for the small-image form: pycls's CIFAR loader ignores TEST.IM_SIZE, and its scaler
      rounds a base test size equal to the training size exactly as the training size.
    """
    if spec.test_resize is not None:
        return spec.test_resize
    if is_small_image_form(spec):
        return spec.resolution
    return max(4, round(spec.resolution * 256 / 224 / 4) * 4)


def pycls_config(spec: AnyNetSpec, regnet: RegNetParams | None) -> dict[str, dict[str, Any]]:
    """The pycls config sections (MODEL, REGNET or ANYNET, TRAIN, TEST) as nested dicts."""
    _pycls_checks(spec)
    se = spec.stages[0].se_ratio
    config: dict[str, dict[str, Any]] = {"MODEL": {"NUM_CLASSES": spec.num_classes}}
    regnet = regnet_of(spec, regnet)
    if regnet is not None and regnet.first_stride == 2:  # pycls's REGNET.STRIDE is every stage's stride
        config["MODEL"]["TYPE"] = "regnet"
        config["REGNET"] = {"STEM_TYPE": PYCLS_STEMS[regnet.stem_type], "STEM_W": regnet.stem_width,
                            "BLOCK_TYPE": "res_bottleneck_block", "STRIDE": 2, "SE_ON": se > 0, "SE_R": se or 0.25,
                            "DEPTH": regnet.depth, "W0": int(regnet.w0), "WA": regnet.wa, "WM": regnet.wm,
                            "GROUP_W": regnet.group_width, "BOT_MUL": 1 / regnet.bottleneck_ratio}
    else:
        bottleneck = spec.stages[0].block == "res_bottleneck"
        config["MODEL"]["TYPE"] = "anynet"
        config["ANYNET"] = {
            "STEM_TYPE": PYCLS_STEMS[spec.stem.type], "STEM_W": spec.stem.width,
            "BLOCK_TYPE": PYCLS_BLOCKS[spec.stages[0].block],
            "DEPTHS": spec.depths, "WIDTHS": spec.widths, "STRIDES": [s.stride for s in spec.stages],
            # pycls's vanilla and basic blocks assert that they get no bottleneck multiplier or group width.
            "BOT_MULS": [1 / s.bottleneck_ratio for s in spec.stages] if bottleneck else [],
            # pycls's group width of an ungrouped 3x3 is the whole bottleneck (one group).
            "GROUP_WS": [s.group_width or round(s.width / s.bottleneck_ratio) for s in spec.stages]
            if bottleneck else [],
            "SE_ON": se > 0, "SE_R": se or 0.25,
        }
    config["TRAIN"] = {"IM_SIZE": spec.resolution}
    config["TEST"] = {"IM_SIZE": pycls_test_size(spec)}
    return config


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(round(value, 12))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return str(value)


def to_yaml(config: dict[str, dict[str, Any]], comments: list[str] = ()) -> str:
    """A two-level mapping of scalars and flat lists as YAML (all a pycls config needs; yacs reads it)."""
    lines = [f"# {c}" for c in comments]
    for section, values in config.items():
        lines.append(f"{section}:")
        lines += [f"  {key}: {_yaml_scalar(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def pycls_yaml(spec: AnyNetSpec, regnet: RegNetParams | None) -> str:
    config = pycls_config(spec, regnet)
    comments = ["pycls config written by regnet-space (BOT_MUL = 1/b; see regnet_space/models/export.py)"]
    regnet = regnet_of(spec, regnet)
    if regnet is not None and config["MODEL"]["TYPE"] == "anynet":
        comments.append(f"RegNet depth={regnet.depth} w0={regnet.w0:g} wa={regnet.wa:g} wm={regnet.wm:g} "
                        f"g={regnet.group_width}, written as ANYNET: pycls's REGNET.STRIDE strides every stage, "
                        f"this network's first stage has stride {regnet.first_stride}")
    if config["MODEL"]["TYPE"] == "anynet" and any(
            s.block == "res_bottleneck" and s.group_width == 0 for s in spec.stages):
        comments.append("ungrouped 3x3 convs are GROUP_WS = the bottleneck widths (pycls has no 'ungrouped'); "
                        "pycls's scaler.py keeps GROUP_WS when it widens and rounds each bottleneck to a multiple of "
                        "it (so it does not widen or becomes grouped): scale with "
                        "`regnet-space scale` (which keeps them ungrouped) and export the result")
    return to_yaml(config, comments)


def export_onnx(spec: AnyNetSpec, *, weights: str | None = None, opset: int = 17) -> bytes:
    """The built model in eval mode as ONNX bytes, batch size dynamic (the caller writes them with the one safe
    writer). ``weights``: a state dict saved with
    ``torch.save(model.state_dict(), F)``, read with ``weights_only=True`` (tensors only, no arbitrary
    unpickling); without it the weights are the seed-0 initialisation."""
    import warnings

    import torch

    from .builder import build_model
    from .memory import check_fits

    check_fits(spec, 1, training=False, what="the model")  # the input's fault first, whatever is installed
    try:
        import onnx  # noqa: F401  torch's exporter serialises through it (the optional [export] extra)
    except ImportError:
        raise UserError("--format onnx needs the onnx package: pip install 'regnet-space[export]'") from None
    torch.manual_seed(0)
    model = build_model(spec).eval()
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (OSError, RuntimeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"--weights {weights}: not a state dict of this model ({first[:200]})") from None
    example = torch.zeros(1, spec.in_channels, spec.resolution, spec.resolution)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return buffer.getvalue()
