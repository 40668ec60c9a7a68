"""Analytic complexity vs building the module and counting it with PyTorch, side by side.

    python benchmarks/complexity_speed.py [--n 10000] [--build-n 300]

The analytic count runs on all --n random specs; building + counting (meta device, FlopCounterMode) runs on
the first --build-n of them (it is the slow path being compared). Per-spec medians and the ratio are printed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import random_spec, torch_counts  # noqa: E402

from regnet_space import complexity  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--build-n", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = random.Random(0)
    specs = [random_spec(rng) for _ in range(args.n)]

    start = time.perf_counter()
    analytic_times = []
    for spec in specs:
        t = time.perf_counter()
        complexity(spec)
        analytic_times.append(time.perf_counter() - t)
    analytic_total = time.perf_counter() - start

    build_times = []
    for spec in specs[: args.build_n]:
        t = time.perf_counter()
        torch_counts(spec)
        build_times.append(time.perf_counter() - t)

    a, b = statistics.median(analytic_times), statistics.median(build_times)
    print(f"analytic:        {args.n} specs in {analytic_total:.2f} s, median {a * 1e6:.1f} us/spec")
    print(f"build + count:   {len(build_times)} specs, median {b * 1e3:.2f} ms/spec "
          f"(10,000 specs would take ~{b * 10_000:.0f} s)")
    print(f"ratio (build+count / analytic, per-spec medians): {b / a:.0f}x")


if __name__ == "__main__":
    main()
