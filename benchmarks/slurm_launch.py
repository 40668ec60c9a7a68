"""`study run --launcher slurm` beside `study run` on one machine: the same 200-tiny-model study (synthetic 8 px
data, scale_study's population) trained by 2 local worker processes and by a 2-task SLURM job array on the
one-node cluster the tests use (tests/slurm_cluster.py), both on the embedded journal.

    PYTHONPATH=. .venv/bin/python benchmarks/slurm_launch.py [--models 200] [--workers 2] [--repeats 2]

First the scheduler's own share: 5 times, a 2-task array of `date` submitted, and from before `sbatch` to each
task's start (the cluster schedules every second, SchedulerParameters=sched_interval=1). Then, for each launcher:
- wall s and models/s: from starting `study run` until it exits (SLURM: submission, scheduling, the workers, the
  runner noticing the array ended);
- train s/model: the mean of the models' own training seconds (what the workers spend training, not
  coordinating);
- start-up s per worker: from starting `study run` until that worker began its first model (local: process
  start-up, imports, data, population; SLURM adds sbatch, scheduling and the batch script);
and the SLURM/local ratios. The cluster has CPUs=$(nproc), each task asks for 1 CPU. Each `study run` starts in
a session of its own, as slurmd's tasks do (see run()). The two launchers take
turns (local, slurm, local, ...) so a change in the machine's other load falls on both.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from slurm_cluster import ThrowawaySlurm  # noqa: E402  (the cluster the tests use)
from study_helpers import load, scale_study  # noqa: E402


def run(work: Path, launcher: str, models: int, workers: int, env: dict) -> dict:
    name = f"launch-{launcher}"
    work.mkdir(parents=True, exist_ok=True)
    spec = work / f"{name}.toml"
    spec.write_text(scale_study(name, models=models, heartbeat=2, stale_after=60))
    directory = work / name
    command = [sys.executable, "-m", "regnet_space.cli", "study", "run", str(spec), "--dir", str(directory),
               "--workers", str(workers), "--quiet", "--launcher", launcher]
    if launcher == "slurm":
        command += ["--cpus-per-worker", "1"]  # 1 torch thread, as local workers get with 2 workers on 2 cores
    start = time.time()
    # A session of its own: with the kernel's autogroup scheduling (on here) CPU is shared between sessions, and
    # slurmd runs its tasks in its own; a runner left in a busy session would measure that, not the launchers.
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600, start_new_session=True)
    wall = time.time() - start
    if result.returncode != 0:
        raise SystemExit(f"{launcher}: exit {result.returncode}: {result.stderr[-2000:]}")
    trials = [t for t in load(name, directory).trials if t.datetime_start is not None]
    complete = sum(t.state.name == "COMPLETE" for t in trials)
    first: dict[str, float] = {}
    for t in trials:
        worker = t.user_attrs.get("worker")
        first[worker] = min(first.get(worker, float("inf")), t.datetime_start.timestamp() - start)
    seconds = [t.user_attrs["seconds"] for t in trials if t.state.name == "COMPLETE"]
    return {"launcher": launcher, "wall": wall, "complete": complete, "models_s": complete / wall,
            "train_s": sum(seconds) / len(seconds), "startup": sorted(first.values())}


def scheduling_latency(cluster: ThrowawaySlurm, work: Path, repeats: int = 5) -> list[tuple[float, float]]:
    """(sbatch's own seconds, seconds from before sbatch to a task's first line) for each task of ``repeats``
    2-task arrays that print the time and exit."""
    work.mkdir(parents=True, exist_ok=True)
    out = []
    for _ in range(repeats):
        before = time.time()
        job = cluster.run("sbatch", "--parsable", "--array=0-1", f"--output={work}/%A_%a.out", "--wrap",
                          "date +%s.%N", check=True).stdout.strip()
        submitted = time.time() - before
        while cluster.tasks(job):
            time.sleep(0.2)
        out += [(submitted, float((work / f"{job}_{task}.out").read_text().split()[0]) - before) for task in (0, 1)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="regnet-space-slurm-bench-"))
    cluster = ThrowawaySlurm()
    latency = scheduling_latency(cluster, work / "latency")
    print(f"sbatch: {min(a for a, _ in latency):.3f}-{max(a for a, _ in latency):.3f} s; submission to task start: "
          f"{min(b for _, b in latency):.2f}-{max(b for _, b in latency):.2f} s ({len(latency)} tasks)")
    print(f"{'launcher':>8} {'models':>6} {'wall s':>7} {'models/s':>8} {'train s/model':>13}  start-up s per worker",
          flush=True)
    try:
        for repeat in range(args.repeats):
            local, slurm = (run(work / f"{repeat}", launcher, args.models, args.workers, cluster.env)
                            for launcher in ("local", "slurm"))
            for row in (local, slurm):
                print(f"{row['launcher']:>8} {row['complete']:>6} {row['wall']:>7.1f} {row['models_s']:>8.2f} "
                      f"{row['train_s']:>13.3f}  "
                      + " ".join(f"{s:.1f}" for s in row["startup"]))
            overhead = [s - l for s, l in zip(slurm["startup"], local["startup"])]
            print(f"  SLURM / local models/s: {slurm['models_s'] / local['models_s']:.2f}; SLURM start-up minus "
                  f"local, per worker: " + " ".join(f"{o:.1f} s" for o in overhead), flush=True)
    finally:
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
