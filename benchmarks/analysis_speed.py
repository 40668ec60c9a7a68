"""EDF + flops normalisation + 10^4-sample bootstrap on 10,000 models, on one core; and the bootstrap
vectorised (a (B, m) index matrix, argmin) vs one resample at a time (the pycls loop), side by side.

    python benchmarks/analysis_speed.py [--n 10000] [--samples 10000] [--repeats 5]

Each repeat times, interleaved: the whole analysis (plain EDFs with scipy's KS test, normalised EDFs over 10
flops bins with the 1,000-permutation KS test, and the bootstrap of 10 parameter/complexity columns), the
vectorised bootstrap alone, and the loop bootstrap alone. Medians over repeats and the ratio are printed.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from regnet_space.analysis.bootstrap import bootstrap_winners, good_ranges  # noqa: E402
from regnet_space.analysis.edf import compare  # noqa: E402


def population(n: int, seed: int = 0) -> pd.DataFrame:
    """n synthetic RegNet-like models in two spaces: parameters, complexity and an error that depends on them."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(12, 29, n)
    w0 = 8 * rng.integers(1, 33, n)
    wa = np.round(np.exp(rng.uniform(np.log(8), np.log(256), n)), 1)
    wm = np.round(rng.uniform(2.0, 3.0, n), 3)
    group_width = 2 ** rng.integers(0, 6, n)
    flops = np.exp(rng.uniform(np.log(2e8), np.log(6e8), n))
    error = 40 - 3 * np.log(flops / 2e8) + 5 * np.abs(np.log(wm / 2.5)) + rng.normal(0, 1, n)
    return pd.DataFrame({"space": np.where(np.arange(n) % 2, "regnetx", "anynetx_e"), "error": error,
                         "flops": flops, "params": flops / 80, "acts": np.sqrt(flops) * 300, "depth": depth,
                         "w0": w0, "wa": wa, "wm": wm, "group_width": group_width})


def loop_winners(errors: np.ndarray, samples: int, fraction: float, seed: int) -> np.ndarray:
    """The plain way: one resample, one argmin, per iteration."""
    rng = np.random.default_rng(seed)
    m = max(1, int(round(fraction * errors.size)))
    winners = np.empty(samples, dtype=np.int64)
    for b in range(samples):
        draw = rng.integers(0, errors.size, m)
        winners[b] = draw[np.argmin(errors[draw])]
    return winners


def analysis(frame: pd.DataFrame, samples: int) -> None:
    compare(frame)
    compare(frame, normalize="flops", bins=10, permutations=1000)
    good_ranges(frame, samples=samples, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    frame = population(args.n)
    errors = frame["error"].to_numpy()
    assert np.array_equal(bootstrap_winners(errors, samples=512, seed=1), loop_winners(errors, 512, 0.25, 1))

    whole, vectorised, loop = [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        analysis(frame, args.samples)
        whole.append(time.perf_counter() - t)
        t = time.perf_counter()
        bootstrap_winners(errors, samples=args.samples, seed=0)
        vectorised.append(time.perf_counter() - t)
        t = time.perf_counter()
        loop_winners(errors, args.samples, 0.25, 0)
        loop.append(time.perf_counter() - t)

    w, v, lp = (statistics.median(x) for x in (whole, vectorised, loop))
    print(f"{args.n} models, {args.samples} bootstrap samples, 1 core, median of {args.repeats}")
    print(f"EDF + normalisation (with KS tests) + bootstrap of 10 columns: {w:.3f} s")
    print(f"bootstrap winners alone: vectorised {v:.3f} s, loop {lp:.3f} s, ratio {lp / v:.1f}x")


if __name__ == "__main__":
    main()
