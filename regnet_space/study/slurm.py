"""``study run --launcher slurm``: the study's workers as one SLURM job array, submitted with plain ``sbatch``.

Why ``sbatch`` and not submitit (which pycls uses): each array task runs a command that already exists
(``regnet-space study worker``), so there is no Python callable to pickle and no result to fetch, which is what
submitit is for. Its preemption handling catches the warning signal and requeues a *checkpointable callable*
while ignoring SIGTERM, but our workers' SIGTERM handler is what marks the running model interrupted so another
worker retrains it. And submitit learns job states from ``sacct``, which needs SLURM's accounting database;
many clusters, and the one-node test cluster, have none. Here ``squeue`` says what is alive and the study's
storage says what is done.

Time limits and preemption: the batch script asks SLURM for ``USR1`` ``requeue_before`` seconds before the time
limit (``--signal=B:USR1@S``); it then stops the worker with SIGTERM (the model is marked interrupted and goes
back to the queue) and requeues its own array task, at most ``max_requeues`` times. A cluster that preempts
with ``PreemptMode=REQUEUE`` requeues the task itself, after the same SIGTERM. A task cancelled with ``scancel``
is not requeued; the other tasks retrain its model.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..errors import StopSignal, UserError, raise_stop_signal
from ..userfiles import write_output
from .launcher import SlurmSettings
from .session import StudySession, study_dir
from .storage import retry

SLURM_DIR = "slurm"  # under the study folder: batch scripts, logs/, jobs.jsonl
JOBS_FILE = "jobs.jsonl"  # one line per submitted array: what `study status` asks squeue about
# File systems every node of a cluster can see the same file on (mount types in /proc/mounts).
SHARED_FILE_SYSTEMS = frozenset({"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb3", "smbfs", "ceph",
                                 "fuse.ceph", "glusterfs", "fuse.glusterfs", "panfs", "wekafs", "fuse.sshfs",
                                 "fuse.juicefs", "virtiofs", "9p"})
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CANCEL_WAIT = 180.0  # seconds the runner waits, after scancel, for the tasks to mark their models interrupted


def _slurm_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name} not found: --launcher slurm needs the SLURM client commands (run it on the "
                        f"cluster's login node)")
    return path


def _slurm(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([_slurm_tool(command[0]), *command[1:]], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise UserError(f"{' '.join(command[:2])} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def file_system_type(path: Path, mounts: str | None = None) -> str:
    """The mount type (/proc/mounts) of the file system ``path`` lives on: the longest mount point above it."""
    path = path.resolve()
    text = Path("/proc/mounts").read_text() if mounts is None else mounts
    best, kind = -1, "unknown"
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (path == Path(point) or Path(point) in path.parents) and len(point) > best:
            best, kind = len(point), parts[2]
    return kind


def check_journal_reachable(folder: Path, nodes: list[str], *, host: str | None = None,
                            mounts: str | None = None) -> None:
    """A journal file is shared by workers only if they all see it: fine when every node SLURM may use is this
    host, or when the study folder is on a shared file system; anything else is refused, naming the fix."""
    host = host or socket.gethostname().split(".")[0]
    if nodes and all(node.split(".")[0] == host for node in nodes):
        return
    folder.mkdir(parents=True, exist_ok=True)
    kind = file_system_type(folder, mounts)
    if kind not in SHARED_FILE_SYSTEMS:
        listed = ", ".join(nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
        raise UserError(f"the study journal {folder} is on a local file system ({kind}) but SLURM may run workers "
                        f"on other hosts ({listed}); give --storage postgresql+psycopg://... (see the README, \"On a "
                        f"SLURM cluster\") or a --dir on a shared file system (nfs, lustre, gpfs, beegfs, ...)")


def partition_nodes(partition: str | None) -> list[str]:
    """The nodes a job submitted to ``partition`` (None: the default one) may land on."""
    command = ["sinfo", "-h", "-N", "-o", "%N %P"]
    lines = [line.split() for line in _slurm(*command).stdout.splitlines() if line.strip()]
    if partition:
        return sorted({node for node, part in lines if part.rstrip("*") == partition})
    defaults = [node for node, part in lines if part.endswith("*")]
    return sorted(set(defaults or [node for node, _ in lines]))


def batch_script(session: StudySession, settings: SlurmSettings, *, workers: int, folder: Path, device: str,
                 storage_given: bool) -> str:
    """The job array's batch script: one ``study worker`` per task, stopped and requeued near the time limit."""
    spec = session.spec
    logs = folder.resolve() / SLURM_DIR / "logs"
    worker = [sys.executable, "-m", "regnet_space.cli", "study", "worker", str(Path(spec.path).resolve()),
              "--dir", str(folder.resolve()), "--threads", str(settings.cpus_per_worker), "--device", device]
    options = [f"--job-name=regnet-space:{spec.name}", f"--array=0-{workers - 1}", f"--output={logs}/%A_%a.log",
               "--open-mode=append", "--requeue", f"--signal=B:USR1@{settings.requeue_before}",
               *settings.sbatch_options()]
    lines = ["#!/bin/bash",
             f"# Written by regnet-space for study {spec.name}: one `study worker` per array task.",
             *(f"#SBATCH {shlex.quote(option)}" for option in options),
             "task=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}",
             "run=${SLURM_RESTART_COUNT:-0}",
             'echo "$(date -u +%FT%TZ) task $task run $run on $(hostname) CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}"',
             # The storage URL reaches the worker through the environment sbatch exported, never a command line.
             *([] if storage_given else ["unset REGNET_SPACE_STORAGE"]),
             f'{shlex.join(worker)} --name "$(hostname -s):slurm-$task.$run" &',
             "worker=$!",
             "reason=",
             # USR1: the time limit is near (--signal); TERM: scancel, preemption, the limit itself. The worker
             # marks its running model interrupted on SIGTERM, which is what both must do first.
             "trap 'reason=requeue; kill -TERM $worker 2>/dev/null' USR1",
             "trap 'reason=stop; kill -TERM $worker 2>/dev/null' TERM INT HUP",
             'while kill -0 "$worker" 2>/dev/null; do wait "$worker"; done',
             'wait "$worker"; code=$?',
             'if [ "$reason" = requeue ] && [ "$code" != 0 ]; then',
             f'  if [ "$run" -lt {settings.max_requeues} ]; then',
             '    echo "$(date -u +%FT%TZ) task $task: time limit near; worker stopped, requeueing the task"',
             '    scontrol requeue "$task" && exit 0',
             "  else",
             f'    echo "$(date -u +%FT%TZ) task $task: requeued {settings.max_requeues} times already; not again"',
             "  fi",
             "fi",
             'exit "$code"']
    return "\n".join(lines) + "\n"


