"""Study coordination at population scale: journal file vs PostgreSQL, 1,000 and 10,000 tiny models, 2 and 4
workers. The models train in a few milliseconds (8 px synthetic images, 64 of them, one epoch), so what is
measured is the cost of coordinating them: enqueueing, claiming, heartbeats, storing results.

    PYTHONPATH=. .venv/bin/python benchmarks/study_scale.py [--sizes 1000 10000] [--workers 2 4]
        [--storages journal postgres]

For each configuration it starts that many `study worker` processes on a fresh study (PostgreSQL: a fresh
database on a throwaway server this script starts and stops, as the tests do; each worker its own --dir, as
on separate machines) and prints:

- models/s: models / wall time from starting the workers until the last one exits;
- coordination s/model: (sum over workers of their wall time - sum of the models' training seconds) / models,
  i.e. everything a worker spends not training (start-up, population sampling, enqueue, claims, stores,
  waiting at the end), per model;
- status s: one `regnet-space study status` of the finished study (process start-up and imports included);
  summary s: the same summary computed in this warm process (reading the study as the command does).

Targets (issue 11): PostgreSQL at 10,000 models >= 0.8x the journal's models/s; coordination per model at
10,000 <= 1.5x its value at 1,000 on both storages. Run it on a quiet machine: every worker is pinned to one
thread, and a busy machine measures the other load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from postgres_server import ThrowawayPostgres  # noqa: E402  (the server the tests use)
from study_helpers import scale_study  # noqa: E402  (the population the scale tests use)



def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "regnet_space.cli", *args]


def run_config(work: Path, storage: str, n: int, workers: int, server: ThrowawayPostgres | None) -> dict:
    import optuna

    name = f"scale-{storage}-{n}-{workers}"
    spec = work / f"{name}.toml"
    spec.write_text(scale_study(name, models=n, heartbeat=2, stale_after=60))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if server is not None:
        database = name.replace("-", "_")
        server.pg("createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", database)
        url = server.url.rsplit("/", 1)[0] + "/" + database
        places = [["--storage", url, "--dir", str(work / name / f"host{i}")] for i in range(workers)]
    else:
        url = None
        places = [["--dir", str(work / name)]] * workers
    started = time.perf_counter()
    processes = [subprocess.Popen(cli("study", "worker", str(spec), *place, "--name", f"w{i}", "--threads", "1"),
                                  env=env, stdout=subprocess.DEVNULL, stderr=open(work / f"{name}-w{i}.log", "w"))
                 for i, place in enumerate(places)]
    ended = []
    for process in processes:
        process.wait()
        ended.append(time.perf_counter())
    wall = max(ended) - started
    codes = [p.returncode for p in processes]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url:
        storage_object = optuna.storages.RDBStorage(url)
    else:
        from optuna.storages.journal import JournalFileBackend

        storage_object = optuna.storages.JournalStorage(JournalFileBackend(str(work / name / "study.journal")))
    trials = optuna.load_study(study_name=name, storage=storage_object).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    training = sum(float(t.user_attrs.get("seconds") or 0.0) for t in complete)
    worker_wall = sum(end - started for end in ended)
    summary_seconds = _summary_seconds(spec, url, work / name)
    status_start = time.perf_counter()
    status = subprocess.run(cli("study", "status", str(spec), *places[0]), env=env, capture_output=True)
    status_seconds = time.perf_counter() - status_start
    if url:
        storage_object.engine.dispose()
    return {"storage": storage, "models": n, "workers": workers, "complete": len(complete),
            "distinct": len({(t.user_attrs["space"], t.user_attrs["model_index"]) for t in complete}),
            "trials": len(trials), "exit": codes, "wall": wall, "models_per_s": len(complete) / wall,
            "coordination": (worker_wall - training) / max(1, len(complete)),
            "training": training / max(1, len(complete)),
            "status_s": status_seconds, "summary_s": summary_seconds, "status_exit": status.returncode}


def _summary_seconds(spec: Path, url: str | None, directory: Path) -> float:
    """Seconds to read the study and compute `study status`'s summary as the command does, in this (already
    warm) process: the storage's part of `study status`, without the interpreter's start-up and imports."""
    from regnet_space.study.results import stored_status
    from regnet_space.study.spec import load_study_spec

    start = time.perf_counter()
    stored_status(load_study_spec(spec), directory=str(directory), storage_url=url)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--storages", nargs="+", default=["journal", "postgres"], choices=["journal", "postgres"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="regnet-scale-"))
    server = ThrowawayPostgres() if "postgres" in args.storages else None
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    print(f"{'storage':>9} {'models':>7} {'workers':>7} {'complete':>8} {'trials':>7} {'wall s':>8} {'models/s':>9} "
          f"{'coord s/model':>13} {'train s/model':>13} {'status s':>8} {'summary s':>9}")
    results = []
    ok = True
    try:
        for n in args.sizes:
            for workers in args.workers:
                for storage in args.storages:
                    r = run_config(work, storage, n, workers, server if storage == "postgres" else None)
                    results.append(r)
                    good = (r["complete"] == r["distinct"] == n and r["trials"] == n and set(r["exit"]) == {0}
                            and r["status_exit"] == 0)
                    ok &= good
                    print(f"{storage:>9} {n:>7} {workers:>7} {r['complete']:>8} {r['trials']:>7} {r['wall']:>8.1f} "
                          f"{r['models_per_s']:>9.1f} {r['coordination']:>13.4f} {r['training']:>13.4f} "
                          f"{r['status_s']:>8.2f} {r['summary_s']:>9.2f}"
                          + ("" if good else f"  INCOMPLETE (exit codes {r['exit']})"),
                          flush=True)
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(work, ignore_errors=True)
    by = {(r["storage"], r["models"], r["workers"]): r for r in results}
    small, big = min(args.sizes), max(args.sizes)
    for workers in args.workers:
        if ("postgres", big, workers) in by and ("journal", big, workers) in by:
            ratio = by["postgres", big, workers]["models_per_s"] / by["journal", big, workers]["models_per_s"]
            print(f"{workers} workers, {big} models: PostgreSQL/journal models/s = {ratio:.2f} (target >= 0.8)")
        for storage in args.storages:
            if big != small and (storage, big, workers) in by and (storage, small, workers) in by:
                ratio = by[storage, big, workers]["coordination"] / by[storage, small, workers]["coordination"]
                print(f"{workers} workers, {storage}: coordination per model at {big} / at {small} = {ratio:.2f} "
                      f"(target <= 1.5)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("RESULT:", "every model complete exactly once" if ok else "INCOMPLETE runs above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
