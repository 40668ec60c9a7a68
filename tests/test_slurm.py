"""`study run --launcher slurm` on a real one-node SLURM cluster (tests/slurm_cluster.py) with the study on
PostgreSQL: a job array of `study worker`s trains each model exactly once; a cancelled task's model is retrained;
a task that reaches its time limit is requeued and finishes; Ctrl-C of the runner cancels the array and leaves no
worker and no RUNNING model. Slow (minutes on two cores): `make test-slurm` runs them, and so does .ci/run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

pytest.importorskip("psycopg", reason="the PostgreSQL driver is not installed (pip install -e '.[test]')")

from regnet_space.study.spec import load_study_spec
from study_helpers import complete_counts, load, synthetic_study

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm():
    from slurm_cluster import NoSlurm, ThrowawaySlurm

    try:
        cluster = ThrowawaySlurm()
    except NoSlurm as exc:
        pytest.skip(f"{exc}; SLURM launcher test skipped")
    try:
        yield cluster
    finally:
        cluster.close()


def slurm_spec(tmp_path: Path, name: str, *, n: int, train: int = 256, launcher: str = "") -> Path:
    """A tiny study (n models per space, two spaces) with fast heartbeats; ``launcher``: a [launcher] table."""
    text = synthetic_study(name, n=n, train=train, heartbeat=0.5, stale_after=8) + launcher
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def submit(slurm, spec: Path, url: str, *args: str, detach: bool = True) -> subprocess.Popen | str:
    """`study run --launcher slurm`; detached: the job id it printed, else the running runner."""
    command = [sys.executable, "-m", "regnet_space.cli", "study", "run", str(spec), "--dir", str(spec.parent / "run"),
               "--storage", url, "--launcher", "slurm", "--quiet", *args]
    if detach:
        result = subprocess.run(command + ["--detach"], env=slurm.env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()
    return subprocess.Popen(command, env=slurm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_end(slurm, job: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while slurm.tasks(job):
        if time.monotonic() > deadline:
            pytest.fail(f"job {job} still has tasks after {timeout:.0f} s: {slurm.tasks(job)}")
        time.sleep(1)


def running_by_task(study: optuna.Study, job: str) -> dict[str, int]:
    """Array task ("J_0") -> how many models its worker is training now."""
    out: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        task = trial.user_attrs.get("worker", "").partition(":slurm-")[2].rsplit(".", 1)[0]
        out[task] = out.get(task, 0) + 1
    return out


def worker_processes(spec: Path) -> list[int]:
    """Live `study worker` processes of this spec (array tasks run them as children of their batch script)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in cmdline and str(spec.resolve()).encode() in cmdline:
            found.append(int(entry))
    return found


