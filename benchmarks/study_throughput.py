"""Models per CPU-hour and per wall-hour of whole `study run`s, side by side in one run, optionally against the
code of another commit and beside CPU hogs.

    PYTHONPATH=. .venv/bin/python benchmarks/study_throughput.py [--spec benchmarks/study_bench.toml]
        [--run "--workers 1" --run "--workers 2" ...] [--before DIR [--before-run "--workers 1"]]
        [--hogs N] [--repeats 2]

Every ``--run`` is `regnet-space study run SPEC --dir NEW --quiet ARGS` with this tree's code; with ``--before
DIR`` (a checkout of another commit, e.g. ``git archive COMMIT | tar -x -C DIR``) ``--before-run`` runs that
code the same way (default: its defaults). The runs alternate, ``--repeats`` rounds, so machine noise hits all
alike. CPU time is the run's whole process tree (the runner and its workers: ``RUSAGE_CHILDREN``), start-up
included. ``--hogs N`` keeps N busy-loop processes running throughout (a loaded machine; what the thread
policy is for). Printed per run: median wall and CPU seconds, models per wall-hour and per CPU-hour, and each
against the first run listed (the before run, when given).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
ORIGINAL_ENV = dict(os.environ)  # before this package sets its thread variables (threads.py): --before gets these


def run_once(tree: Path, spec: str, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `study run` of ``spec`` with the code in ``tree``."""
    env = {**ORIGINAL_ENV, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as directory:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "regnet_space.cli", "study", "run", spec, "--dir", directory,
                                 "--quiet", *args], capture_output=True, text=True, env=env, cwd=tree)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            sys.exit(f"study run ({tree}, {args}) failed:\n{result.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="benchmarks/study_bench.toml")
    parser.add_argument("--run", action="append", help="study run arguments for this tree (repeatable; default: "
                        "--workers 1, and --workers N for N CPUs)")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare against")
    parser.add_argument("--before-run", action="append", help="study run arguments for --before (default: none)")
    parser.add_argument("--hogs", type=int, default=0, help="busy-loop processes to run beside (default 0)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from regnet_space.study.spec import load_study_spec
    from regnet_space.threads import available_cpus

    spec = str(Path(args.spec).resolve())
    total = load_study_spec(spec).total
    cpus = available_cpus()
    runs = [("before " + (a or "(defaults)"), args.before.resolve(), shlex.split(a))
            for a in (args.before_run or [""])] if args.before else []
    runs += [("now " + a, HERE, shlex.split(a)) for a in (args.run or ["--workers 1", f"--workers {cpus}"])]
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    times: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in runs}
    try:
        for repeat in range(args.repeats):
            for label, tree, run_args in runs:
                wall, cpu = run_once(tree, spec, run_args)
                times[label].append((wall, cpu))
                print(f"  round {repeat + 1} {label:<36} wall {wall:7.1f} s  cpu {cpu:7.1f} s", flush=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    print(f"{total} models per run, {cpus} CPUs, {args.hogs} hog(s), {args.repeats} rounds, medians "
          f"(process start-up included)")
    first = None
    for label, values in times.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        rates = (total / wall * 3600, total / cpu * 3600)
        first = first or rates
        print(f"{label:<36} wall {wall:7.1f} s  cpu {cpu:7.1f} s  {rates[0]:7.0f} models/wall-h "
              f"({rates[0] / first[0]:.2f}x)  {rates[1]:7.0f} models/CPU-h ({rates[1] / first[1]:.2f}x)")


if __name__ == "__main__":
    main()
