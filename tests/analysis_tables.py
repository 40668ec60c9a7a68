"""Synthetic results tables for the analysis tests: real specs and complexity, errors from a known rule.

The rule makes the answers checkable: error falls with flops, AnyNet models pay for shrinking widths and for a
bottleneck (b > 1), and RegNet models pay for wm far from 2.5, so refinement and bootstrap have a right answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from regnet_space import AnyNetSpec, RegNetParams, StageSpec, StemSpec, complexity, make_compatible

SMALL_DATA = {"resolution": 28, "in_channels": 1, "num_classes": 10}


def _row(space: str, spec: AnyNetSpec, error: float, **params) -> dict:
    cx = complexity(spec)
    return {"space": space, "error": error, "flops": cx.flops, "params": cx.params, "acts": cx.acts,
            "mac": cx.mac, "spec": spec.to_json(), **params}


def regnet_rows(n: int, seed: int, space: str = "regnetx") -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(n):
        params = RegNetParams(depth=int(rng.integers(6, 17)), w0=8 * int(rng.integers(1, 9)),
                              wa=round(float(np.exp(rng.uniform(np.log(8), np.log(64)))), 2),
                              wm=round(float(rng.uniform(1.5, 3.0)), 3), group_width=int(rng.choice([1, 2, 4, 8])))
        spec = params.to_spec(**SMALL_DATA)
        flops = complexity(spec).flops
        error = 30 - 2 * np.log2(flops / 1e6) + 8 * abs(np.log(params.wm / 2.5)) + rng.normal(0, 0.5)
        rows.append(_row(space, spec, float(np.clip(error, 1, 90)), model_index=index,
                         **{k: v for k, v in params.to_dict().items() if k not in ("stem_width", "q")}))
    return rows


def anynet_rows(n: int, seed: int, space: str = "anynetx_a", offset: float = 3.0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(n):
        depths = [int(d) for d in rng.integers(1, 5, size=4)]
        widths = [8 * int(w) for w in rng.integers(1, 33, size=4)]
        ratios = [float(b) for b in rng.choice([1, 2, 4], size=4)]
        groups = [int(g) for g in rng.choice([1, 2, 4, 8], size=4)]
        widths, groups = make_compatible(widths, ratios, groups)
        spec = AnyNetSpec(stages=tuple(StageSpec(depth=d, width=w, stride=2, bottleneck_ratio=b, group_width=g)
                                       for d, w, b, g in zip(depths, widths, ratios, groups)),
                          stem=StemSpec("simple", 16), **SMALL_DATA)
        flops = complexity(spec).flops
        shrinking = sum(b < a for a, b in zip(widths, widths[1:]))
        error = (offset + 30 - 2 * np.log2(flops / 1e6) + 3.0 * shrinking + 1.5 * np.log2(max(ratios))
                 + rng.normal(0, 0.5))
        stage_params = {f"{name}{i + 1}": value for name, values in (("d", depths), ("w", widths),
                        ("b", ratios), ("g", groups)) for i, value in enumerate(values)}
        rows.append(_row(space, spec, float(np.clip(error, 1, 90)), model_index=index, **stage_params))
    return rows


def table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A study-like table: an AnyNetX_A population and a RegNetX population of n models each."""
    return pd.DataFrame(anynet_rows(n, seed) + regnet_rows(n, seed + 1))
