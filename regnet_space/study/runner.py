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
from ..threads import DEFAULT_THREADS, available_cpus, oversubscription
from ..userfiles import open_log
from .results import status_summary
from .session import StudySession, study_dir
from .snapshot import best_by_space, state_counts
from .storage import retry
from .trials import SPACE

STORAGE_ENV = "REGNET_SPACE_STORAGE"  # how a URL reaches the workers without showing up in `ps`


def run_local(session: StudySession, *, workers: int, directory: str | None, storage_url: str | None,
              device: str = "cpu", progress: bool = True, poll: float = 1.0, threads: int | None = None,
              worker_env: list[dict[str, str]] | None = None) -> int:
    """Start ``workers`` worker processes (``threads`` torch threads each, default 1: see threads.py), show
    progress until they finish, and report what is missing. ``worker_env``: each worker's additions to the
    environment (its GPU, see devices.plan_devices).

    ``workers`` is taken as asked, also 1 on a machine of N cores: the worker count is how much of the machine
    the run may take (on a shared machine, the rest is other people's), and a worker with N threads costs more
    CPU per model than N workers of one (benchmarks/README.md). The caller says when CPUs would stay idle
    (``idle_cpus_note``)."""
    spec = session.spec
    threads = threads or DEFAULT_THREADS
    warning = oversubscription(threads, workers) if device == "cpu" else None
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    logs = study_dir(spec, directory) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if storage_url:
        env[STORAGE_ENV] = storage_url
    command = [sys.executable, "-m", "regnet_space.cli", "study", "worker", spec.path,
               "--threads", str(threads), "--device", device]
    if directory:
        command += ["--dir", directory]
    processes: list = []
    bar = None
    previous = {sig: signal.signal(sig, raise_stop_signal) for sig in STOP_SIGNALS}
    try:
        for i in range(workers):
            log = open_log(logs / f"worker-{i}.log")
            processes.append((subprocess.Popen(command + ["--name", f"{os.uname().nodename}:local-{i}"],
                                               env={**env, **(worker_env[i] if worker_env else {})},
                                               stdout=log, stderr=subprocess.STDOUT,
                                               preexec_fn=_die_with_parent), log))
        # initial: the models a resumed run finds complete, so the rate counts only what this run trains
        done = retry(lambda: complete_count(session), what="reading progress", timeout=spec.outage_timeout)
        bar = tqdm(total=spec.total, initial=done, unit="model", desc=spec.name, disable=not progress,
                   dynamic_ncols=True, file=sys.stderr)
        while any(p.poll() is None for p, _ in processes):
            retry(lambda: update_progress(bar, session), what="reading progress", timeout=spec.outage_timeout)
            time.sleep(poll)
    except (StopSignal, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, StopSignal) else signal.SIGINT
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not orphan the workers mid-shutdown
        _stop_workers([p for p, _ in processes])
        if bar is not None:  # the bar's last count, from the same storage as the line below, so the two agree
            update_progress(bar, session)
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
    update_progress(bar, session)
    bar.close()
    for i, (p, _) in enumerate(processes):
        if p.returncode not in (0, None):
            tail = (logs / f"worker-{i}.log").read_text().strip().splitlines()[-5:]
            if p.returncode == 2 and tail and tail[-1].startswith(ERROR_PREFIX):
                raise UserError(tail[-1][len(ERROR_PREFIX):])  # the worker's one line (a full disk, a lost storage)
            print(f"worker {i} exited with code {p.returncode}; last lines of {logs / f'worker-{i}.log'}:",
                  *("  " + line for line in tail), sep="\n", file=sys.stderr)
    return outcome(session)


def outcome(session: StudySession) -> int:
    """After the workers ended (local or on SLURM): 0 if the population is complete, else 1 with what is missing
    or was given up said on stderr."""
    spec = session.spec
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


def idle_cpus_note(workers: int, threads: int | None) -> str | None:
    """A note when CPUs this process may use would stay idle (they may be other people's: it is only a note)."""
    cpus, used = available_cpus(), workers * (threads or DEFAULT_THREADS)
    if used >= cpus:
        return None
    return (f"{cpus} CPUs available and {used} used: --workers {cpus // (threads or DEFAULT_THREADS)} would "
            f"train that many models at a time")


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


def complete_count(session: StudySession) -> int:
    """The models complete, as the bar counts them (a resumed run starts its bar there)."""
    return min(session.spec.total, state_counts(session.study, session.storage).get(TrialState.COMPLETE, 0))


def update_progress(bar: tqdm, session: StudySession, note: str = "") -> None:
    """Two aggregate queries (counts by state, best per space), not a read of every trial: cheap each second.
    ``note``: what the launcher adds (SLURM's task states)."""
    bar.n = complete_count(session)
    best = best_by_space(session.study, session.storage, SPACE)
    bests = " ".join(f"{label} best {err:.2f}%" for label, err in sorted(best.items()))
    bar.set_postfix_str(f"{bests} {note}".strip(), refresh=False)
    bar.refresh()
