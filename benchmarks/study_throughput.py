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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
ORIGINAL_ENV = dict(os.environ)  # before this package sets its thread variables (threads.py): --before gets these


def run_once(tree: Path, spec: str, args: list[str], limit: float | None) -> tuple[float | None, float]:
    """Wall and CPU seconds of one `study run` of ``spec`` with the code in ``tree``; the wall time is None if it
    ran past ``limit`` seconds (it is then stopped as Ctrl-C would, its workers included, and the CPU it had
    used by then is a lower bound)."""
    env = {**ORIGINAL_ENV, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as directory:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "regnet_space.cli", "study", "run", spec, "--dir",
                                    directory, "--quiet", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True, env=env, cwd=tree)
        try:
            _, errors = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # the runner stops its workers and waits for them
            process.communicate()
            errors = None
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if errors is not None and process.returncode != 0:
            sys.exit(f"study run ({tree}, {args}) failed:\n{errors}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (wall, cpu) if errors is not None else (None, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="benchmarks/study_bench.toml")
    parser.add_argument("--run", action="append", help="study run arguments for this tree (repeatable; default: "
                        "--workers 1, and --workers N for N CPUs)")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare against")
    parser.add_argument("--before-run", action="append", help="study run arguments for --before (default: none)")
    parser.add_argument("--hogs", type=int, default=0, help="busy-loop processes to run beside (default 0)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=float, help="seconds after which a run is stopped and counted as "
                        "'over the limit' (a lower bound on its time)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a `timeout` still stops the hogs below
    sys.path.insert(0, str(HERE))
    from regnet_space.study.spec import load_study_spec
    from regnet_space.threads import available_cpus

    spec = str(Path(args.spec).resolve())
    total = load_study_spec(spec).total
    cpus = available_cpus()
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    runs = [("before " + (a or "(defaults)"), args.before.resolve(), shlex.split(a))
            for a in (args.before_run or [""])] if args.before else []
    runs += [("now " + a, HERE, shlex.split(a)) for a in (args.run or ["--workers 1", f"--workers {cpus}"])]
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    times: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in runs}
    try:
        for repeat in range(args.repeats):
            for label, tree, run_args in runs:
                measured = run_once(tree, spec, run_args, args.limit)
                if measured[0] is None:
                    print(f"  round {repeat + 1} {label:<36} over the {args.limit:.0f} s limit, after {measured[1]:.1f} "
                          f"s of CPU: under {total / measured[1] * 3600:.0f} models/CPU-h", flush=True)
                    continue
                times[label].append(measured)
                print(f"  round {repeat + 1} {label:<36} wall {measured[0]:7.1f} s  cpu {measured[1]:7.1f} s",
                      flush=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    print(f"{total} models per run, {cpus} CPUs, {args.hogs} hog(s), {args.repeats} rounds, medians "
          f"(process start-up included); load average {os.getloadavg()[0]:.1f} at the end")
    first = None
    for label, values in times.items():
        if not values:
            print(f"{label:<36} every run over the {args.limit:.0f} s limit: under {total / args.limit * 3600:.0f} "
                  f"models/wall-h")
            continue
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        rates = (total / wall * 3600, total / cpu * 3600)
        first = first or rates
        print(f"{label:<36} wall {wall:7.1f} s  cpu {cpu:7.1f} s  {rates[0]:7.0f} models/wall-h "
              f"({rates[0] / first[0]:.2f}x)  {rates[1]:7.0f} models/CPU-h ({rates[1] / first[1]:.2f}x)")


if __name__ == "__main__":
    main()
