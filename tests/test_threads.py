"""The thread policy for shared machines (issue 26): passive OpenMP waiting set before torch loads, one thread per
worker by default, and a warning when threads x workers exceed the CPUs a process may use."""

from __future__ import annotations

import os
import subprocess
import sys

from regnet_space import threads


def _fresh(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in threads.PASSIVE_WAIT}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**base, **env}).stdout.split()


def test_the_cli_sets_passive_waiting_before_torch_is_imported():
    code = ("import os, sys; import regnet_space.cli; "
            "print(os.environ['OMP_WAIT_POLICY'], os.environ['KMP_BLOCKTIME'], 'torch' in sys.modules)")
    assert _fresh(code) == ["PASSIVE", "0", "False"]


def test_a_users_own_setting_is_kept():
    assert _fresh("import os, regnet_space; print(os.environ['OMP_WAIT_POLICY'])", OMP_WAIT_POLICY="ACTIVE") == [
        "ACTIVE"]


def test_oversubscription_is_judged_against_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert threads.available_cpus() == 4
    assert threads.oversubscription(1, 4) is None and threads.oversubscription(2, 2) is None
    warning = threads.oversubscription(2, 4)
    assert "8 threads on 4 CPU(s)" in warning and "--workers 4 --threads 1" in warning
    assert "--workers 1 --threads 4" in threads.oversubscription(8, 1)


def test_a_lone_worker_is_told_about_idle_cpus(monkeypatch):
    from regnet_space.study.runner import idle_cpus_note

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert "--workers 4" in idle_cpus_note(1, None)
    assert "--workers 2" in idle_cpus_note(1, 2)
    assert idle_cpus_note(4, None) is None and idle_cpus_note(2, 2) is None