def submit(session: StudySession, settings: SlurmSettings, *, workers: int, directory: str | None,
           storage_url: str | None, device: str = "cpu") -> str:
    """Submit the study's workers as one job array; returns its job id. Refuses a journal that some worker
    could not see."""
    folder = study_dir(session.spec, directory)
    url = storage_url or session.spec.storage
    if not url:
        check_journal_reachable(folder, partition_nodes(settings.partition))
    if settings.gpus_per_worker and device == "cpu":
        device = "cuda"
    slurm = folder / SLURM_DIR
    (slurm / "logs").mkdir(parents=True, exist_ok=True)
    script = batch_script(session, settings, workers=workers, folder=folder, device=device,
                          storage_given=bool(storage_url))
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = write_output(slurm / f"workers-{stamp}.sbatch", script, "batch script")
    env = dict(os.environ)
    if storage_url:
        from .runner import STORAGE_ENV

        env[STORAGE_ENV] = storage_url
    result = subprocess.run([_slurm_tool("sbatch"), "--parsable", str(path)], capture_output=True, text=True,
                            timeout=120, env=env)
    if result.returncode != 0:
        raise UserError(f"sbatch refused the job: {result.stderr.strip() or result.stdout.strip()} (script {path})")
    job = result.stdout.strip().split(";")[0]
    record = {"job": job, "workers": workers, "script": str(path), "submitted": time.time()}
    write_output(slurm / JOBS_FILE, "".join(json.dumps(j) + "\n" for j in [*submitted_jobs(folder), record]),
                 "list of submitted jobs")  # rewritten whole through the one writer: a few lines per study
    return job


def task_states(job: str) -> dict[str, str] | None:
    """Array task -> state for the job's tasks squeue still lists (pending, running, completing); None when
    squeue cannot answer now (slurmctld busy or restarting: the caller asks again later)."""
    result = _slurm("squeue", "-h", "-r", "-j", job, "-o", "%i %T", check=False)
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return {}  # purged from slurmctld's memory: long over
        return None
    return dict(line.split(None, 1) for line in result.stdout.splitlines() if line.strip())


