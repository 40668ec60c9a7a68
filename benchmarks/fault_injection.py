"""Fault injection: a 60-model study on a throwaway PostgreSQL, 2 workers, 10 SIGKILLs, one PostgreSQL
restart, one 60 s outage, then SIGTERM to `study run` and a rerun. Checks exactly 60 complete models, none
duplicated, no orphan processes; reports the time from each kill to the retraining of the killed model.

    PYTHONPATH=. .venv/bin/python benchmarks/fault_injection.py [--outage 60] [--kills 10] [--n 30]

A killed worker's model is re-enqueued at the front of the queue by whichever live worker sees its stale
heartbeat first (each claim and each heartbeat looks), so it restarts within stale_after + heartbeat_interval
of the kill once a worker is free; the report prints that bound next to the measured times.

Workers are `study worker` processes that this script restarts when it kills one (as a cluster scheduler
would); the last phase uses `study run --workers 2`, stopped by SIGTERM and run again.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from postgres_server import ThrowawayPostgres  # noqa: E402  (the server the tests use)
from study_helpers import synthetic_study  # noqa: E402  (the spec the study tests use)


def study_pids(spec: Path) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if str(spec).encode() in cmdline and b"regnet_space.cli" in cmdline:
                pids.append(int(entry))
    return pids


def load(url: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="faults", storage=optuna.storages.RDBStorage(url))


def _spread(times: list[float]) -> str:
    done = sorted(t for t in times if t == t and t != float("inf"))
    if not done:
        return "none"
    return (", ".join(f"{t:.1f}" for t in done) + f" (median {done[len(done) // 2]:.1f}, max {done[-1]:.1f}"
            + (f", {len(times) - len(done)} never" if len(done) < len(times) else "") + ")")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--n", type=int, default=30, help="models per space (2 spaces)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="regnet-faults-"))
    spec = work / "faults.toml"
    heartbeat, stale = 1, 6
    total = 2 * args.n
    spec.write_text(synthetic_study("faults", n=args.n, train=1024, epochs=args.epochs, input_form=None,
                                    heartbeat=heartbeat, stale_after=stale))
    server = ThrowawayPostgres()
    env = {**os.environ, "REGNET_SPACE_STORAGE": server.url, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "regnet_space.cli", "study", "worker", str(spec), "--threads", "1"]
    workers: dict[str, subprocess.Popen] = {}
    serial = 0

    def spawn() -> None:
        nonlocal serial
        serial += 1
        name = f"w{serial}"
        workers[name] = subprocess.Popen(command + ["--name", name], env=env, stdout=subprocess.DEVNULL,
                                         stderr=open(work / f"{name}.log", "w"))

    kills: list[tuple[float, tuple[str, int], int]] = []  # (time of the kill, the model it was training, its trial)
    outages: list[tuple[float, float]] = []  # when the database was down (restart or outage)
    started = time.time()
    log = lambda text: print(f"[{time.time() - started:6.1f} s] {text}", flush=True)  # noqa: E731
    try:
        spawn(), spawn()
        while True:  # until the workers have created the study and started training
            try:
                if any(t.state.name == "RUNNING" for t in load(server.url).get_trials(deepcopy=False)):
                    break
            except KeyError:
                pass
            time.sleep(0.5)
        log("workers are training")
        events = ["kill"] * args.kills + ["restart", "outage"]
        rng.shuffle(events)
        for event in events:
            time.sleep(rng.uniform(2, 5))
            if event == "kill":
                deadline = time.time() + 180  # a restarted worker needs a while to import torch and load data
                while True:
                    study = load(server.url)
                    running = [t for t in study.get_trials(deepcopy=False)
                               if t.state.name == "RUNNING" and workers.get(t.user_attrs.get("worker"))
                               and workers[t.user_attrs["worker"]].poll() is None]
                    if running or time.time() > deadline:
                        break
                    time.sleep(0.5)
                if not running:
                    log("no model running to kill; skipping")
                    continue
                victim = rng.choice(running)
                key = (victim.user_attrs["space"], int(victim.user_attrs["model_index"]))
                workers[victim.user_attrs["worker"]].send_signal(signal.SIGKILL)
                kills.append((time.time(), key, victim._trial_id))
                log(f"SIGKILL {victim.user_attrs['worker']} training {key}")
                spawn()
            elif event == "restart":
                down = time.time()
                server.restart()
                outages.append((down, time.time()))
                log("PostgreSQL restarted (pg_ctl restart -m fast)")
            else:
                down = time.time()
                server.stop()
                log(f"PostgreSQL stopped for {args.outage:.0f} s")
                time.sleep(args.outage)
                server.start()
                outages.append((down, time.time()))
                log("PostgreSQL started again")
        # Phase 2: the local runner, stopped by SIGTERM and run again.
        for name, process in workers.items():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers.values():
            process.wait(timeout=120)
        log("stopped the stand-alone workers (SIGTERM); starting `study run --workers 2`")
        run = [sys.executable, "-m", "regnet_space.cli", "study", "run", str(spec), "--workers", "2", "--quiet",
               "--dir", str(work / "runner")]  # its logs with the rest, not in the current directory
        runner = subprocess.Popen(run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(8)
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=180)
        log(f"SIGTERM to `study run`: exit {runner.returncode}; {err.strip().splitlines()[-1] if err.strip() else ''}")
        sigterm_exit = runner.returncode
        time.sleep(1)
        orphans_after_sigterm = study_pids(spec)
        rerun = subprocess.run(run, env=env, capture_output=True, text=True, timeout=3600)
        log(f"rerun: exit {rerun.returncode}")
        time.sleep(1)
        orphans = study_pids(spec)
        study = load(server.url)
        trials = study.get_trials(deepcopy=False)
        complete = collections.Counter((t.user_attrs["space"], t.user_attrs["model_index"]) for t in trials
                                       if t.state.name == "COMPLETE")
        by_id = {t._trial_id: t for t in trials}
        declared, retrain = [], []  # seconds from each kill, and whether a database outage overlaps them
        for killed_at, key, trial_id in kills:
            dead = by_id[trial_id].datetime_complete
            starts = [t.datetime_start.timestamp() for t in trials
                      if (t.user_attrs.get("space"), t.user_attrs.get("model_index")) == key and t.datetime_start
                      and t.datetime_start.timestamp() > killed_at]
            end = min(starts) if starts else float("inf")
            hit = any(down < end and up > killed_at for down, up in outages)
            declared.append((dead.timestamp() - killed_at if dead else float("nan"), hit))
            retrain.append((end - killed_at, hit))
        print()
        print(f"models complete: {len(complete)} of {total}; duplicated: {sum(n > 1 for n in complete.values())}; "
              f"orphan processes after SIGTERM: {len(orphans_after_sigterm)}, at the end: {len(orphans)}")
        print(f"SIGTERM exit code: {sigterm_exit}; rerun exit code: {rerun.returncode}; "
              f"trials: {len(trials)}; wall time {time.time() - started:.0f} s")
        for what, times in (("kill -> declared dead", declared), ("kill -> retrain start", retrain)):
            print(f"{what} (s): " + _spread([t for t, hit in times if not hit])
                  + f"; across a database outage: {_spread([t for t, hit in times if hit])}")
        print(f"bound: stale_after + heartbeat_interval = {stale + heartbeat} s to be declared dead; the retrain "
              f"starts when a worker is next free (a live one finishing its model, or a restarted one up)")
        ok = (len(complete) == total and all(n == 1 for n in complete.values()) and not orphans
              and not orphans_after_sigterm and sigterm_exit == 143 and rerun.returncode == 0)
        print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
        server.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
