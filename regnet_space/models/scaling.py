"""Model scaling: grow a network's flops by a factor s through depth, width and resolution.

The strategies of "Fast and Accurate Model Scaling" (Dollár, Singh, Girshick, CVPR 2021). A strategy gives each
dimension an exponent: depths grow by s^e_d, widths by s^e_w, the input resolution by s^e_r (and group widths
by s^e_g), with e_d + 2 e_w + 2 e_r = 1 so that flops (~ d w^2 r^2) grow by s. Activations grow by about
s^(e_d + e_w + 2 e_r), which is why the strategies differ at equal flops:

- ``d``, ``w``, ``r`` scale one dimension; ``dw``, ``dr``, ``wr``, ``dwr`` split the growth equally
  (``dwr`` is uniform compound scaling, EfficientNet's idea without its search); activations grow ~ s^(1/2)
  for ``w`` and up to ~ s for ``d`` and ``r``.
- ``dWr`` ("fast compound", the paper's recommendation; ``dWS`` is accepted for it) scales mostly width:
  e_d = (1 - a)/2, e_w = a/2, e_r = (1 - a)/4, group widths with the widths; a = 1 is ``w``, a = 1/3 is
  ``dwr``; the paper's a = 0.8 gives activations ~ s^0.6 (pycls's ``d1_w8_g8_r1``).
- pycls's weighted form ``d1_w8_g8_r1``: relative weights per dimension; e_x = weight_x / sum(d, w, r) for
  depth and half that for width, groups and resolution.

The scaled network is made valid as pycls makes it: depth round(d·s_d) (at least 1), widths rounded to a
multiple of 8, group widths round(g·s_g) then snapped to 1, 2, 4 or a multiple of 8, the group-compatibility
rule, and the resolution rounded to a multiple of 4. The stem and the head keep their widths. Because of the
rounding, the factor handed to the strategy is calibrated so the result's flops land nearest the target.

The test resize (pycls's ``TEST.IM_SIZE``, 256 for 224 px) is scaled as pycls's ``scaler.py`` scales it:
round(T * s_r / 4) * 4 from the unscaled T, rounded on its own like the resolution, and kept in the spec's
``test_resize`` where it differs from the default ``export`` derives from the scaled resolution.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from ..errors import UserError
from .export import pycls_test_size
from .regnet import make_compatible
from .spec import AnyNetSpec

NAMED = ("d", "w", "r", "dw", "dr", "wr", "dwr", "dWr")
ALIASES = {"dWS": "dWr"}
_WEIGHTED = re.compile(r"^([dwgr]\d+(\.\d+)?)(_[dwgr]\d+(\.\d+)?)*$")
# Factors tried around the target (s * 2^(k/64), |k| <= 64): fine enough that rounding, not the grid, sets the
# remaining flops error.
_CALIBRATION_STEPS = 64


@dataclass(frozen=True)
class Strategy:
    """Exponents of the scale factor per dimension: depth, width, group width, resolution."""

    name: str
    e_d: float
    e_w: float
    e_g: float
    e_r: float

    @property
    def acts_exponent(self) -> float:
        """Activations of a conv network grow about as s^(e_d + e_w + 2 e_r)."""
        return self.e_d + self.e_w + 2 * self.e_r


def strategy(name: str, alpha: float = 0.8) -> Strategy:
    """A named strategy (``d`` ... ``dwr``, ``dWr``/``dWS`` with ``alpha``) or pycls's weighted form."""
    name = ALIASES.get(name, name)
    if name == "dWr":
        if not 1 / 3 <= alpha <= 1:
            raise UserError(f"--alpha {alpha}: must be in [1/3, 1] (1/3 is dwr, 1 is w)")
        return Strategy(f"dWr(alpha={alpha:g})", (1 - alpha) / 2, alpha / 2, alpha / 2, (1 - alpha) / 4)
    if name in NAMED:
        weights = {x: float(x in name) for x in "dwgr"}
    elif _WEIGHTED.match(name):
        weights = {x: 0.0 for x in "dwgr"}
        for part in name.split("_"):
            weights[part[0]] = float(part[1:])
    else:
        raise UserError(f"--strategy {name!r}: use one of {', '.join(NAMED)}, dWS (= dWr), or pycls's weighted "
                        f"form such as d1_w8_g8_r1")
    total = weights["d"] + weights["w"] + weights["r"]
    if total <= 0:
        raise UserError(f"--strategy {name!r}: gives no weight to depth, width or resolution")
    return Strategy(name, weights["d"] / total, weights["w"] / total / 2, weights["g"] / total / 2,
                    weights["r"] / total / 2)


def _snap_group_width(g: int) -> int:
    """pycls's group widths after scaling: 1, 2, 4, or a multiple of 8 (at least 8)."""
    return g if g <= 2 else 4 if g <= 5 else round(g / 8) * 8


def scale_by(spec: AnyNetSpec, factor: float, how: Strategy) -> AnyNetSpec:
    """``spec`` with its flops scaled by about ``factor`` (before rounding) along ``how``'s dimensions."""
    s_d, s_w, s_g, s_r = (factor ** e for e in (how.e_d, how.e_w, how.e_g, how.e_r))
    depths = [max(1, round(s.depth * s_d)) for s in spec.stages]
    widths = [max(1, round(s.width * s_w / 8)) * 8 for s in spec.stages]
    groups = [0 if s.group_width == 0 else _snap_group_width(max(1, round(s.group_width * s_g))) for s in spec.stages]
    stages = []
    for stage, d, w, g in zip(spec.stages, depths, widths, groups):
        if g > 0:
            (w,), (g,) = make_compatible([w], [stage.bottleneck_ratio], [g])
        stages.append(dataclasses.replace(stage, depth=d, width=w, group_width=g))
    resolution = max(4, round(spec.resolution * s_r / 4) * 4)
    test_resize = max(resolution, round(pycls_test_size(spec) * s_r / 4) * 4)
    scaled = dataclasses.replace(spec, stages=tuple(stages), resolution=resolution, test_resize=None)
    if test_resize != pycls_test_size(scaled):
        scaled = dataclasses.replace(scaled, test_resize=test_resize)
    try:
        scaled.validate()
    except UserError as exc:
        raise UserError(f"the scaled network is not valid ({exc}); this block type cannot be scaled this way") from None
    return scaled


def scale_to_flops(spec: AnyNetSpec, target_flops: float, how: Strategy) -> tuple[AnyNetSpec, float]:
    """The network scaled along ``how`` whose flops are nearest ``target_flops``, and the factor that gave it.

    Factors s·2^(k/64) for |k| <= 64 around s = target / flops are tried; the nearest in log-flops wins, ties
    going to the factor nearest s.
    """
    from .complexity import complexity

    base = complexity(spec).flops
    if target_flops <= 0:
        raise UserError(f"--flops {target_flops:g}: must be > 0")
    nominal = target_flops / base
    best: tuple[float, int, AnyNetSpec, float] | None = None
    for k in range(-_CALIBRATION_STEPS, _CALIBRATION_STEPS + 1):
        factor = nominal * 2 ** (k / _CALIBRATION_STEPS)
        candidate = scale_by(spec, factor, how)
        error = abs(math.log(complexity(candidate).flops / target_flops))
        if best is None or (error, abs(k)) < (best[0], best[1]):
            best = (error, abs(k), candidate, factor)
    return best[2], best[3]
