import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Make tests/helpers.py and tests/study_helpers.py importable.
sys.path.insert(0, str(Path(__file__).parent))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's postgresql package), for the distributed tests.

    `make test` installs the package; where it is absent the tests that need it are skipped with the reason.
    """
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); distributed-study test skipped")
    bindir = Path(binaries[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="regnet-space-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser; cannot start PostgreSQL as the postgres user")
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data, log = root / "data", root / "server.log"

    def pg(*args: str) -> None:
        subprocess.run(run_as + [str(bindir / args[0]), *args[1:]], check=True, capture_output=True, timeout=120)

    pg("initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
    pg("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-o",
       f"-p {port} -c listen_addresses=127.0.0.1 -k {root}", "start")
    try:
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "regnet")
        # The password is ignored by trust auth; it is there so tests can check it never leaks into output.
        yield f"postgresql+psycopg://postgres:sup3rsecret@127.0.0.1:{port}/regnet"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
