"""``study run``: N local worker processes on one study, and a progress bar fed from the storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tqdm import tqdm

from optuna.trial import TrialState

from ..errors import ERROR_PREFIX, StopSignal, UserError, raise_stop_signal
from ..userfiles import open_log
from .results import status_summary
from .session import StudySession, study_dir
from .snapshot import best_by_space, state_counts
from .storage import retry
from .trials import SPACE

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
    processes: list = []
    bar = None
    previous = {sig: signal.signal(sig, raise_stop_signal) for sig in STOP_SIGNALS}
    try:
        for i in range(workers):
            log = open_log(logs / f"worker-{i}.log")
            processes.append((subprocess.Popen(command + ["--name", f"{os.uname().nodename}:local-{i}"], env=env,
                                               stdout=log, stderr=subprocess.STDOUT,
                                               preexec_fn=_die_with_parent), log))
        # initial: the models a resumed run finds complete, so the rate counts only what this run trains
        done = retry(lambda: _complete(session), what="reading progress", timeout=spec.outage_timeout)
        bar = tqdm(total=spec.total, initial=done, unit="model", desc=spec.name, disable=not progress,
                   dynamic_ncols=True, file=sys.stderr)
        while any(p.poll() is None for p, _ in processes):
            retry(lambda: _update(bar, session), what="reading progress", timeout=spec.outage_timeout)
            time.sleep(poll)
    except (StopSignal, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, StopSignal) else signal.SIGINT
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not orphan the workers mid-shutdown
        _stop_workers([p for p, _ in processes])
        if bar is not None:  # the bar's last count, from the same storage as the line below, so the two agree
            _update(bar, session)
            bar.close()
        summary = status_summary(session)
        print(f"\nstopped by {signal.Signals(signum).name}: {summary['complete']}/{spec.total} models complete; "
              f"running models were marked interrupted. Run the same command again to train only what is missing.",
              file=sys.stderr)
        return 128 + int(signum)
    except BaseException:  # e.g. the storage lost for good: never leave the workers behind
        _stop_workers([p for p, _ in processes])
        raise
    finally:
        for _, log in processes:
            log.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _update(bar, session)
    bar.close()
    for i, (p, _) in enumerate(processes):
        if p.returncode not in (0, None):
            tail = (logs / f"worker-{i}.log").read_text().strip().splitlines()[-5:]
            if p.returncode == 2 and tail and tail[-1].startswith(ERROR_PREFIX):
                raise UserError(tail[-1][len(ERROR_PREFIX):])  # the worker's one line (a full disk, a lost storage)
            print(f"worker {i} exited with code {p.returncode}; last lines of {logs / f'worker-{i}.log'}:",
                  *("  " + line for line in tail), sep="\n", file=sys.stderr)
    summary = status_summary(session)
    missing = spec.total - summary["complete"]
    failed = summary["failed_models"]
    if failed:
        first = failed[0]
        print(f"{len(failed)} model(s) failed {spec.max_attempts} time(s) each and were given up ([workers] "
              f"max_attempts): " + ", ".join(f"{f['space']} #{f['model_index']}" for f in failed[:10])
              + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
              + f"; first error ({first['space']} #{first['model_index']}): {first['error']}", file=sys.stderr)
        return 1
    if missing:
        print(f"{missing} of {spec.total} models are not complete (see `regnet-space study status`); "
              f"run the same command again to train them.", file=sys.stderr)
        return 1
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WORKER_STOP_GRACE = 60.0  # seconds a worker has to mark its model interrupted before it is killed


def _die_with_parent() -> None:
    """In each worker before exec: get SIGTERM if the runner dies, even by SIGKILL, so no worker is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: SIGTERM from _stop_workers still covers signals
        pass


def _stop_workers(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every live worker (each marks its model interrupted and exits), then SIGKILL stragglers."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + WORKER_STOP_GRACE
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _complete(session: StudySession) -> int:
    return min(session.spec.total, state_counts(session.study, session.storage).get(TrialState.COMPLETE, 0))


def _update(bar: tqdm, session: StudySession) -> None:
    """Two aggregate queries (counts by state, best per space), not a read of every trial: cheap each second."""
    bar.n = _complete(session)
    best = best_by_space(session.study, session.storage, SPACE)
    bar.set_postfix_str(" ".join(f"{label} best {err:.2f}%" for label, err in sorted(best.items())), refresh=False)
    bar.refresh()
