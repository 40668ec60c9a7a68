"""The per-stage summary of a model that ``describe --json``, ``sample`` and studies all emit."""

from __future__ import annotations

from typing import Any

from .complexity import complexity
from .regnet import RegNetParams
from .spec import AnyNetSpec


def summarize(spec: AnyNetSpec, regnet: RegNetParams | None = None) -> dict[str, Any]:
    """Widths, depths, group widths, bottleneck ratios, complexity (integers) and the full spec."""
    cx = complexity(spec)
    summary: dict[str, Any] = {
        "widths": spec.widths,
        "depths": spec.depths,
        "group_widths": spec.group_widths,
        "bottleneck_ratios": spec.bottleneck_ratios,
        "blocks": [s.block for s in spec.stages],
        "flops": cx.flops,
        "params": cx.params,
        "acts": cx.acts,
        "mac": cx.mac,
        "resolution": spec.resolution,
        "in_channels": spec.in_channels,
        "num_classes": spec.num_classes,
    }
    if regnet is not None:
        summary["regnet"] = regnet.to_dict()
    summary["spec"] = spec.to_dict()
    return summary


def human(value: float, unit: str = "") -> str:
    """12345678 -> '12.35M': the scale papers quote complexity in."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= threshold:
            return f"{value / threshold:.2f}{suffix}{unit}"
    return f"{value:g}{unit}"


def compact(value: float) -> str:
    """5664873 -> '5.66M', 18300000 -> '18.3M', 199040872 -> '199M': three significant digits and a K/M/G
    suffix, for text where a number is read, not copied (reports, plot titles)."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K"), (1.0, "")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"


def percent(value: float, digits: int = 1) -> str:
    """An error already in percent: 18.2634 -> '18.3%'."""
    return f"{value:.{digits}f}%"
