"""pycls's rule of thumb for good models, as a design-space constraint (RegNetX as the paper constrains it).

The RegNet paper (section 4) limits RegNetX to networks whose parameters and activations are not out of line
with their flops; pycls states the rule as params < 3 + 5.5 F and acts < 6.5 sqrt(F), params and acts in
millions and F in GFLOPs, measured on 224 px ImageNet with 1000 classes.

At another input size the rule cannot be applied to the measured numbers as they are: flops and acts shrink
with the input area while params do not, so at 28 px nearly every network would break the params limit (28 of
40 RegNetX models of our first study did). What the rule judges is the network's shape (its stages' widths,
depths and groups), so we judge that shape where the rule was fitted: each model is re-counted in the ImageNet
form (RegNet's 3x3 stride-2 stem of width 32, every stage stride 2) at 224x224x3 with 1000 classes, and
kept only if that network meets the rule.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..models.spec import AnyNetSpec, StemSpec

REFERENCE_INPUT = {"resolution": 224, "in_channels": 3, "num_classes": 1000}


def within_limits(flops, params, acts):
    """params < 3 + 5.5 F and acts < 6.5 sqrt(F) (M, F in GFLOPs): scalars or arrays."""
    gflops = np.asarray(flops, dtype=float) / 1e9
    return (np.asarray(params) / 1e6 < 3 + 5.5 * gflops) & (np.asarray(acts) / 1e6 < 6.5 * np.sqrt(gflops))


def reference_network(spec: AnyNetSpec) -> AnyNetSpec:
    """The network of ``spec``'s stages in the ImageNet form at 224 px, 3 channels, 1000 classes."""
    stages = tuple(dataclasses.replace(stage, stride=2) for stage in spec.stages)
    return dataclasses.replace(spec, stem=StemSpec(), stages=stages, **REFERENCE_INPUT)


def meets_limits(spec: AnyNetSpec) -> bool:
    """Whether ``spec``'s network meets the rule where it was fitted (see the module docstring)."""
    from ..models.complexity import complexity

    cx = complexity(reference_network(spec))
    return bool(within_limits(cx.flops, cx.params, cx.acts))
