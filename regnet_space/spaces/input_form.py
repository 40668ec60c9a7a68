"""The input form of a design space: the ImageNet form, or the small-image form of pycls's CIFAR networks.

The published spaces are written for 224 px ImageNet: a stride-2 stem and four stride-2 stages shrink the
input 32x, so the stages run at 56/28/14/7 px. At 28 px (Fashion-MNIST) or 32 px (CIFAR) the same networks run
their stages at 7/4/2/1 px: the last stage is a fully connected layer in disguise, and a study of such spaces
says little about design. The small-image form follows pycls's CIFAR networks (``res_stem_cifar``: a 3x3
stride-1 conv of width 16) and keeps the first stage at stride 1, so the stages shrink the input 8x and run at
28/14/7/4 px (32/16/8/4 on CIFAR), the same four scales ImageNet's stages see after its 4x stem.

``auto`` (every built-in space's form) picks the small form when the ImageNet form would put the last of four
stages below 4 px, i.e. for inputs under ``SMALL_BELOW`` = 128 px; a space or a study may name its form instead.
"""

from __future__ import annotations

import dataclasses

from ..errors import UserError
from ..models.spec import AnyNetSpec
from .space import DesignSpace

INPUT_FORMS = ("auto", "imagenet", "small")
SMALL_BELOW = 128  # 128 px / 32 = 4 px: below it the ImageNet form's last stage runs at <= 2 px
SMALL_STEM = {"type": "cifar", "width": 16}  # pycls's res_stem_cifar and its CIFAR configs' stem width
TINY_STAGE_PX = 2  # a stage at this size or smaller barely has a spatial extent left


def check_form(form: str, where: str) -> str:
    if form not in INPUT_FORMS:
        raise UserError(f"{where}: input form must be one of {', '.join(INPUT_FORMS)}, got {form!r}")
    return form


def resolve_form(form: str, resolution: int) -> str:
    """``imagenet`` or ``small``: ``auto`` chosen from the input resolution."""
    if form == "auto":
        return "small" if resolution < SMALL_BELOW else "imagenet"
    return form


def for_input(space: DesignSpace, resolution: int, form: str | None = None) -> DesignSpace:
    """The space as it is sampled at ``resolution``: in the small form, the stem becomes pycls's CIFAR stem and
    the first stage runs at stride 1 (every other field as the space says). ``form`` overrides the space's own
    ``input_form``. The ImageNet form returns the space unchanged."""
    chosen = resolve_form(check_form(form or space.input_form, f"space {space.name}"), resolution)
    if chosen == "imagenet":
        return dataclasses.replace(space, input_form="imagenet")
    if space.is_regnet:
        return dataclasses.replace(space, input_form="small", stem=dict(SMALL_STEM),
                                   regnet={**space.regnet, "first_stride": 1})
    first = {**space.stages.get(1, {}), "stride": 1}
    return dataclasses.replace(space, input_form="small", stem=dict(SMALL_STEM), stages={**space.stages, 1: first})


SPACE_REMEDY = 'the small-image form avoids it (input_form = "small", docs/spaces.md)'
MODEL_REMEDY = ("the small-image form avoids it: a RegNet given with --regnet ...,stem_type=cifar,first_stride=1 "
                "(docs/spaces.md)")


def tiny_stage_warning(spec: AnyNetSpec, remedy: str = SPACE_REMEDY) -> str | None:
    """A one-line warning when a stage of ``spec`` runs at <= 2x2 px, else None; ``remedy`` says what avoids it
    where the warning is shown (a space's or study's key, or a single model's flags)."""
    sizes = spec.stage_resolutions()
    tiny = [i + 1 for i, size in enumerate(sizes) if size <= TINY_STAGE_PX]
    if not tiny:
        return None
    which = f"stage {tiny[0]}" if len(tiny) == 1 else f"stages {', '.join(map(str, tiny))}"
    return (f"{which} of {len(sizes)} run at <= {TINY_STAGE_PX}x{TINY_STAGE_PX} px (stages at "
            f"{'/'.join(map(str, sizes))} px for a {spec.resolution} px input), a fully connected layer in "
            f"disguise; {remedy}")
