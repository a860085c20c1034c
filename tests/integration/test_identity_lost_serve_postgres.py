"""`redis-addons serve` on PostgreSQL when its process identity's lock is freed under it (issue 16, part 2): the
server ends the session holding it (pg_terminate_backend, as a server restart or a network cut does). Nobody took it
meanwhile: the served process takes it again and goes on. Another took it first: leases are held by identity, so the
served process stops driving anything and exits non-zero with an error naming the identity (a supervisor restarts
it, refused while the other holds it). Real PostgreSQL; the served process is stopped by its PID."""

from __future__ import annotations

import asyncio
import signal

from adapters.data_lock import FileDataLock
from adapters.postgres.connection import connection_options
from adapters.postgres.process_lock import PostgresProcessLock, ProcessIdentityInUse
from engine.settings import store_env
from tests.integration.test_data_lock import healthy
from tests.integration.test_process_lock_postgres import end_session, holding_session
from tests.integration.test_two_engines_postgres import ServedOn, installation_env

IDENTITY = "machine-1:/srv/a"  # the identity test_process_lock_postgres.py's helpers look for


async def a_new_holder(postgres, dbname: str, not_this: int) -> int:
    async with asyncio.timeout(30):
        while (session := await asyncio.to_thread(holding_session, postgres, dbname)) in (None, not_this):
            await asyncio.sleep(0.1)
    return session


async def test_serve_takes_its_identity_again_when_freed_and_exits_non_zero_once_another_holds_it(postgres, tmp_path):
    database = postgres.new_database("served")
    dbname = database["REDIS_ADDONS_POSTGRES_DBNAME"]
    env = installation_env(database, tmp_path / "shared", tmp_path / "one", IDENTITY) | {
        "REDIS_ADDONS_LEASE_SECONDS": "3"}  # its lock checked every second
    served = ServedOn(env)
    thief = PostgresProcessLock(connection_options(store_env(database, tmp_path)), IDENTITY,
                                FileDataLock(tmp_path / "thief"))
    try:
        api = await served.api(timeout=60)
        session = holding_session(postgres, dbname)
        end_session(postgres, dbname, session)  # nobody else: taken again by the served process
        await a_new_holder(postgres, dbname, not_this=session)
        assert served.process.poll() is None and await healthy(api)

        for _ in range(5):  # the thief first, before the served process's next check (else it tries again)
            end_session(postgres, dbname, await a_new_holder(postgres, dbname, not_this=None))
            try:
                thief.acquire()
                break
            except ProcessIdentityInUse:
                continue
        assert thief.still_held()
        code = await asyncio.to_thread(served.process.wait, 60)
        output = served.output()
        assert code != 0, output
        [line] = [line for line in output.splitlines() if line.startswith("error:")]
        assert line.startswith(f"error: process identity {IDENTITY!r} was lost: another redis-addons engine holds "
                               "it now"), output
        assert "REDIS_ADDONS_PROCESS_ID" in line and postgres.password not in output
        assert "process identity lost; this engine stops driving operations" in output  # its log says so too
    finally:
        thief.release()
        if served.process.poll() is None:
            served.stop(signal.SIGKILL)
        served.log.close()