def assert_exactly_once(study: optuna.Study, total: int) -> None:
    counts = complete_counts(study)
    assert len(counts) == total and set(counts.values()) == {1}, counts
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_forty_models_over_four_array_tasks_complete_once(tmp_path, slurm, postgres_url):
    spec = slurm_spec(tmp_path, "slurm40", n=20)
    runner = submit(slurm, spec, postgres_url, "--workers", "4", detach=False)
    out, err = runner.communicate(timeout=600)
    assert runner.returncode == 0, err
    job = out.splitlines()[0]
    assert f"submitted SLURM job array {job} (4 task(s))" in err
    study = load("slurm40", optuna.storages.RDBStorage(postgres_url))
    assert_exactly_once(study, 40)
    tasks = {t.user_attrs["worker"].split(":slurm-")[1] for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert tasks <= {f"{job}_{i}.0" for i in range(4)} and len(tasks) >= 2, tasks
    logs = sorted((tmp_path / "run" / "slurm" / "logs").glob(f"{job}_*.log"))
    assert len(logs) == 4
    script = next((tmp_path / "run" / "slurm").glob("*.sbatch")).read_text()
    for text in (script, err, *(log.read_text() for log in logs)):
        assert "sup3rsecret" not in text
    status = subprocess.run([sys.executable, "-m", "regnet_space.cli", "study", "status", str(spec), "--dir",
                             str(tmp_path / "run"), "--storage", postgres_url], env=slurm.env, capture_output=True,
                            text=True, timeout=120)
    assert "40/40 complete" in status.stdout and f"SLURM job {job} (4 task(s)): 4 ended" in status.stdout


def test_cancelled_tasks_and_a_task_at_its_time_limit_lose_nothing(tmp_path, slurm, postgres_url):
    """The fault run: 4 array tasks; 2 are cancelled while training and 1 reaches its time limit (SLURM's warning
    comes requeue_before = 60 s ahead, within its 30 s check): the cancelled tasks' models are retrained, the
    timed-out task is requeued and runs again, and exactly the population completes. The models train on 8,192
    images so that the population outlasts the warning (60-90 s in) on a fast idle machine: with 2,048 one idle
    run's task 3 trained 67 models and finished before SLURM warned it."""
    spec = slurm_spec(tmp_path, "slurmfault", n=60, train=8192, launcher="[launcher]\nrequeue_before = 60\n")
    job = submit(slurm, spec, postgres_url, "--workers", "4", "--time", "0:10:00")
    slurm.run("scontrol", "update", f"JobId={job}_3", "TimeLimit=0:02:00", check=True)  # this task times out
    study = load("slurmfault", optuna.storages.RDBStorage(postgres_url))
    cancelled: list[str] = []
    deadline = time.monotonic() + 240
    while len(cancelled) < 2 and time.monotonic() < deadline:
        running = running_by_task(study, job)
        for task in (f"{job}_0", f"{job}_1"):
            if task not in cancelled and running.get(task):
                slurm.run("scancel", task, check=True)  # mid-model
                cancelled.append(task)
        time.sleep(0.3)
    assert len(cancelled) == 2, "tasks 0 and 1 never trained a model"
    wait_for_end(slurm, job, timeout=900)
    assert_exactly_once(study, 120)
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    by_worker = {t.user_attrs["worker"].split(":slurm-")[1] for t in interrupted}
    assert {f"{task}.0" for task in cancelled} <= by_worker, by_worker  # cancelled mid-model, marked interrupted
    # Stopped near its limit and requeued: SLURM ran the task a second time (it may find nothing left to train).
    log = (tmp_path / "run" / "slurm" / "logs" / f"{job}_3.log").read_text()
    assert "time limit near; worker stopped, requeueing the task" in log and f"task {job}_3 run 1" in log
    assert worker_processes(spec) == []


def test_ctrl_c_of_the_runner_cancels_the_array_and_leaves_nothing_running(tmp_path, slurm, postgres_url):
    spec = slurm_spec(tmp_path, "slurmstop", n=40, train=1024)
    runner = submit(slurm, spec, postgres_url, "--workers", "2", detach=False)
    study = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            study = study or load("slurmstop", optuna.storages.RDBStorage(postgres_url))
            if len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) >= 2:
                break
        except KeyError:  # not created yet
            pass
        time.sleep(0.3)
    else:
        runner.kill()
        pytest.fail("the array's workers never started training")
    job = runner.stdout.readline().strip()
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=300)
    assert runner.returncode == 130, err
    assert f"job array {job} cancelled" in err and "Traceback" not in err
    assert slurm.tasks(job) == {}
    assert worker_processes(spec) == []
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert len(complete_counts(study)) < 80


def test_a_design_trains_each_population_as_a_job_array(tmp_path, slurm):
    from test_design_cli import SPEC

    spec = tmp_path / "slurmdesign.toml"
    spec.write_text(SPEC.format(name="slurmdesign") + "[launcher]\nlauncher = \"slurm\"\nworkers = 2\n")
    directory = tmp_path / "design"
    result = subprocess.run([sys.executable, "-m", "regnet_space.cli", "design", str(spec), "--dir", str(directory),
                             "--quiet"], env=slurm.env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    populations = sorted(p.stem for p in (directory / "populations").glob("*.toml"))
    jobs = [line for line in (directory / "slurm" / "jobs.jsonl").read_text().splitlines() if line]
    assert populations and len(jobs) == len(populations)  # one array per population trained
    assert result.stderr.count("submitted SLURM job array") == len(populations)
    for label in populations:  # the start population (20) and each paired batch (its listed projections)
        n = load_study_spec(directory / "populations" / f"{label}.toml").total
        assert_exactly_once(load(f"slurmdesign-{label}", directory), n)
    assert (directory / "lineage.json").exists() and (directory / "final_space.toml").exists()
