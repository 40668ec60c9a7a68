"""`regnet-space scale` + `export --format pycls` against pycls's own ``pycls/models/scaler.py``, case by case.

For each base network, strategy and factor: our export of ``scale_by(spec, factor, strategy)`` against what
pycls's ``scale_model()`` writes when it scales our export of the unscaled spec with the same
``MODEL.SCALING_TYPE`` and ``MODEL.SCALING_FACTOR``. Counts the cases whose TRAIN.IM_SIZE, TEST.IM_SIZE or
scaled stages (DEPTHS, WIDTHS, BOT_MULS, GROUP_WS) differ. 8 networks x 8 strategies x 197 factors (2^(k/32),
k = -64 .. 132: 1/4 to 17.4) = 12,608 cases by default, about 15 s of CPU.

    PYTHONPATH=. python benchmarks/pycls_scaler_agreement.py [--steps 32]

Needs a pycls with ``pycls/models/scaler.py`` (pycls's GitHub HEAD; the PyPI release 0.1.1 has none) on the
path. ``resnet50`` is the one network whose stages are expected to differ: pycls writes an ungrouped 3x3 as
GROUP_WS = the bottleneck width, which its scaler holds fixed (the exported yaml says so); its image sizes are
compared like every other network's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter

from regnet_space.models.export import pycls_config
from regnet_space.models.resolve import resolve_model
from regnet_space.models.scaling import scale_by, strategy
from regnet_space.models.spec import AnyNetSpec, StageSpec, StemSpec

STRATEGIES = ("d", "w", "r", "dw", "dr", "wr", "dwr", "d1_w8_g8_r1")
STAGE_KEYS = ("DEPTHS", "WIDTHS", "BOT_MULS", "GROUP_WS")


def small_form(spec: AnyNetSpec) -> AnyNetSpec:
    """pycls's CIFAR form of ``spec``: a 3x3 stride-1 stem of 16, the first stage at stride 1, 32 px."""
    first = dataclasses.replace(spec.stages[0], stride=1)
    return dataclasses.replace(spec, stem=StemSpec("cifar", 16), stages=(first, *spec.stages[1:]), resolution=32,
                               num_classes=10)


def networks() -> dict[str, AnyNetSpec]:
    anynet_b2 = AnyNetSpec(stem=StemSpec("simple", 32), stages=tuple(
        StageSpec(depth=d, width=w, bottleneck_ratio=2, group_width=g, se_ratio=0.25)
        for d, w, g in ((1, 48, 8), (2, 96, 16), (3, 240, 24), (1, 480, 24))))
    return {"regnetx_002": resolve_model("regnetx_002"), "regnety_016": resolve_model("regnety_016"),
            "resnet50": resolve_model("resnet50"), "resnext50_32x4d": resolve_model("resnext50_32x4d"),
            "anynet_b2": anynet_b2, "regnetx_002@160px": resolve_model("regnetx_002", resolution=160),
            "regnetx_002 small form": small_form(resolve_model("regnetx_002")),
            "resnet18 small form": small_form(resolve_model("resnet18"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=32, help="factors 2^(k/steps) from 1/4 to 17.4 (default 32)")
    args = parser.parse_args()
    try:
        from pycls.core.config import cfg, reset_cfg
        from pycls.models.scaler import scale_model
    except ModuleNotFoundError as exc:
        sys.exit(f"needs pycls with pycls/models/scaler.py (pycls's GitHub HEAD) on the path: {exc.name} missing")
    factors = [2 ** (k / args.steps) for k in range(-2 * args.steps, round(4.125 * args.steps) + 1)]
    start = time.process_time()
    cases, sizes_differ, stages_differ = 0, Counter(), Counter()
    deltas: Counter = Counter()
    for name, spec in networks().items():
        reset_cfg()
        base = pycls_config(spec, None)  # ANYNET.*: pycls 0.1.1's regnet module cannot convert REGNET.*
        cfg.MODEL.TYPE = "anynet"
        for key, value in base["ANYNET"].items():
            cfg.ANYNET[key] = value
        cfg.TRAIN.IM_SIZE, cfg.TEST.IM_SIZE = base["TRAIN"]["IM_SIZE"], base["TEST"]["IM_SIZE"]
        base_cfg = cfg.clone()
        for how in STRATEGIES:
            for factor in factors:
                cases += 1
                ours = pycls_config(scale_by(spec, factor, strategy(how)), None)
                reset_cfg()
                cfg.merge_from_other_cfg(base_cfg)
                cfg.MODEL.SCALING_TYPE, cfg.MODEL.SCALING_FACTOR = how, factor
                scale_model()
                if (ours["TRAIN"]["IM_SIZE"], ours["TEST"]["IM_SIZE"]) != (cfg.TRAIN.IM_SIZE, cfg.TEST.IM_SIZE):
                    sizes_differ[name] += 1
                    deltas[ours["TEST"]["IM_SIZE"] - cfg.TEST.IM_SIZE] += 1
                if any(ours["ANYNET"][k] and [float(x) for x in ours["ANYNET"][k]] != [float(x) for x in cfg.ANYNET[k]]
                       for k in STAGE_KEYS):
                    stages_differ[name] += 1
    print(f"{cases:,} cases ({len(networks())} networks x {len(STRATEGIES)} strategies x {len(factors)} factors), "
          f"{time.process_time() - start:.1f} s CPU")
    print(f"TRAIN.IM_SIZE or TEST.IM_SIZE differ: {sum(sizes_differ.values()):,}"
          + (f" (ours - pycls's TEST.IM_SIZE: {dict(sorted(deltas.items()))})" if deltas else ""))
    for name, count in sizes_differ.items():
        print(f"  {name}: {count}")
    print(f"scaled stages differ: {sum(stages_differ.values()):,}")
    for name, count in stages_differ.items():
        print(f"  {name}: {count}")


if __name__ == "__main__":
    main()