def submitted_jobs(folder: Path) -> list[dict[str, Any]]:
    path = folder / SLURM_DIR / JOBS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def jobs_status(folder: Path) -> list[dict[str, Any]]:
    """For ``study status``: each job array submitted for the study, and how many of its tasks are in each
    state now (tasks squeue no longer lists have ended)."""
    jobs = submitted_jobs(folder)
    if not jobs or shutil.which("squeue") is None:
        return [{**job, "states": None} for job in jobs]
    rows = []
    for job in jobs:
        states = task_states(job["job"])
        counts = None
        if states is not None:
            counts = _count(states)
            counts["ended"] = max(0, job["workers"] - sum(counts.values()))
        rows.append({**job, "states": counts})
    return rows


def run_slurm(session: StudySession, settings: SlurmSettings, *, workers: int, directory: str | None,
              storage_url: str | None, device: str = "cpu", detach: bool = False, progress: bool = True,
              poll: float = 2.0, print_job: bool = True) -> int:
    """Submit the workers; unless ``detach``, show progress until every task has ended, and report what is
    missing as the local runner does. Ctrl-C (or SIGTERM) cancels the array and waits for its tasks to mark
    their models interrupted, so nothing is left running. ``print_job``: the job id alone on stdout, for
    scripts (`design` submits one array per population and keeps stdout for its results)."""
    from .results import status_summary
    from .runner import outcome, update_progress

    job = submit(session, settings, workers=workers, directory=directory, storage_url=storage_url, device=device)
    logs = study_dir(session.spec, directory) / SLURM_DIR / "logs"
    print(f"submitted SLURM job array {job} ({workers} task(s)); logs in {logs}/{job}_<task>.log", file=sys.stderr)
    if print_job:
        print(job, flush=True)
    if detach:
        print(f"follow it with `regnet-space study status {session.spec.path}`; `scancel {job}` stops it",
              file=sys.stderr)
        return 0
    spec = session.spec
    previous = {sig: signal.signal(sig, raise_stop_signal) for sig in STOP_SIGNALS}
    bar = tqdm(total=spec.total, unit="model", desc=spec.name, disable=not progress, dynamic_ncols=True,
               file=sys.stderr)
    try:
        while True:
            states = task_states(job)
            if states == {}:
                break
            retry(lambda: update_progress(bar, session, _describe(states)), what="reading progress",
                  timeout=spec.outage_timeout)
            time.sleep(poll)
    except (StopSignal, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, StopSignal) else signal.SIGINT
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not leave the array running
        left = cancel(job)
        if not left:
            retry(lambda: release_job_trials(session, job), what="marking the cancelled tasks' models interrupted",
                  attempts=4)
        bar.close()
        complete = status_summary(session)["complete"]
        print(f"\nstopped by {signal.Signals(signum).name}: job array {job} cancelled"
              + (f" ({left} task(s) still ending after {CANCEL_WAIT:.0f} s)" if left else "")
              + f"; {complete}/{spec.total} models complete; running models were marked interrupted. Run the same "
              f"command again to train only what is missing.", file=sys.stderr)
        return 128 + int(signum)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    update_progress(bar, session, "all tasks ended")
    bar.close()
    return outcome(session)


def cancel(job: str) -> int:
    """``scancel`` the array, then wait until squeue lists none of its tasks (each marks its model interrupted
    on SIGTERM); returns how many were still listed when the wait ran out."""
    _slurm("scancel", job, check=False)
    deadline = time.monotonic() + CANCEL_WAIT
    states = task_states(job)
    while states != {} and time.monotonic() < deadline:
        time.sleep(1.0)
        states = task_states(job)
    return len(states or {})


def release_job_trials(session: StudySession, job: str) -> int:
    """Once every task of ``job`` has ended: mark interrupted any model a task of it still holds RUNNING (its
    worker was killed before it could, e.g. after SLURM's KillWait), so a cancelled array leaves no model
    running; returns how many. Each worker's name holds its task (``host:slurm-JOB_TASK.RUN``)."""
    from optuna.trial import TrialState

    from .trials import INTERRUPTED, WORKER, fail

    marker, released = f":slurm-{job}_", 0
    for trial in session.storage.get_all_trials(session.study._study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        if marker in str(trial.user_attrs.get(WORKER, "")):
            released += fail(session.storage, trial._trial_id, reason="interrupted (its SLURM job array was cancelled); "
                             "a rerun trains it again", **{INTERRUPTED: True})
    return released


def _describe(states: dict[str, str] | None) -> str:
    if states is None:
        return "tasks: squeue not answering"
    return "tasks " + " ".join(f"{n} {state}" for state, n in sorted(_count(states).items()))


def _count(states: dict[str, str]) -> dict[str, int]:
    """How many tasks are in each state (lower case, as `study status` prints them)."""
    return dict(collections.Counter(state.lower() for state in states.values()))

