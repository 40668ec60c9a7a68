"""A throwaway one-node SLURM cluster on this machine (Debian's slurm-wlm and munge), for the launcher tests and
the SLURM benchmark (benchmarks/slurm_launch.py).

Everything lives in a temporary folder: a munge key and a munged on a socket of its own (so a munged the machine
already runs is left alone), a slurm.conf naming this host as the only node with ``CPUs=$(nproc)``, its own
ports, state, spool and logs. ``ProctrackType=proctrack/linuxproc`` and ``TaskPlugin=task/none`` need no cgroups,
so it runs in a container as root. Clients reach it through ``SLURM_CONF`` (``env``): nothing in /etc changes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")


class NoSlurm(RuntimeError):
    """SLURM cannot be started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)),
                                      None)


class ThrowawaySlurm:
    """slurmctld + slurmd for one node (this host), partition ``debug``. ``env`` is the environment that points
    sbatch/squeue/scancel at it. ``close()`` cancels every job and stops the daemons."""

    def __init__(self, *, kill_wait: int = 10) -> None:
        missing = [name for name in DAEMONS if _which(name) is None]
        if missing:
            raise NoSlurm(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)")
        if os.geteuid() != 0:
            raise NoSlurm("the one-node SLURM cluster runs its daemons as root (SlurmUser=root)")
        self.root = Path(tempfile.mkdtemp(prefix="regnet-space-slurm-"))
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.processes: list[int] = []
        try:
            self._start_munge()
            self.conf = self._write_conf(kill_wait)
            self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
            for daemon in ("slurmctld", "slurmd"):
                self._daemon(daemon)
            self._wait_idle()
        except BaseException:
            self.close()
            raise

    def _start_munge(self) -> None:
        munge = self.root / "munge"
        munge.mkdir(mode=0o700)
        self.munge_socket = munge / "munge.socket"
        key = munge / "munge.key"
        subprocess.run([_which("mungekey"), "--create", "--keyfile", str(key)], check=True, capture_output=True)
        key.chmod(0o600)
        subprocess.run([_which("munged"), "--force", "--key-file", str(key), "--socket", str(self.munge_socket),
                        "--pid-file", str(munge / "munged.pid"), "--log-file", str(munge / "munged.log"),
                        "--seed-file", str(munge / "munged.seed")], check=True, capture_output=True, timeout=30)
        self.processes.append(int((munge / "munged.pid").read_text()))

    def _write_conf(self, kill_wait: int) -> Path:
        for folder in ("state", "spool", "log"):
            (self.root / folder).mkdir()
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 * 9 // 10
        conf = self.root / "slurm.conf"
        conf.write_text(f"""\
ClusterName=regnet-space-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={self.root}/state
SlurmdSpoolDir={self.root}/spool
SlurmctldPidFile={self.root}/slurmctld.pid
SlurmdPidFile={self.root}/slurmd.pid
SlurmctldLogFile={self.root}/log/slurmctld.log
SlurmdLogFile={self.root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait={kill_wait}
MinJobAge=300
SchedulerParameters=sched_interval=1
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
""")
        return conf

    def _daemon(self, name: str) -> None:
        """Start ``name`` in the background (it daemonizes itself) and remember its pid."""
        result = subprocess.run([_which(name), "-f", str(self.conf)], env=self.env, capture_output=True, text=True,
                                timeout=60)
        if result.returncode != 0:
            raise NoSlurm(f"{name} did not start: {result.stderr.strip() or self.log(name)}")
        pid_file = self.root / f"{name}.pid"
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text().strip():
                self.processes.append(int(pid_file.read_text()))
                return
            time.sleep(0.1)
        raise NoSlurm(f"{name} wrote no pid file; its log: {self.log(name)}")

    def log(self, name: str) -> str:
        path = self.root / "log" / f"{name}.log"
        return path.read_text()[-3000:] if path.exists() else "(no log)"

    def _wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-N", "-o", "%T").stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.5)
        raise NoSlurm(f"the node did not come up within {timeout:.0f} s (state {state!r}); slurmctld log: "
                      f"{self.log('slurmctld')}; slurmd log: {self.log('slurmd')}")

    def run(self, *command: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(list(command), env=self.env, capture_output=True, text=True, timeout=60, check=check)

    def tasks(self, job: str) -> dict[str, str]:
        """Array task id (``"123_0"``) -> state, for the job's tasks still known to squeue (pending ones too)."""
        out = self.run("squeue", "-h", "-r", "-j", job, "-o", "%i %T").stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def close(self) -> None:
        if hasattr(self, "env"):
            self.run("scancel", "--full", "-u", "root")
            deadline = time.monotonic() + 30
            while self.run("squeue", "-h").stdout.strip() and time.monotonic() < deadline:
                time.sleep(0.5)
        for pid in reversed(self.processes):
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
        for pid in self.processes:
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
