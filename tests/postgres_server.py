"""A throwaway PostgreSQL server on 127.0.0.1 (Debian's postgresql package), for the distributed-study tests
and the benchmarks that need one (benchmarks/fault_injection.py, benchmarks/study_scale.py)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class NoPostgres(RuntimeError):
    """PostgreSQL cannot be started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """initdb + pg_ctl start in a temporary folder, trust authentication, one database ``regnet``.
    ``url`` carries ``password`` (ignored by trust authentication) so callers can check it never leaks."""

    def __init__(self, password: str = "pw") -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise NoPostgres("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = Path(binaries[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="regnet-space-pg-"))
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
            if shutil.which("runuser") is None:
                raise NoPostgres("running as root without runuser; cannot start PostgreSQL as the postgres user")
            shutil.chown(self.root, "postgres", "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self.data = self.root / "data"
        self.pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        try:
            self.pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "regnet")
        except BaseException:
            self.close()
            raise
        self.url = f"postgresql+psycopg://postgres:{password}@127.0.0.1:{self.port}/regnet"

    def pg(self, *args: str) -> None:
        subprocess.run(self.run_as + [str(self.bindir / args[0]), *args[1:]], check=True, capture_output=True,
                       timeout=120)

    def _options(self) -> list[str]:
        return ["-l", str(self.root / "server.log"), "-w", "-o",
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200"]

    def start(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data), *self._options(), "start")

    def stop(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every client connection is cut."""
        self.pg("pg_ctl", "-D", str(self.data), "-m", "fast", *self._options(), "restart")

    def close(self) -> None:
        try:
            self.pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
