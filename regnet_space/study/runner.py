"""``study run``: N local worker processes on one study, and a progress bar fed from the storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tqdm import tqdm

from .results import model_rows, status_summary
from .session import StudySession, study_dir

STORAGE_ENV = "REGNET_SPACE_STORAGE"  # how a URL reaches the workers without showing up in `ps`


def threads_per_worker(workers: int) -> int:
    """Split the cores evenly: oversubscribed threads slow every worker down."""
    return max(1, (os.cpu_count() or 1) // workers)


def run_local(session: StudySession, *, workers: int, directory: str | None, storage_url: str | None,
              device: str = "cpu", progress: bool = True, poll: float = 1.0, threads: int | None = None) -> int:
    """Start ``workers`` worker processes (``threads`` torch threads each, default the cores split evenly),
    show progress until they finish, and report what is missing."""
    spec = session.spec
    logs = study_dir(spec, directory) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if storage_url:
        env[STORAGE_ENV] = storage_url
    command = [sys.executable, "-m", "regnet_space.cli", "study", "worker", spec.path,
               "--threads", str(threads or threads_per_worker(workers)), "--device", device]
    if directory:
        command += ["--dir", directory]
    processes = []
    for i in range(workers):
        log = open(logs / f"worker-{i}.log", "w")
        processes.append((subprocess.Popen(command + ["--name", f"{os.uname().nodename}:local-{i}"], env=env,
                                           stdout=log, stderr=subprocess.STDOUT), log))
    start = status_summary(session)["complete"]
    bar = tqdm(total=spec.total, initial=start, unit="model", desc=spec.name, disable=not progress,
               dynamic_ncols=True, file=sys.stderr)
    try:
        while any(p.poll() is None for p, _ in processes):
            _update(bar, session)
            time.sleep(poll)
    except KeyboardInterrupt:
        for p, _ in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in processes:
            p.wait()
        bar.close()
        summary = status_summary(session)
        print(f"interrupted: {summary['complete']}/{spec.total} models complete; running models were marked "
              f"interrupted. Run the same command again to train only what is missing.", file=sys.stderr)
        return 130
    finally:
        for _, log in processes:
            log.close()
    _update(bar, session)
    bar.close()
    for i, (p, _) in enumerate(processes):
        if p.returncode not in (0, None):
            tail = (logs / f"worker-{i}.log").read_text().strip().splitlines()[-5:]
            print(f"worker {i} exited with code {p.returncode}; last lines of {logs / f'worker-{i}.log'}:",
                  *("  " + line for line in tail), sep="\n", file=sys.stderr)
    summary = status_summary(session)
    missing = spec.total - summary["complete"]
    if missing:
        print(f"{missing} of {spec.total} models are not complete (see `regnet-space study status`); "
              f"run the same command again to train them.", file=sys.stderr)
        return 1
    return 0


def _update(bar: tqdm, session: StudySession) -> None:
    summary = status_summary(session, model_rows(session))
    bar.n = summary["complete"]
    best = {label: s["best_val_error"] for label, s in summary["spaces"].items() if s["best_val_error"] is not None}
    bar.set_postfix_str(" ".join(f"{label} best {err:.2f}%" for label, err in best.items()), refresh=False)
    bar.refresh()
