"""Models/hour of a study with 1 worker (all cores) vs N workers (cores split), side by side in one run.

    python benchmarks/study_throughput.py [--spec benchmarks/study_bench.toml] [--workers 2] [--repeats 2]

Each repeat runs the same study into a fresh directory with 1 worker, then with N, alternating, so machine
noise hits both; thread counts are set on purpose (1 worker: all cores; N workers: cores // N each).
Parallel efficiency = (models/hour with N) / (N x models/hour with 1 per-core share) is printed as the
speed-up of N workers over 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run_once(spec: str, workers: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "regnet_space.cli", "study", "run", spec, "--workers",
                                 str(workers), "--dir", directory, "--quiet"], capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"study run failed:\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="benchmarks/study_bench.toml")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    from regnet_space.study.spec import load_study_spec

    total = load_study_spec(args.spec).total
    single, multi = [], []
    for _ in range(args.repeats):
        single.append(run_once(args.spec, 1))
        multi.append(run_once(args.spec, args.workers))
    one, many = statistics.median(single), statistics.median(multi)
    rate_one, rate_many = total / one * 3600, total / many * 3600
    print(f"{total} models, {os.cpu_count()} cores, {args.repeats} repeats (median wall time, process start included)")
    print(f"1 worker  x {os.cpu_count()} threads: {one:7.1f} s  {rate_one:8.0f} models/hour")
    print(f"{args.workers} workers x {max(1, (os.cpu_count() or 1) // args.workers)} threads: {many:7.1f} s  "
          f"{rate_many:8.0f} models/hour")
    print(f"speed-up {rate_many / rate_one:.2f}x, parallel efficiency {rate_many / rate_one / args.workers:.0%}")


if __name__ == "__main__":
    main()
