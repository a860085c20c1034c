"""Why PostgreSQL refuses the event store, in its own words: a connection of our own, opened and closed.

eventsourcing's pool only says it "couldn't get a connection after 1.00 sec"; the operator needs the reason
(connection refused, password authentication failed, database "x" does not exist) to act on it."""

from __future__ import annotations

from engine.store import EventStoreUnavailable, first_line, not_opened_text, without_password


def why_unreachable(store_env: dict) -> str | None:
    """None when the database answers; else the first line of psycopg's error (it names the server and the
    user, never the password)."""
    try:
        import psycopg  # here: psycopg (the `postgres` extra) is needed only by an installation on PostgreSQL
    except ImportError:
        raise EventStoreUnavailable("the event store is PostgreSQL (REDIS_ADDONS_POSTGRES_DBNAME is set) but its "
                                    "driver is not installed: pip install 'redis-addons[postgres]'") from None

    try:
        connection = psycopg.connect(
            dbname=store_env["POSTGRES_DBNAME"], host=store_env["POSTGRES_HOST"],
            port=store_env.get("POSTGRES_PORT") or "5432", user=store_env["POSTGRES_USER"],
            password=store_env.get("POSTGRES_PASSWORD", ""), connect_timeout=5,
            application_name="redis-addons reachability")
    except psycopg.Error as error:
        return first_line(error)
    connection.close()
    return None


def store_diagnosis(settings):
    """What engine.store.EventLog calls to say why its store is not reached: on PostgreSQL only (a SQLite
    file's error already says why)."""
    return (lambda: why_unreachable(settings.store_env)) if settings.on_postgres else None


def refuse_unreachable_store(settings) -> None:
    """At the engine's build, before anything else reaches PostgreSQL (the shared state, the process lock):
    a refused connection is told as the event store's start-up error, with what to do about it."""
    if settings.on_postgres and (cause := why_unreachable(settings.store_env)) is not None:
        raise EventStoreUnavailable(not_opened_text(settings.store_env, without_password(settings.store_env, cause)))
