"""One engine per process identity (REDIS_ADDONS_PROCESS_ID) of an installation on PostgreSQL: a session
advisory lock on a hash of the identity, held on a connection of its own from the engine's start to its stop.
The server drops it when that connection ends, however its process ends (kill -9 too): a stale record never
blocks, only a live holder does. Two identities run side by side. The data directory's own file lock is kept
as well (adapters/data_lock.py): its read models and files are still one engine's."""

from __future__ import annotations

import hashlib
import os
import socket

import psycopg

from adapters.data_lock import DataDirectoryInUse, FileDataLock
from adapters.postgres.connection import (SCHEMA, SCHEMA_LOCK, SharedStateUnavailable, connect, describe,
                                          first_line)
from engine.ports import EffectError

KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


class ProcessIdentityInUse(DataDirectoryInUse):
    """Another live engine holds this process identity; the message names it."""


def lock_key(identity: str) -> int:
    """pg_advisory_lock's bigint for an identity: a hash, apart from other advisory locks of ours by its prefix."""
    digest = hashlib.sha256(b"redis-addons process identity\0" + identity.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresProcessLock:
    def __init__(self, options: dict, identity: str, home_lock: FileDataLock, on_release=None):
        """`on_release`: called as the engine stops (the shared state's connection closed with it)."""
        self.options, self.identity, self.home_lock, self.on_release = options, identity, home_lock, on_release
        self._connection: psycopg.Connection | None = None

    def acquire(self) -> None:
        if self._connection is not None:  # held already: a start tried again
            return
        self.home_lock.acquire()
        try:
            self._connection = self._lock()
        except SharedStateUnavailable as error:  # at start: the operator must look, as for the event store
            self.home_lock.release()
            raise EffectError(f"cannot take the lock of process identity {self.identity!r}: {error}") from None
        except BaseException:
            self.home_lock.release()
            raise

    def _lock(self) -> psycopg.Connection:
        connection = connect({**self.options, **KEEPALIVES})
        try:
            # The server, too, finds a holder whose machine vanished without closing (its lock then freed).
            connection.execute("SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; "
                               "SET tcp_keepalives_count = 3")
            with connection.transaction():  # the table of holders, on a database this process meets first
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                connection.execute(SCHEMA)
            [(held,)] = connection.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(self.identity),)).fetchall()
            if not held:
                raise ProcessIdentityInUse(
                    f"process identity {self.identity!r} is in use by another redis-addons engine on "
                    f"{describe(self.options)} ({self._holder(connection)}): stop that one first, or give this one "
                    "an identity of its own (REDIS_ADDONS_PROCESS_ID)")
            connection.execute(
                "INSERT INTO redis_addons_processes (identity, pid, hostname, api, since) VALUES (%s, %s, %s, NULL, "
                "now()) ON CONFLICT (identity) DO UPDATE SET pid = EXCLUDED.pid, hostname = EXCLUDED.hostname, "
                "api = NULL, since = now()", (self.identity, os.getpid(), socket.gethostname()))
            return connection
        except psycopg.Error as error:
            connection.close()
            raise ProcessIdentityInUse(f"cannot take the lock of process identity {self.identity!r} on "
                                       f"{describe(self.options)}: {first_line(error)}") from None
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

    def announce(self, api: str) -> None:
        self.home_lock.announce(api)
        if self._connection is not None:
            try:
                self._connection.execute("UPDATE redis_addons_processes SET api = %s WHERE identity = %s",
                                         (api, self.identity))
            except psycopg.Error:
                pass  # only what a refused engine is told; the lock's fate is the connection's

    def release(self) -> None:
        """Idempotent; the connection's end frees the lock even when the unlock cannot be said."""
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
        if self.on_release is not None:
            self.on_release()
        self.home_lock.release()
