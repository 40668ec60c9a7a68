import sys
from pathlib import Path

import pytest

# Make tests/helpers.py, tests/study_helpers.py and tests/postgres_server.py importable.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server (tests/postgres_server.py), for the distributed tests.

    `make test` installs the package; where it is absent the tests that need it are skipped with the reason.
    """
    from postgres_server import NoPostgres, ThrowawayPostgres

    try:
        # The password is ignored by trust auth; it is there so tests can check it never leaks into output.
        server = ThrowawayPostgres(password="sup3rsecret")
    except NoPostgres as exc:
        pytest.skip(f"{exc}; distributed-study test skipped")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_server):
    return postgres_server.url
