"""The placement lock on a real PostgreSQL (adapters/postgres/placement_lock.py): one placement at a time across the
installation's processes, the next one let in once the first is done; a placement cancelled while it waits (its
request gone) leaves no connection holding the lock; a server refusing the connection is a TransientError that
tells the client neither where PostgreSQL is nor its user nor its password.
No Docker host: PostgreSQL only (two engines placing at once: test_two_engines_postgres.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.postgres.connection import connection_options
from adapters.postgres.placement_lock import PostgresPlacementLock, placement_key
from engine.ports import TransientError
from engine.settings import store_env


@pytest.fixture
def database(postgres):
    """(connection options, database name) of a fresh database."""
    env = postgres.new_database("placing")
    return connection_options(store_env(env, Path("unused"))), env["REDIS_ADDONS_POSTGRES_DBNAME"]


def sessions_on_the_lock(postgres, dbname: str, granted: bool) -> list[str]:
    """The server processes holding (granted) or waiting for the placement lock, as any client sees pg_locks."""
    return postgres.psql("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted = "
                         f"{'true' if granted else 'false'} AND ((classid::bigint << 32) | objid::bigint) = "
                         f"{placement_key()}", dbname).split()


async def until(condition, what: str) -> None:
    """Polls `condition` (a server's state, not a duration measured here); fails naming `what` never came."""
    try:
        async with asyncio.timeout(30):
            while not await asyncio.to_thread(condition):
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not so within 30 s: {what}") from None


async def place(lock: PostgresPlacementLock, done: list, name: str) -> None:
    async with lock.held():
        done.append(name)


async def second_waiting(postgres, dbname: str, lock: PostgresPlacementLock, done: list) -> asyncio.Task:
    """A second placement asked while the first holds the lock: once the server shows it waiting."""
    waiting = asyncio.create_task(place(lock, done, "two"))
    await until(lambda: sessions_on_the_lock(postgres, dbname, granted=False), "the second waits")
    return waiting


async def test_the_second_placement_waits_for_the_first_to_be_done(postgres, database):
    options, dbname = database
    one, two, done = PostgresPlacementLock(options, 15.0), PostgresPlacementLock(options, 15.0), []
    async with one.held():
        waiting = await second_waiting(postgres, dbname, two, done)
        assert not waiting.done() and done == [] and len(sessions_on_the_lock(postgres, dbname, granted=True)) == 1
        done.append("one")
    await asyncio.wait_for(waiting, 30)
    assert done == ["one", "two"]
    await until(lambda: not sessions_on_the_lock(postgres, dbname, granted=True), "freed by the second's close")


async def test_a_placement_cancelled_while_it_waits_leaves_nobody_holding_the_lock(postgres, database):
    options, dbname = database
    # The server would end an idle holder after two leases (two minutes here): the lock must be freed before.
    one, two, done = PostgresPlacementLock(options, 60.0), PostgresPlacementLock(options, 60.0), []
    async with one.held():
        waiting = await second_waiting(postgres, dbname, two, done)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    # Its thread got the lock once the first was done, and its connection was closed then.
    await until(lambda: not sessions_on_the_lock(postgres, dbname, granted=True)
                and not sessions_on_the_lock(postgres, dbname, granted=False), "nobody holds or waits")
    assert done == []
    async with asyncio.timeout(30):
        await place(PostgresPlacementLock(options, 60.0), done, "three")
    assert done == ["three"]


async def test_a_refused_connection_tells_the_client_no_address_user_or_password(postgres, database):
    options, _ = database
    wrong = {**options, "password": "wrong-" + postgres.password}
    with capture_logs() as logs, pytest.raises(TransientError) as refused:
        async with PostgresPlacementLock(wrong, 15.0).held():
            pass
    message = str(refused.value)
    assert message.startswith("placement could not be agreed with the other engine processes"), message
    for secret_or_where in (postgres.password, options["host"], str(options["port"]), options["user"]):
        assert secret_or_where not in message
    logged = repr(logs)
    assert f"{options['host']}:{options['port']}" in logged and postgres.password not in logged  # the operator's
