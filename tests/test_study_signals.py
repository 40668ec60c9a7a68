"""SIGINT, SIGTERM and SIGHUP to `study run`: workers stopped, their models marked interrupted (and no longer
RUNNING), exit 130/143/129, no worker left behind; a rerun finishes the study (defect 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from optuna.trial import TrialState

from study_helpers import load, tiny_spec


def worker_pids(spec) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"worker" in cmdline and str(spec).encode() in cmdline:
                pids.append(int(entry))
    return pids


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stop_signal_marks_models_interrupted_and_leaves_no_worker(tmp_path, sig, code):
    spec = tiny_spec(tmp_path, name=f"sig{sig.value}", n=3, train=2048, epochs=30)
    directory = tmp_path / "run"
    runner = subprocess.Popen([sys.executable, "-m", "regnet_space.cli", "study", "run", str(spec), "--dir",
                               str(directory), "--workers", "2", "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    running = []
    while time.time() < deadline:
        if (directory / "study.journal").exists():
            try:
                running = [t.number for t in load(spec.stem, directory).get_trials(states=(TrialState.RUNNING,))]
                if len(running) >= 2:
                    break
            except KeyError:  # the study is being created
                pass
        time.sleep(0.5)
    else:
        runner.kill()
        pytest.fail("workers never started training")
    assert len(worker_pids(spec)) == 2
    runner.send_signal(sig)  # to the runner alone, as `kill PID` or a closed terminal does
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == code, err
    assert "Traceback" not in err and "marked interrupted" in err
    time.sleep(0.5)
    assert worker_pids(spec) == []
    study = load(spec.stem, directory)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert interrupted and all(t.state == TrialState.FAIL for t in interrupted)
    # Each model running at the signal was marked interrupted, unless it finished training in the moment
    # between the look above and the signal (then it was stored complete first; rare, but it happens).
    marked = {t.number for t in interrupted}
    assert all(n in marked or study.trials[n].state == TrialState.COMPLETE for n in running)


def test_runner_killed_outright_leaves_no_orphan(tmp_path):
    spec = tiny_spec(tmp_path, name="kill9", n=3, train=2048, epochs=30)
    directory = tmp_path / "run"
    runner = subprocess.Popen([sys.executable, "-m", "regnet_space.cli", "study", "run", str(spec), "--dir",
                               str(directory), "--workers", "2", "--quiet"], stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(worker_pids(spec)) < 2 and time.time() < deadline:
        time.sleep(0.2)
    runner.kill()
    runner.wait()
    killed = time.time()
    while worker_pids(spec) and time.time() < killed + 60:
        time.sleep(0.05)
    assert worker_pids(spec) == []
    # Issue 24, defect 10: workers outlived the runner by 5-15 s (the interpreter's teardown after the worker
    # had marked its model interrupted); now they exit without it.
    assert time.time() - killed <= 2.0


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stop_signal_during_set_up_exits_with_its_code(tmp_path, sig, code):
    """A signal before any worker starts (while the study is opened and the population checked) ends the run
    with the same code and a one-line message, not the bare -15 of an unhandled SIGTERM."""
    spec = tiny_spec(tmp_path, name=f"setup{sig.value}", n=3, train=256, epochs=1)
    script = ("import os, signal, sys\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even under nohup\n"
              "import regnet_space.commands.study as study\n"
              f"study._warn_tiny_stages = lambda spec: os.kill(os.getpid(), {int(sig)})\n"
              "from regnet_space.cli import main\n"
              f"sys.exit(main(['study', 'run', {str(spec)!r}, '--dir', {str(tmp_path / 'run')!r}, '--quiet']))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] in ("regnet-space: interrupted",
                                                   f"regnet-space: stopped by {sig.name}")
    assert worker_pids(spec) == []


@pytest.mark.parametrize("where", ["after the claim", "while storing the result"])
def test_a_signal_outside_training_leaves_no_model_running(tmp_path, monkeypatch, where):
    # A stop signal a moment after the claim (before training starts), or once training is over (while the
    # result is stored), must mark the model interrupted like one during training does, not leave it RUNNING.
    from regnet_space.study import load_study_spec
    from regnet_space.study import worker
    from regnet_space.study.session import open_study

    def signal_now(*args, **kwargs):
        raise KeyboardInterrupt  # what worker._raise_interrupt raises on SIGTERM

    if where == "after the claim":
        monkeypatch.setattr(worker.AnyNetSpec, "from_json", signal_now)
    else:
        monkeypatch.setattr(worker, "finish", signal_now)
    session = open_study(load_study_spec(tiny_spec(tmp_path, name="outside", n=1)), directory=str(tmp_path / "d"))
    handlers = {sig: signal.getsignal(sig) for sig in worker.STOP_SIGNALS}
    try:
        with pytest.raises(KeyboardInterrupt):
            worker.run_worker(session, name="w")
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    trials = load("outside", tmp_path / "d").trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 1 and interrupted[0].state == TrialState.FAIL


REDELIVERY_SCRIPT = """
import os, signal, time, weakref
from regnet_space.study import worker
for sig in worker.STOP_SIGNALS:
    signal.signal(sig, worker._raise_interrupt)
class Thing:
    pass
thing = Thing()
def on_collect(ref):
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs inside this callback, whose exceptions Python drops
    sum(range(1000))
ref = weakref.ref(thing, on_collect)
del thing
start = time.time()
try:
    while time.time() - start < 10:
        time.sleep(0.01)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_a_stop_signal_dropped_inside_a_weakref_callback_still_interrupts_the_worker():
    # Seen under SLURM: scancel's SIGTERM landed in torch's WeakKeyDictionary clean-up, the KeyboardInterrupt was
    # printed as "Exception ignored" and the worker trained on, its stop signals ignored, until SIGKILL.
    result = subprocess.run([sys.executable, "-c", REDELIVERY_SCRIPT], capture_output=True, text=True, timeout=60)
    assert "Exception ignored" in result.stderr  # the first KeyboardInterrupt was indeed dropped
    assert result.stdout.strip() == "interrupted"
