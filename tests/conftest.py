"""Shared test set-up: the real local Docker hosts that `make setup` started."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOSTS_FILE = Path(os.environ.get("REDIS_ADDONS_HOSTS", REPO / "var" / "hosts.json"))

# Servers the tests start run no scheduler: a scheduled backup falling due mid-test (at 1:00 in Paris)
# would hold an addon another step of the test wants. Scheduler tests drive its ticks with their own clock.
os.environ.setdefault("REDIS_ADDONS_SCHEDULER_TICK", "0")

# `redis-addons serve` and `login` record the server in the user's configuration directory: the tests'
# servers write to one of their own, never to the configuration of whoever runs the suite.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="redis-addons-tests-config-")
atexit.register(shutil.rmtree, os.environ["XDG_CONFIG_HOME"], ignore_errors=True)


# `make test` runs two pytest workers (pytest-xdist): every test that drives the Docker hosts goes to one
# worker, in order, as they share the hosts' ports and memory and some count what the hosts hold; the unit
# and scenario tests, which touch no host, run meanwhile on the other core. (xdist's own `loadgroup`
# marks do not reach pytest 9's test ids: this scheduler groups by path instead.)
ON_THE_HOSTS = ("tests/integration/", "tests/e2e/")


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class HostTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "docker-hosts" if nodeid.startswith(ON_THE_HOSTS) else nodeid

    return HostTestsTogether(config, log)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server per pytest worker (tests/postgres_server.py), started at the first test
    that asks; `postgres.new_database()` gives each test an empty database of its own."""
    from tests.postgres_server import ThrowawayPostgres

    server = ThrowawayPostgres().start()
    yield server
    server.stop()
