"""One engine per process identity (REDIS_ADDONS_PROCESS_ID) of an installation on PostgreSQL: a session
advisory lock on a hash of the identity, held on a connection of its own from the engine's start to its stop.
The server drops it when that connection ends, however its process ends (kill -9 too): a stale record never
blocks, only a live holder does. Two identities run side by side. The data directory's own file lock is kept
as well (adapters/data_lock.py): its read models and files are still one engine's.

The server drops it too when the connection breaks under a live engine (the server restarted, the session ended,
the network cut): the engine checks it every renewal period (still_held, engine/identity_watch.py) and takes it
again at once on a new connection; lost only if another engine took the identity meanwhile."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading

import psycopg
import structlog

from adapters.data_lock import DataDirectoryInUse, FileDataLock
from adapters.postgres.connection import (SCHEMA, SCHEMA_LOCK, SharedStateUnavailable, connect, describe,
                                          first_line)
from engine.ports import EffectError

KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
RELEASE_WAIT_S = 10.0  # how long a release or an announce waits for a check still waiting on the store

log = structlog.get_logger("engine")


class ProcessIdentityInUse(DataDirectoryInUse):
    """Another live engine holds this process identity; the message names it."""

    session: int | None = None  # the server process of the holder's connection, if the server told it


def lock_key(identity: str) -> int:
    """pg_advisory_lock's bigint for an identity: a hash, apart from other advisory locks of ours by its prefix."""
    digest = hashlib.sha256(b"redis-addons process identity\0" + identity.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresProcessLock:
    def __init__(self, options: dict, identity: str, home_lock: FileDataLock, on_release=None, lease_s: float = 15.0):
        """`on_release`: called as the engine stops (the shared state's connection closed with it); a check left
        unanswered for two leases (`lease_s`) fails, ending its connection, not after TCP's own 15 minutes."""
        self.options, self.identity, self.home_lock, self.on_release = options, identity, home_lock, on_release
        self.unanswered_ms = int(2 * lease_s * 1000)
        self._connection: psycopg.Connection | None = None  # None while held: broken, taken again at the next check
        self._held = False
        self._session: int | None = None  # the server process of the connection that took the lock last
        self._api: str | None = None
        self._guard = threading.Lock()  # one use of the connection at a time: checks run in a worker thread

    def acquire(self) -> None:
        if self._held:  # held already: a start tried again
            return
        self.home_lock.acquire()
        try:
            self._connection = self._lock()
        except SharedStateUnavailable as error:  # at start: the operator must look, as for the event store
            self.home_lock.release()
            raise EffectError(f"cannot take the lock of process identity {self.identity!r}: {error}") from None
        except psycopg.Error as error:
            self.home_lock.release()
            raise ProcessIdentityInUse(f"cannot take the lock of process identity {self.identity!r} on "
                                       f"{describe(self.options)}: {first_line(error)}") from None
        except BaseException:
            self.home_lock.release()
            raise
        self._held = True

    def still_held(self) -> bool:
        """False once another engine holds this identity. Checked on the lock's connection (pg_locks); a connection
        found broken means the server freed the lock, taken again at once on a new one. True as well while
        PostgreSQL does not answer: no loss, asked again at the next check (the leases end by themselves)."""
        if not self._guard.acquire(blocking=False):
            return True  # the last check still waits for the store's answer
        try:
            if not self._held:
                return False
            return self._on_its_connection() or self._taken_again()
        finally:
            self._guard.release()

    def _on_its_connection(self) -> bool:
        if self._connection is None:
            return False
        try:
            held = self._holding_session(self._connection, mine=True) is not None
        except psycopg.Error as error:  # the connection broke: the server freed the lock with it
            log.warning("process identity's lock connection lost; taking the lock again", identity=self.identity,
                        error=first_line(error))
            held = False
        if not held:
            self._close()
        return held

    def _taken_again(self) -> bool:
        try:
            self._connection = self._lock()
        except ProcessIdentityInUse as taken:  # its message names the holder, never a password
            if taken.session == self._session:  # the server has not yet seen this process's connection broken
                log.warning("process identity's lock still held by this process's broken connection; tried again "
                            "next period", identity=self.identity)
                return True
            if taken.session is None:  # its holder's session ended between the try and the look: nobody's now
                log.warning("process identity's lock freed as it was tried; tried again next period",
                            identity=self.identity)
                return True
            log.error("process identity taken by another engine while this one's lock was down", error=str(taken))
            self._held = False  # for good: its engine stops driving (engine/identity_watch.py)
            return False
        except (SharedStateUnavailable, psycopg.Error) as error:
            log.warning("process identity's lock not taken again yet: PostgreSQL does not answer; tried again "
                        "next period", identity=self.identity, error=first_line(error))
            return True
        log.info("process identity's lock taken again on a new connection", identity=self.identity)
        if self._api is not None:
            self._record_api(self._api)
        return True

    def _lock(self) -> psycopg.Connection:
        """A new connection holding the identity's lock; ProcessIdentityInUse naming the holder when another has
        it; psycopg.Error or SharedStateUnavailable when the server does not answer."""
        connection = connect({**self.options, **KEEPALIVES, "tcp_user_timeout": self.unanswered_ms})
        try:
            # The server, too, finds a holder whose machine vanished without closing (its lock then freed).
            connection.execute("SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; "
                               "SET tcp_keepalives_count = 3")
            with connection.transaction():  # the table of holders, on a database this process meets first
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                connection.execute(SCHEMA)
            [(held,)] = connection.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(self.identity),)).fetchall()
            if not held:
                in_use = ProcessIdentityInUse(
                    f"process identity {self.identity!r} is in use by another redis-addons engine on "
                    f"{describe(self.options)} ({self._holder(connection)}): stop that one first, or give this one "
                    "an identity of its own (REDIS_ADDONS_PROCESS_ID)")
                in_use.session = self._holding_session(connection)
                raise in_use
            connection.execute(
                "INSERT INTO redis_addons_processes (identity, pid, hostname, api, since) VALUES (%s, %s, %s, NULL, "
                "now()) ON CONFLICT (identity) DO UPDATE SET pid = EXCLUDED.pid, hostname = EXCLUDED.hostname, "
                "api = NULL, since = now()", (self.identity, os.getpid(), socket.gethostname()))
            # As pg_locks names it: the server's own word (a pooler in between tells the client a pid of its own).
            [(self._session,)] = connection.execute("SELECT pg_backend_pid()").fetchall()
            return connection
        except BaseException:
            connection.close()
            raise

    def _holder(self, connection: psycopg.Connection) -> str:
        rows = connection.execute("SELECT pid, hostname, api FROM redis_addons_processes WHERE identity = %s",
                                  (self.identity,)).fetchall()
        if not rows:
            return "it has not recorded itself yet"
        pid, hostname, api = rows[0]
        return f"pid {pid} on {hostname}, " + (f"API {api}" if api else "no API (embedded, or not listening yet)")

    def _holding_session(self, connection: psycopg.Connection, mine: bool = False) -> int | None:
        """The server process whose session holds the identity's lock (`mine`: only if it is this connection's).
        pg_locks shows a bigint key as its high and low 32 bits (classid, objid; objsubid 1)."""
        rows = connection.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((classid::bigint << 32) | objid::bigint) = %s" + (" AND pid = pg_backend_pid()" if mine else ""),
            (lock_key(self.identity),)).fetchall()
        return rows[0][0] if rows else None

    def announce(self, api: str) -> None:
        self.home_lock.announce(api)
        self._api = api
        with self._guarded():
            self._record_api(api)

    def _record_api(self, api: str) -> None:
        if self._connection is not None:
            try:
                self._connection.execute("UPDATE redis_addons_processes SET api = %s WHERE identity = %s",
                                         (api, self.identity))
            except psycopg.Error:
                pass  # only what a refused engine is told; the lock's fate is the connection's

    def release(self) -> None:
        """Idempotent; the connection's end frees the lock even when the unlock cannot be said."""
        with self._guarded():
            if self._connection is not None:
                connection, self._connection = self._connection, None
                try:
                    connection.execute("UPDATE redis_addons_processes SET api = NULL WHERE identity = %s",
                                       (self.identity,))
                    connection.execute("SELECT pg_advisory_unlock(%s)", (lock_key(self.identity),))
                except psycopg.Error:
                    pass
                finally:
                    connection.close()
            self._held = False
        if self.on_release is not None:
            self.on_release()
        self.home_lock.release()

    @contextlib.contextmanager
    def _guarded(self):
        """The connection to itself, or on after RELEASE_WAIT_S: a check still waiting on a store gone quiet
        must not keep the engine from stopping (its statement then fails on the connection closed)."""
        guarded = self._guard.acquire(timeout=RELEASE_WAIT_S)
        try:
            yield
        finally:
            if guarded:
                self._guard.release()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except psycopg.Error:
                pass
