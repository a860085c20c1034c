"""The duties lock on a real PostgreSQL (adapters/postgres/duties_lock.py): of two processes' locks on one
database one holds it; the holder's connection ended by the server (pg_terminate_backend, as when its process is
killed or the server restarts) frees it for the other, and the first finds out it lost it; a holder that stays
silent past its idle timeout (a frozen process) is ended by the server; a lock given up is the other's at once;
a check left unanswered past its time counts the lock as lost.
No Docker host: PostgreSQL only."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from adapters.postgres.connection import connection_options
from adapters.postgres.duties_lock import PostgresDutiesLock
from engine.settings import store_env


@pytest.fixture
async def two_locks(postgres):
    env = postgres.new_database()
    options = connection_options(store_env(env, Path("unused")))
    locks = [PostgresDutiesLock(options, lease_s=30), PostgresDutiesLock(options, lease_s=30)]
    yield (*locks, env["REDIS_ADDONS_POSTGRES_DBNAME"])
    for lock in locks:
        await lock.release()


async def test_one_of_two_holds_the_lock_and_the_other_gets_it_once_the_holders_connection_is_ended(postgres, two_locks):
    a, b, dbname = two_locks
    assert await a.try_hold() and await a.try_hold()  # held, and held again
    assert not await b.try_hold()
    assert await a.still_held() and not await b.still_held()
    postgres.psql(f"SELECT pg_terminate_backend({a.backend_pid}, 10000)", dbname)
    assert await b.try_hold()  # the server freed it with the connection
    assert not await a.still_held()  # the first notices it lost it
    assert not await a.try_hold()  # on a new connection: b holds it now
    assert await b.still_held()


async def test_a_lock_given_up_is_the_others_at_once(two_locks):
    a, b, _ = two_locks
    assert await a.try_hold()
    await a.release()
    assert not await a.still_held()
    assert await b.try_hold() and await b.still_held()


async def test_the_server_ends_a_holder_silent_past_its_idle_timeout_and_the_other_takes_the_lock(postgres):
    options = connection_options(store_env(postgres.new_database(), Path("unused")))
    frozen, other = PostgresDutiesLock(options, lease_s=30, idle_timeout_s=0.5), PostgresDutiesLock(options, lease_s=30)
    try:
        assert await frozen.try_hold()
        async with asyncio.timeout(30):  # the server's timer, not a duration measured here
            while not await other.try_hold():
                await asyncio.sleep(0.2)
        assert not await frozen.still_held()
    finally:
        await frozen.release()
        await other.release()


async def test_a_holder_whose_check_gets_no_answer_in_time_counts_the_lock_as_lost(two_locks):
    """The network gone quiet between the holder and the server: the holder must stop its duties before the
    server frees its lock (an idle timeout after its last word), so an unanswered check says "lost"."""
    a, _, _ = two_locks
    assert await a.try_hold()
    answered, unstuck = a._still_held, threading.Event()

    def unanswered() -> bool:
        unstuck.wait(30)
        return answered()

    a._still_held, a.answer_s = unanswered, 0.2
    try:
        assert not await a.still_held()
    finally:
        unstuck.set()
    a._still_held = answered
    async with asyncio.timeout(10):  # the statement left waiting ends; the lock, still this connection's, is seen
        while not await a.still_held():
            await asyncio.sleep(0.1)
