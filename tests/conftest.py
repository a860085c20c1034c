"""Shared test set-up: the real local Docker hosts that `make setup` started."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# `make test` runs the tests on the Docker hosts as two streams (see the scheduler below): the first worker's on
# host-a/b/c (hosts.json), the second's on host-e/f/g (scaleout-hosts.json). Run alone, every test uses hosts.json.
SECOND_STREAM_WORKER = "gw1"
_on_second_stream = os.environ.get("PYTEST_XDIST_WORKER") == SECOND_STREAM_WORKER
HOSTS_FILE = Path(os.environ.get("REDIS_ADDONS_HOSTS")
                  or REPO / "var" / ("scaleout-hosts.json" if _on_second_stream else "hosts.json"))

# Servers the tests start run no scheduler: a scheduled backup falling due mid-test (at 1:00 in Paris)
# would hold an addon another step of the test wants. Scheduler tests drive its ticks with their own clock.
os.environ.setdefault("REDIS_ADDONS_SCHEDULER_TICK", "0")

# `redis-addons serve` and `login` record the server in the user's configuration directory: the tests'
# servers write to one of their own, never to the configuration of whoever runs the suite.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="redis-addons-tests-config-")
atexit.register(shutil.rmtree, os.environ["XDG_CONFIG_HOME"], ignore_errors=True)


# `make test` runs two pytest workers (pytest-xdist). The tests that drive the Docker hosts run as two streams,
# each in order on one worker and on three engines of its own, as a stream's tests share their hosts' ports and
# memory and some count what the hosts hold: the first on gw0 (host-a/b/c), the second on gw1 (host-e/f/g); the
# unit and scenario tests, which touch no host, fill in beside them. A test file goes to the second stream when
# it names no host of the first (no host-a/b/c/d, no 127.0.1-4.1): SECOND_STREAM below lists them.
# (xdist's own `loadgroup` marks do not reach pytest 9's test ids: this scheduler groups by path instead.)
ON_THE_HOSTS = ("tests/integration/", "tests/e2e/")
SECOND_STREAM = tuple(f"tests/integration/{name}.py" for name in (
    "test_business_backups", "test_business_force_tls", "test_business_plan_change", "test_business_provisioning",
    "test_business_restore", "test_business_self_healing", "test_business_settings", "test_business_upgrade",
    "test_business_upgrade_major", "test_kind_change", "test_credentials_rotation", "test_backups",
    "test_backups_api", "test_backup_modes", "test_backup_store", "test_backup_encryption", "test_dashboard",
    "test_upgrade", "test_upgrade_in_place", "test_upgrade_under_writes", "test_upgrade_safety_backup",
    "test_maintenance", "test_settings", "test_settings_api", "test_stats", "test_metrics", "test_webhooks",
    "test_remote_host",  # its engine uses the second stream's hosts (the TLS one), whichever stream runs it
    "test_on_postgres", "test_two_engines", "test_tls_crash",
))
# Tests under tests/integration/ that make no container (PostgreSQL only): they run anywhere, like unit tests.
ON_NO_HOST = tuple(f"tests/integration/{name}.py" for name in ("test_postgres_store", "test_shared_state_postgres",
                                                                     "test_duties_lock_postgres",
                                                                     "test_process_lock_postgres",
                                                                     "test_placement_lock_postgres"))
STREAM_OF_WORKER = {"gw0": "docker-hosts", SECOND_STREAM_WORKER: "second-hosts"}


def stream_of(nodeid: str) -> str:
    if nodeid.startswith(ON_NO_HOST):
        return nodeid
    if nodeid.startswith(SECOND_STREAM):
        return "second-hosts"
    return "docker-hosts" if nodeid.startswith(ON_THE_HOSTS) else nodeid


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class TwoHostStreams(LoadScopeScheduling):
        """LoadScope, but each stream of host tests goes to its own worker (its tests use that worker's hosts)."""

        def _split_scope(self, nodeid: str) -> str:
            return stream_of(nodeid)

        def _may_run(self, node, scope: str) -> bool:
            pinned = {stream: worker for worker, stream in STREAM_OF_WORKER.items()}
            return scope not in pinned or pinned[scope] == node.gateway.id or not self._has_worker(pinned[scope])

        def _has_worker(self, worker_id: str) -> bool:
            return any(node.gateway.id == worker_id for node in self.nodes)

        def _assign_work_unit(self, node) -> None:
            scope = next((s for s in self.workqueue if self._may_run(node, s)), None)
            if scope is None:
                return
            work_unit = self.workqueue.pop(scope)
            self.assigned_work.setdefault(node, {})[scope] = work_unit
            collection = self.registered_collections[node]
            node.send_runtest_some([collection.index(nodeid) for nodeid, done in work_unit.items() if not done])

        def _reschedule(self, node) -> None:
            super()._reschedule(node)
            # A worker left with nothing it may run is shut down now: no test of its own will call it back.
            for other in self.nodes:
                if not other.shutting_down and not self._pending_of(self.assigned_work[other]) \
                        and not any(self._may_run(other, s) for s in self.workqueue):
                    other.shutdown()

    return TwoHostStreams(config, log)


# A third worker runs the unit, scenario and PostgreSQL-only tests while the two streams run. Two streams
# keep the 2 cores nearly busy, and their tests time failovers and replication: the third worker yields
# the CPU to them (a nice of 10: about a tenth of a core when both want it, every idle cycle otherwise).
NICE_BESIDE_THE_STREAMS = 10


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None and worker not in STREAM_OF_WORKER:
        os.nice(NICE_BESIDE_THE_STREAMS)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server per pytest worker (tests/postgres_server.py), started at the first test
    that asks; `postgres.new_database()` gives each test an empty database of its own."""
    from tests.postgres_server import ThrowawayPostgres

    server = ThrowawayPostgres().start()
    yield server
    server.stop()
