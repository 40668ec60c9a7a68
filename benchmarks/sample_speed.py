"""Accepted samples per second in a complexity window: vectorised prefilter vs the per-draw exact path.

    python benchmarks/sample_speed.py [--spaces anynetx_a regnetx] [--flops 360M:400M] [--n 5000]
                                      [--slow-n 200] [--repeats 3]

Both paths return the same models (tests/test_spaces_sampling.py holds them equal); the per-draw path builds
and counts every draw. The two are interleaved per repeat and the medians compared. Runs on one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from regnet_space.spaces import load_space, parse_window
from regnet_space.spaces.sampling import sample_with_stats


def rate(space, n: int, windows: dict, vectorized: bool) -> tuple[float, float, float, int]:
    """(accepted models per wall second, per CPU second, rejection rate, draws) of one run. The machine is
    shared, so the CPU-time rate is the one core's capacity; the wall-clock rate is what a user waits."""
    wall, cpu = time.perf_counter(), time.process_time()
    models, stats = sample_with_stats(space, n, seed=0, windows=windows, vectorized=vectorized)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(models) / wall, len(models) / cpu, stats.rejection_rate, stats.drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=["anynetx_a", "regnetx"])
    parser.add_argument("--flops", default="360M:400M")
    parser.add_argument("--n", type=int, default=5000, help="models per vectorised run")
    parser.add_argument("--slow-n", type=int, default=200, help="models per per-draw run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    windows = {"flops": parse_window(args.flops)}
    for name in args.spaces:
        space = load_space(name)
        fast, slow = [], []
        for _ in range(args.repeats):
            fast.append(rate(space, args.n, windows, True))
            slow.append(rate(space, args.slow_n, windows, False))
        fast_wall, fast_cpu = (statistics.median(r[i] for r in fast) for i in (0, 1))
        slow_wall, slow_cpu = (statistics.median(r[i] for r in slow) for i in (0, 1))
        rejection, drawn = fast[0][2], fast[0][3]
        print(f"{name}, flops {args.flops}: {args.n} models from {drawn:,} draws (rejection {rejection:.2%})")
        print(f"  vectorised: {fast_cpu:7.0f} accepted/CPU-s {fast_wall:7.0f} accepted/wall-s")
        print(f"  per-draw:   {slow_cpu:7.0f} accepted/CPU-s {slow_wall:7.0f} accepted/wall-s ({args.slow_n} models)")
        print(f"  ratio (CPU-s): {fast_cpu / slow_cpu:.1f}x")


if __name__ == "__main__":
    main()
