"""One connection to the installation's PostgreSQL (the event store's database) for the shared state: opened
at first use, opened again after it broke, one statement at a time (the state is small, its queries short).
The tables are made at first use, each prefixed `redis_addons_`, beside eventsourcing's."""

from __future__ import annotations

import threading

import psycopg

from engine.ports import TransientError

# Two processes making the tables at once: CREATE TABLE IF NOT EXISTS may still collide in the catalog,
# so the first holds this transaction lock (an arbitrary constant of ours) while it makes them.
SCHEMA_LOCK = 0x72656469735F7331
SCHEMA = """
CREATE TABLE IF NOT EXISTS redis_addons_secrets (
    name text PRIMARY KEY,
    sealed bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS redis_addons_checkpoints (
    name text PRIMARY KEY,
    state jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS redis_addons_processes (
    identity text PRIMARY KEY,
    pid integer NOT NULL,
    hostname text NOT NULL,
    api text,
    since timestamptz NOT NULL DEFAULT now());
"""


class SharedStateUnavailable(TransientError):
    """PostgreSQL does not answer (or refuses): the shared state cannot be read now; a retry may find it."""


def connection_options(store_env: dict) -> dict:
    """psycopg's connection keywords from the event store's settings (engine.settings.store_env)."""
    names = {"POSTGRES_DBNAME": "dbname", "POSTGRES_HOST": "host", "POSTGRES_PORT": "port",
             "POSTGRES_USER": "user", "POSTGRES_PASSWORD": "password"}
    return {keyword: store_env[name] for name, keyword in names.items() if store_env.get(name)}


def describe(options: dict) -> str:
    """Where the database is, for messages: never its password."""
    return f"PostgreSQL {options.get('host', 'localhost')}:{options.get('port', 5432)}/{options.get('dbname', '')}"


def connect(options: dict) -> psycopg.Connection:
    try:
        return psycopg.connect(**options, autocommit=True, connect_timeout=10,
                               application_name="redis-addons shared state")
    except psycopg.Error as error:
        raise SharedStateUnavailable(f"{describe(options)} does not answer: {first_line(error)}") from None


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class Database:
    def __init__(self, options: dict):
        self.options = options
        self._connection: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._made = False

    def __repr__(self) -> str:
        return f"<Database {describe(self.options)}>"

    def run(self, sql: str, params: tuple = ()) -> list[tuple]:
        """The statement's rows (none for a statement that returns none); run again once on a connection
        found broken (the server restarted, or a firewall dropped it while idle)."""
        with self._lock:
            for attempt in (1, 2):
                connection = self._open()
                try:
                    cursor = connection.execute(sql, params)
                    return cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError as error:
                    self.close_unlocked()
                    if attempt == 2:
                        raise SharedStateUnavailable(f"{describe(self.options)}: {first_line(error)}") from None
        raise AssertionError("unreachable")

    def transaction(self):
        """A transaction on this connection, the lock held throughout: `with db.transaction() as tx: tx.execute(...)`."""
        return _Transaction(self)

    def _open(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed:
            self._connection = connect(self.options)
        if not self._made:
            with self._connection.transaction():
                self._connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                self._connection.execute(SCHEMA)
            self._made = True
        return self._connection

    def close(self) -> None:
        with self._lock:
            self.close_unlocked()

    def close_unlocked(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except psycopg.Error:
                pass


class _Transaction:
    def __init__(self, database: Database):
        self.database = database

    def __enter__(self) -> psycopg.Connection:
        self.database._lock.acquire()
        try:
            connection = self.database._open()
            self._transaction = connection.transaction()
            self._transaction.__enter__()
            return connection
        except BaseException:
            self.database._lock.release()
            raise

    def __exit__(self, kind, error, traceback) -> None:
        try:
            self._transaction.__exit__(kind, error, traceback)
            if isinstance(error, psycopg.OperationalError):  # the connection broke within the transaction
                raise error
        except psycopg.OperationalError as broken:
            self.database.close_unlocked()
            raise SharedStateUnavailable(f"{describe(self.database.options)}: {first_line(broken)}") from None
        finally:
            self.database._lock.release()
