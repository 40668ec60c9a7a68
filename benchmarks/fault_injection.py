"""Fault injection: a 60-model study on a throwaway PostgreSQL, 2 workers, 10 SIGKILLs, one PostgreSQL
restart, one 60 s outage, then SIGTERM to `study run` and a rerun. Checks exactly 60 complete models, none
duplicated, no orphan processes; reports the time from each kill to the retraining of the killed model.

    PYTHONPATH=. .venv/bin/python benchmarks/fault_injection.py [--outage 60] [--kills 10] [--n 30]

A killed worker's model is re-enqueued at the front of the queue by whichever live worker sees its stale
heartbeat first (each claim and each heartbeat looks), so it restarts within stale_after + heartbeat_interval
of the kill once a worker is free; the report prints that bound next to the measured times.

Workers are `study worker` processes that this script restarts when it kills one (as a cluster scheduler
would); the last phase uses `study run --workers 2`, stopped by SIGTERM and run again.

Two more scenarios, each on its own (`--scenario`; `all` runs the three in turn):
- `disk-full`: a journal study on a small tmpfs that fills up mid-run (skipped, with the reason, where mounts are
  not allowed): `study run` must end with exit 2 and one line naming the folder and the free space, the journal
  must still open, and once space is freed the same command must finish every model exactly once.
- `design`: `regnet-space design` SIGKILLed (with its workers) while a population trains, then run again: every
  population exactly n complete models, none duplicated, no orphan processes, the report written.

    PYTHONPATH=. .venv/bin/python benchmarks/fault_injection.py --scenario disk-full
"""

from __future__ import annotations

import argparse
import collections
import json
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
from study_helpers import DESIGN_SPEC, synthetic_study  # noqa: E402  (the specs the tests use)


def study_pids(spec: Path) -> list[int]:
    """The regnet-space processes with an argument naming ``spec`` (or a path under it, when it is a folder)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if any(str(spec).encode() in arg for arg in cmdline) and b"regnet_space.cli" in cmdline:
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("postgres", "disk-full", "design", "all"), default="postgres")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--n", type=int, default=30, help="models per space (2 spaces)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenarios = {"postgres": postgres_faults, "disk-full": disk_full, "design": design_killed}
    chosen = list(scenarios) if args.scenario == "all" else [args.scenario]
    results = [scenarios[name](args) for name in chosen]
    return 0 if all(results) else 1


def postgres_faults(args: argparse.Namespace) -> bool:
    """The PostgreSQL scenario of the module docstring; True when it passes."""
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
        return ok
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
        server.close()
        shutil.rmtree(work, ignore_errors=True)


def _cli(*argv: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "regnet_space.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _complete_once(journal_dir: Path, name: str, n: int) -> tuple[int, int]:
    """(complete models, models complete more than once) of study ``name`` in a journal folder."""
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal_dir / "study.journal")))
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    counts = collections.Counter((t.user_attrs["space"], t.user_attrs["model_index"]) for t in trials
                                 if t.state.name == "COMPLETE")
    return len(counts), sum(c > 1 for c in counts.values())


def disk_full(args: argparse.Namespace) -> bool:
    """A study whose journal's disk fills up mid-run; True when it passes (or is skipped)."""
    work = Path(tempfile.mkdtemp(prefix="regnet-full-"))
    disk = work / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        print(f"disk-full: skipped: cannot mount a tmpfs here ({mounted.stderr.strip() or 'not allowed'})")
        shutil.rmtree(work, ignore_errors=True)
        return True
    try:
        spec = work / "full.toml"
        spec.write_text(synthetic_study("full", n=args.n, train=256, epochs=1, input_form=None))
        directory = disk / "study"
        run = ["study", "run", str(spec), "--dir", str(directory), "--workers", "2", "--quiet"]
        runner = subprocess.Popen([sys.executable, "-m", "regnet_space.cli", *run], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        while not (directory / "study.journal").exists() or (directory / "study.journal").stat().st_size < 20_000:
            time.sleep(0.2)
        with open(disk / "filler", "wb") as filler:  # fill the disk to the last byte
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        _, err = runner.communicate(timeout=600)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        one_line = (runner.returncode == 2 and "Traceback" not in err and lines
                    and str(directory) in lines[-1] and "free" in lines[-1])
        print(f"disk-full: study run exit {runner.returncode}; last line: {lines[-1] if lines else ''}")
        status = _cli("study", "status", str(spec), "--dir", str(directory))
        print(f"disk-full: study status on the full disk: exit {status.returncode}")
        (disk / "filler").unlink()
        rerun = _cli(*run)
        complete, duplicated = _complete_once(directory, "full", 2 * args.n)
        print(f"disk-full: rerun after freeing space: exit {rerun.returncode}; {complete} of {2 * args.n} complete, "
              f"{duplicated} duplicated")
        ok = bool(one_line) and status.returncode == 0 and rerun.returncode == 0 and complete == 2 * args.n \
            and duplicated == 0
        print("disk-full RESULT:", "PASS" if ok else "FAIL")
        return ok
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def design_killed(args: argparse.Namespace) -> bool:
    """`design` SIGKILLed with its workers mid-population and run again; True when it passes."""
    work = Path(tempfile.mkdtemp(prefix="regnet-design-"))
    try:
        spec = work / "faultdesign.toml"
        spec.write_text(DESIGN_SPEC.format(name="faultdesign"))
        directory = work / "run"
        command = ["design", str(spec), "--dir", str(directory), "--threads", "1", "--quiet"]
        process = subprocess.Popen([sys.executable, "-m", "regnet_space.cli", *command], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        started = time.time()
        while time.time() - started < 900:
            try:
                if _complete_once(directory, "faultdesign-start", 20)[0] >= 3:
                    break
            except (KeyError, FileNotFoundError, ValueError):
                pass
            time.sleep(0.5)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        print(f"design: SIGKILLed the design and its workers after {time.time() - started:.0f} s")
        rerun = _cli(*command, timeout=3600)
        time.sleep(1)
        orphans = study_pids(work)
        lineage = json.loads((directory / "lineage.json").read_text()) if rerun.returncode == 0 else {"lineage": []}
        counts = [(row["label"], *_complete_once(directory, f"faultdesign-{row['label']}", row["n"]), row["n"])
                  for row in lineage["lineage"]]
        for label, complete, duplicated, n in counts:
            print(f"design: population {label}: {complete} of {n} complete, {duplicated} duplicated")
        ok = (rerun.returncode == 0 and bool(counts) and all(c == n and d == 0 for _, c, d, n in counts)
              and not orphans and (directory / "design_report.html").stat().st_size > 0)
        print(f"design: rerun exit {rerun.returncode}; orphan processes {len(orphans)}")
        print("design RESULT:", "PASS" if ok else "FAIL")
        return ok
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
