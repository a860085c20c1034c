"""Placement across the installation's processes on PostgreSQL (engine/placing.py): a session advisory lock on a
fixed key, taken on a connection of its own for one placement and freed by closing it. Without it two processes
placing at once each read an inventory without the other's new node, and chose the same port of the same host
(and could choose the same addon name): the second node then failed to start. Held from before the inventory is
caught up with the log until what was placed is saved, so the next holder reads it.

A holder that dies frees the lock with its connection; one frozen holds it until the server ends its silent
session (idle_session_timeout, two leases). Waiting longer than that is refused with a TransientError: the
request can be made again."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from contextlib import asynccontextmanager

import psycopg
import structlog

from adapters.postgres.connection import SharedStateUnavailable, connect, describe, first_line
from adapters.postgres.process_lock import KEEPALIVES
from engine.ports import TransientError

log = structlog.get_logger("placing")


def placement_key() -> int:
    """pg_advisory_lock's bigint for placement, apart from the duties' and the process identities' keys."""
    return int.from_bytes(hashlib.sha256(b"redis-addons placement\0").digest()[:8], "big", signed=True)


class PostgresPlacementLock:
    def __init__(self, options: dict, lease_s: float):
        self.options = options
        self.idle_timeout_s = 2 * lease_s  # a frozen holder's session ended by the server after that
        self.wait_s = self.idle_timeout_s + 10.0
        self.key = placement_key()

    @asynccontextmanager
    async def held(self):
        taking = asyncio.ensure_future(asyncio.to_thread(self._take))
        try:
            connection = await asyncio.shield(taking)
        except asyncio.CancelledError:
            # The thread goes on and may get the lock: its connection is closed once it has, freeing it.
            taking.add_done_callback(lambda done: done.cancelled() or done.exception() or self._close(done.result()))
            raise
        try:
            yield
        finally:
            await asyncio.to_thread(self._close, connection)

    def _take(self) -> psycopg.Connection:
        try:
            connection = connect({**self.options, **KEEPALIVES, "tcp_user_timeout": int(self.idle_timeout_s * 1000)})
        except SharedStateUnavailable as error:
            raise unagreed(str(error)) from None
        try:
            connection.execute(f"SET idle_session_timeout = {int(self.idle_timeout_s * 1000)}")
            connection.execute(f"SET lock_timeout = {int(self.wait_s * 1000)}")
            connection.execute("SELECT pg_advisory_lock(%s)", (self.key,))
            return connection
        except psycopg.errors.LockNotAvailable:
            self._close(connection)
            log.warning("another engine process held placement too long", seconds=self.wait_s)
            raise TransientError(f"another engine process has been placing nodes for more than {self.wait_s:.0f} s "
                                 "(frozen, or cut off from PostgreSQL): try again") from None
        except psycopg.Error as error:
            self._close(connection)
            raise unagreed(f"{describe(self.options)}: {first_line(error)}") from None

    @staticmethod
    def _close(connection: psycopg.Connection) -> None:
        with contextlib.suppress(psycopg.Error):
            connection.close()  # the server frees the session's advisory lock with it


def unagreed(cause: str) -> TransientError:
    """`cause` (where PostgreSQL is, its user, its words; never the password) goes to the operator's log only: the
    client, maybe a scoped token's, is answered as the event store answers it (engine/store.py)."""
    log.error("placement could not be agreed with the other engine processes", error=cause)
    return TransientError("placement could not be agreed with the other engine processes: PostgreSQL did not "
                          "answer; try again")
