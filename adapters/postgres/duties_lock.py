"""Which process of an installation on PostgreSQL runs its duties (engine/duties.py): a session advisory lock on a
fixed key, held on a connection of its own, so that leadership records nothing anywhere while it lasts. The server
frees the lock the moment that connection ends: its process killed (kill -9 too), the server restarted, or the
connection found dead by TCP keepalives; a holder that sees its connection broken has lost the duties.

A holder frozen (SIGSTOP, a stalled machine) keeps its connection open, and TCP keepalives are answered by its
kernel: so the server ends the holder's session once it has said nothing for `idle_timeout_s`
(idle_session_timeout, PostgreSQL 14+), while a live holder speaks every renewal period (still_held). The
duties then stall at most about that long; a woken holder finds its connection gone and stops them. Operations
are fenced by their own leases meanwhile (engine/leases.py): none runs twice."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading

import psycopg
import structlog

from adapters.postgres.connection import SharedStateUnavailable, connect, first_line
from adapters.postgres.process_lock import KEEPALIVES

log = structlog.get_logger("duties")


def duties_key() -> int:
    """pg_advisory_lock's bigint for the duties: one per database (advisory locks are per database), apart from
    the process identities' locks (adapters/postgres/process_lock.py) by its own prefix."""
    digest = hashlib.sha256(b"redis-addons duties\0").digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def in_pg_locks(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: its high and low 32 bits as classid and objid (objsubid 1)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


class PostgresDutiesLock:
    def __init__(self, options: dict, lease_s: float, idle_timeout_s: float | None = None):
        """`lease_s`: the installation's lease (its third is the renewal period the engine checks the lock at);
        the server ends a session silent for `idle_timeout_s` (two leases unless told)."""
        self.options, self.answer_s = options, lease_s
        self.idle_timeout_s = idle_timeout_s if idle_timeout_s is not None else 2 * lease_s
        self.key = duties_key()
        self._connection: psycopg.Connection | None = None
        self._held = False
        self._lock = threading.Lock()  # one statement at a time

    async def try_hold(self) -> bool:
        return bool(await self._answer(self._try_hold))

    async def still_held(self) -> bool:
        return bool(await self._answer(self._still_held))

    async def release(self) -> None:
        await self._answer(self._release)

    async def _answer(self, call):
        """`call`'s answer, or False when PostgreSQL has not answered within a lease: a holder cut off from the
        server (its network gone quiet) stops its duties before the server frees its lock (an idle timeout
        after its last word), so that two never run them at once. The statement left waiting ends with the
        connection (tcp_user_timeout)."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._one_at_a_time, call), self.answer_s)
        except TimeoutError:
            log.warning("PostgreSQL did not answer the duties lock in time", seconds=self.answer_s)
            return False

    def _one_at_a_time(self, call):
        if not self._lock.acquire(timeout=self.answer_s):  # a statement still waits for its answer
            return False
        try:
            return call()
        finally:
            self._lock.release()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the connection holding the lock (None when not held): what an operator ends."""
        return self._connection.info.backend_pid if self._held and self._connection is not None else None

    def _try_hold(self) -> bool:
        if self._held:
            return True
        for attempt in (1, 2):  # again at once on a new connection when the kept one was found broken
            try:
                connection = self._connection = self._connection or self._connect()
                [(self._held,)] = connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchall()
                return self._held
            except SharedStateUnavailable as error:
                log.warning("duties lock not tried: PostgreSQL does not answer", error=str(error))
                return False
            except psycopg.Error as error:
                self._close()
                if attempt == 2:
                    log.warning("duties lock not tried", error=first_line(error))
        return False

    def _connect(self) -> psycopg.Connection:
        # A statement unanswered past the idle timeout fails (tcp_user_timeout, in ms), ending the connection.
        connection = connect({**self.options, **KEEPALIVES, "tcp_user_timeout": int(self.idle_timeout_s * 1000)})
        try:
            # The server ends this session if it stays silent (a frozen holder) or its peer vanished: either
            # frees the lock. A holder speaks every renewal period, well within the idle timeout.
            connection.execute("SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; "
                               "SET tcp_keepalives_count = 3")
            connection.execute(f"SET idle_session_timeout = {int(self.idle_timeout_s * 1000)}")
        except psycopg.Error:
            connection.close()
            raise
        return connection

    def _still_held(self) -> bool:
        if not self._held or self._connection is None:
            return False
        classid, objid = in_pg_locks(self.key)
        try:
            [(held,)] = self._connection.execute(
                "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1",
                (classid, objid)).fetchall()
        except psycopg.Error as error:  # the connection broke: the server dropped the lock with it
            log.warning("duties lock's connection lost", error=first_line(error))
            held = False
        if not held:
            self._held = False
            self._close()
        return held

    def _release(self) -> None:
        if self._held and self._connection is not None:
            try:
                self._connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            except psycopg.Error:
                pass  # the connection's end below frees it anyway
        self._held = False
        self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()
